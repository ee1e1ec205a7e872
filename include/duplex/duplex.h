/*
 * duplex/duplex.h - the whole public API of duplex in one include.
 */
#ifndef DUPLEX_DUPLEX_H
#define DUPLEX_DUPLEX_H

#include "duplex/base.h"
#include "duplex/client.h"
#include "duplex/conn.h"
#include "duplex/deflate.h"
#include "duplex/frame.h"
#include "duplex/handshake.h"
#include "duplex/http.h"
#include "duplex/loop.h"
#include "duplex/outq.h"
#include "duplex/proto.h"
#include "duplex/server.h"
#include "duplex/stream.h"
#include "duplex/tls.h"
#include "duplex/url.h"
#include "duplex/utf8.h"

#define DX_VERSION_MAJOR 0
#define DX_VERSION_MINOR 1
#define DX_VERSION_PATCH 0
#define DX_VERSION_STRING "0.1.0"

#endif /* DUPLEX_DUPLEX_H */
