#!/bin/sh
# The dependency rule (docs/design.md). proto and base are sans-I/O. They include
# no OS I/O headers and no header of a higher layer. base/random.c may include
# <sys/random.h> (getrandom is not I/O; callers can replace the source).
# proto/deflate.c, the permessage-deflate codec, may include <zlib.h> (a pure
# compression library, no I/O); no other file may, deflate_negotiation.c included.
bad=$(grep -nE '#[[:space:]]*include[[:space:]]*<(sys/(socket|epoll|select|poll|uio|ioctl|mman|stat|types|time|eventfd|timerfd|signalfd|wait|un)\.h|unistd\.h|fcntl\.h|poll\.h|netdb\.h|netinet/[^>]*|arpa/[^>]*|pthread\.h|signal\.h|time\.h|stdio\.h|dirent\.h|termios\.h|openssl/[^>]*|zlib\.h)>' \
      src/base/*.c src/base/*.h src/proto/*.c src/proto/*.h include/duplex/base.h \
      include/duplex/frame.h include/duplex/proto.h include/duplex/http.h \
      include/duplex/handshake.h include/duplex/utf8.h include/duplex/url.h \
      include/duplex/deflate.h 2>/dev/null)
bad=$(printf '%s\n' "$bad" | grep -vE '^src/proto/deflate\.c:[0-9]+:#[[:space:]]*include[[:space:]]*<zlib\.h>' || true)
up=$(grep -nE '#[[:space:]]*include[[:space:]]*"(runtime|tls|server|client|pubsub|tools)/' \
      src/base/*.[ch] src/proto/*.[ch] 2>/dev/null)
if [ -n "$bad$up" ]; then
    echo "layering: proto/base include forbidden headers:"
    [ -n "$bad" ] && echo "$bad"
    [ -n "$up" ] && echo "$up"
    exit 1
fi

# Socket system calls belong to the stream layer's one file (src/runtime/sock.c): the
# streams, listeners, the WebSocket connection, server and client all go through it.
calls='socket|socketpair|bind|listen|accept|accept4|connect|recv|recvfrom|recvmsg|send|sendto|sendmsg|writev|readv|shutdown|getaddrinfo|getsockopt|setsockopt|getpeername|getsockname'
sock=""
for f in $(ls src/*/*.c src/*/*.h | grep -v '^src/runtime/sock\.c$'); do
    # comments removed (a one-line /* ... */, a // tail, a line inside a block comment)
    hits=$(sed -e 's|/\*.*\*/||g' -e 's|//.*||' -e 's|^[[:space:]]*\*.*||' -e 's|/\*.*||' "$f" |
           grep -nE "(^|[^A-Za-z0-9_.>])($calls)[[:space:]]*\(")
    [ -n "$hits" ] && sock="$sock$(printf '%s\n' "$hits" | sed "s|^|$f:|")
"
done
if [ -n "$sock" ]; then
    echo "layering: socket system calls outside src/runtime/sock.c:"
    echo "$sock"
    exit 1
fi

# The loop knows generic handles only: watchers, timers, hooks, deferred calls, posts
# and per-loop data. Nothing in it names a connection or a stream.
named=$(grep -nE 'dx_conn|dx__conn|dx_stream|dx__stream|conn_internal|stream_internal' \
        src/runtime/loop*.c src/runtime/loop*.h src/runtime/timer.* src/runtime/wakeup.c 2>/dev/null)
if [ -n "$named" ]; then
    echo "layering: the loop names connections or streams:"
    echo "$named"
    exit 1
fi
echo "layering: proto and base include no OS I/O or higher-layer headers; socket calls only in" \
     "src/runtime/sock.c; the loop names no connection or stream"
