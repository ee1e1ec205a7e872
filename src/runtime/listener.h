/*
 * The listener's internal entry (listener.c): the WebSocket server takes the accepted
 * sockets as bare fds, to embed each stream in a connection of its own. Not installed.
 */
#ifndef DX_RUNTIME_LISTENER_H
#define DX_RUNTIME_LISTENER_H

#include "duplex/stream.h"

/* Called with each accepted socket (non-blocking, close-on-exec), now the callee's. */
typedef void (*dx__accept_fd_cb)(dx_listener *l, int fd, void *user);

/* dx_listener_create with either @on_accept (public: streams) or @on_fd. */
int dx__listener_create(dx_listener **out, dx_loop *loop, const dx_listen_options *o,
                        dx_accept_cb on_accept, dx__accept_fd_cb on_fd, void *user);

#endif /* DX_RUNTIME_LISTENER_H */
