#!/bin/sh
# The dependency rule (docs/design.md): proto and base are sans-I/O. They include
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
echo "layering: proto and base include no OS I/O or higher-layer headers"
