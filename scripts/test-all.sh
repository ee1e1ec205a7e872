#!/bin/sh
# Build and test everything, the way CI does:
#   1. gcc and clang builds of the library, examples, benches with -Werror
#   2. the whole suite (unit tests, corpus replays, interop, layering) under
#      AddressSanitizer + UndefinedBehaviorSanitizer (with LeakSanitizer)
#   3. `make install` into a scratch root, and a program built against it with pkg-config
#   4. a bounded libFuzzer run of every fuzz target (FUZZ_SECONDS each, default 30)
# The last line is the total: "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${FUZZ_SECONDS:-30}
passed=0
failed=0
failures=""
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

step() { # step NAME COMMAND... : one counted check, its output kept on failure
    name=$1
    shift
    if "$@" >"$logdir/$name.log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        tail -n 60 "$logdir/$name.log"
        echo "FAIL $name"
        failed=$((failed + 1))
        failures="$failures $name"
    fi
}

step clang-format make format-check
step build-gcc make -j"$jobs" BUILD=build/gcc CC=gcc all test-bins
step build-clang make -j"$jobs" BUILD=build/clang CC=clang all test-bins

# The suite proper. Its own last line carries its counts.
make -j"$jobs" BUILD=build/asan CC=clang SANITIZE=address,undefined test-bins examples \
    >"$logdir/asan-build.log" 2>&1 || { cat "$logdir/asan-build.log"; }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    sh tests/run.sh build/asan | tee "$logdir/suite.log" | grep -v '^ok '
summary=$(tail -n 1 "$logdir/suite.log")
sp=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
sf=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$sp" ]; then
    sp=0
    sf=1
    failures="$failures suite"
fi
passed=$((passed + sp))
failed=$((failed + sf))

install_check() {
    root=$logdir/root
    make BUILD=build/gcc CC=gcc PREFIX=/usr/local DESTDIR="$root" install &&
        test -f "$root/usr/local/include/duplex/duplex.h" &&
        test -f "$root/usr/local/lib/libduplex.a" &&
        test -f "$root/usr/local/lib/libduplex.so.0" &&
        PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$root/usr/local/lib/pkgconfig" \
            sh -c 'gcc -Wall -Werror -o "$0/app" examples/sansio-echo.c \
                   $(pkg-config --cflags --libs --static duplex)' "$logdir" &&
        test -x "$logdir/app"
}
step install-pkgconfig install_check

fuzz_one() { # a fresh copy of the corpus, so CI never writes into the tree
    t=$1
    work=$logdir/fuzz-$t
    mkdir -p "$work/corpus"
    cp fuzz/corpus/"$t"/* "$work/corpus/" 2>/dev/null
    build/fuzz/fuzz_"$t" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
}
if make -j"$jobs" BUILD=build fuzz >"$logdir/fuzz-build.log" 2>&1; then
    targets=$(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_||; s|\.c$||')
    # two at a time: one per core
    set -- $targets
    while [ $# -gt 0 ]; do
        a=$1
        shift
        b=${1:-}
        [ -n "$b" ] && shift
        fuzz_one "$a" &
        pa=$!
        if [ -n "$b" ]; then
            fuzz_one "$b" &
            pb=$!
        fi
        for t in $a $b; do
            if [ "$t" = "$a" ]; then wait $pa; else wait $pb; fi
            rc=$?
            if [ $rc -eq 0 ]; then
                echo "ok   fuzz_$t ($(grep -o 'stat::number_of_executed_units: *[0-9]*' \
                    "$logdir/fuzz-$t/log" | grep -o '[0-9]*$' || echo '?') runs)"
                passed=$((passed + 1))
            else
                tail -n 40 "$logdir/fuzz-$t/log"
                echo "FAIL fuzz_$t"
                failed=$((failed + 1))
                failures="$failures fuzz_$t"
            fi
        done
    done
else
    cat "$logdir/fuzz-build.log"
    echo "FAIL fuzz-build"
    failed=$((failed + 1))
    failures="$failures fuzz-build"
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
