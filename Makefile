# duplex - a readable GNU Makefile.
#
#   make                 library (static + shared), examples, benches, tools
#   make check           build and run every test (last line: "N passed, M failed")
#   make SANITIZE=address,undefined check
#   make CC=clang ...    any C11 compiler
#   make fuzz            libFuzzer targets (clang) into build/fuzz/
#   make bench           build bench programs (and the echo load kit of bench/load/);
#                        `make run-bench` runs the self-contained bench_* programs
#                        (bench_fanout with --quick)
#   make bench-peers     the libwebsockets echo server for bench/load/run-echo.sh
#                        (only when pkg-config finds libwebsockets)
#   make install PREFIX=/usr/local DESTDIR=...
#
# Every directory is globbed, so adding src/proto/foo.c or tests/test_foo.c needs
# no edit here.

CC       ?= cc
AR       ?= ar
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
BUILD    ?= build
SANITIZE ?=
OPT      ?= -O2

VERSION  := 0.1.0
SOMAJOR  := 0

WARN := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion \
        -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 -Wcast-align \
        -Wundef -Wwrite-strings -Wimplicit-fallthrough
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -fvisibility=hidden \
               -Iinclude -Isrc -DDX_BUILDING
ifneq ($(SANITIZE),)
BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN       := -fsanitize=$(SANITIZE)
endif
ALL_CFLAGS := $(BASE_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(LDSAN) $(LDFLAGS)
# Libraries every link needs (OpenSSL for src/tls, zlib for permessage-deflate).
LDLIBS   += -lssl -lcrypto -lz

LIB_SRCS  := $(sort $(wildcard src/*/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
PIC_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/pic/%.o)
STATIC    := $(BUILD)/lib/libduplex.a
SHARED    := $(BUILD)/lib/libduplex.so.$(VERSION)

TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(BUILD)/obj/tests/testlib.o

FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRCS:fuzz/fuzz_%.c=%)
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/tests/replay_%)
FUZZ_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)

BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
LOAD_BINS  := $(BUILD)/bench/loadgen $(BUILD)/bench/tcp-echo

EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/bin/%)

.PHONY: all lib check test-bins fuzz bench bench-peers run-bench examples install clean layering \
        format-check
all: lib examples bench

lib: $(STATIC) $(SHARED)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(PIC_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libduplex.so.$(SOMAJOR) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)
	ln -sf libduplex.so.$(VERSION) $(BUILD)/lib/libduplex.so.$(SOMAJOR)
	ln -sf libduplex.so.$(VERSION) $(BUILD)/lib/libduplex.so

# Tests see internal headers (src/) so they can reach the scalar/SIMD variants.
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/replay_%: $(BUILD)/obj/fuzz/fuzz_%.o $(BUILD)/obj/fuzz/replay.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

test-bins: $(TEST_BINS) $(REPLAY_BINS)

check: test-bins examples
	@sh tests/run.sh $(BUILD)

layering:
	@sh tests/check_layering.sh

# libFuzzer needs clang; these objects are built apart from the rest.
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc -DDX_BUILDING \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
fuzz: $(FUZZ_BINS)
$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $(LIB_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRCS) $(LDLIBS)

bench: $(BENCH_BINS) $(LOAD_BINS)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# The echo load kit (bench/load/README.md): a load generator on duplex's client
# side, and the raw TCP echo server the WebSocket servers are compared with.
$(BUILD)/bench/loadgen: $(BUILD)/obj/bench/load/loadgen.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/tcp-echo: $(BUILD)/obj/bench/load/tcp-echo.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# libwebsockets' headers come in as system headers, so our warnings stay on us.
bench-peers:
	@if pkg-config --exists libwebsockets; then \
	    $(MAKE) --no-print-directory $(BUILD)/bench/lws-echo; \
	else \
	    echo "bench-peers: libwebsockets not found (apt-get install -y libwebsockets-dev);" \
	         "lws-echo not built"; \
	fi

$(BUILD)/bench/lws-echo: bench/load/lws-echo.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(patsubst -I%,-isystem %,$(shell pkg-config --cflags libwebsockets)) \
	    -o $@ $< $(ALL_LDFLAGS) $(shell pkg-config --libs libwebsockets) $(LDLIBS)

# bench_fanout's full run takes about a minute and GiBs of memory: run-bench runs
# its --quick form (1,000 connections, about 10 s).
run-bench: bench
	@for b in $(BENCH_BINS); do \
	    case $$b in */bench_fanout) $$b --quick || exit 1 ;; *) $$b || exit 1 ;; esac; \
	done

examples: $(EXAMPLE_BINS)
$(BUILD)/bin/%: $(BUILD)/obj/examples/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/duplex.pc: duplex.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@

install: lib $(BUILD)/duplex.pc
	install -d $(DESTDIR)$(INCDIR)/duplex $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/duplex/*.h $(DESTDIR)$(INCDIR)/duplex/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libduplex.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libduplex.so.$(SOMAJOR)
	ln -sf libduplex.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libduplex.so
	install -m 644 $(BUILD)/duplex.pc $(DESTDIR)$(LIBDIR)/pkgconfig/

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
