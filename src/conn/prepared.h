/*
 * The runtime's view of a prepared message (dx_prepared, conn.h): what
 * dx_conn_send_prepared needs to choose between its forms. Not installed.
 */
#ifndef DX_RUNTIME_PREPARED_H
#define DX_RUNTIME_PREPARED_H

#include "duplex/conn.h"
#include "duplex/outq.h"

/* The message's type and its uncompressed payload (valid while @m lives). */
dx_opcode dx__prepared_opcode(const dx_prepared *m);
dx_span dx__prepared_payload(const dx_prepared *m);

/* The uncompressed message as a whole server frame (header included), to queue by
 * reference (dx_proto_send_shared). */
dx_shared *dx__prepared_frame(const dx_prepared *m);

/* True when the message must always go uncompressed (DX_SEND_NO_COMPRESS). */
bool dx__prepared_no_compress(const dx_prepared *m);

/*
 * The message compressed for a peer whose window for our messages is @window_bits
 * (8..15), with no reference to anything before it, as a whole server frame with
 * RSV1 (*@frame; its header is *@hdr_len bytes when @hdr_len is not NULL); made on the
 * first call for that window, under the message's lock, then shared. *@frame is NULL
 * when compression does not make the message smaller (send it uncompressed).
 * Returns 0, DX_EINVAL (@window_bits outside 8..15) or DX_ENOMEM.
 */
int dx__prepared_compressed(dx_prepared *m, int window_bits, dx_shared **frame, size_t *hdr_len);

#endif /* DX_RUNTIME_PREPARED_H */
