/*
 * duplex/deflate.h - permessage-deflate (RFC 7692) as a sans-I/O module:
 * negotiation of the extension parameters (§5, §7.1) and a per-connection codec
 * that compresses outgoing messages and inflates incoming ones (§7.2) under a
 * hard size limit. zlib does the DEFLATE work; this header does not expose it.
 *
 * Server side:
 *   dx_handshake_check_request        -> req.extensions (the offers, parsed)
 *   dx_deflate_accept                 -> agreed params + the answer string for
 *                                        dx_accept_options.extensions
 * Client side:
 *   dx_deflate_write_offer            -> the offer for dx_request_options.extensions
 *   dx_handshake_check_response       -> resp.extensions (raw), parse it with
 *                                        dx_ext_parse_value
 *   dx_deflate_check_answer           -> agreed params (or a handshake failure)
 * Both sides, after the handshake:
 *   dx_deflate_create(params, is_server) -> the codec; dx_deflate_compress for
 *   each outgoing message (set RSV1 on its first frame), dx_deflate_inflate for
 *   each incoming message whose first frame had RSV1.
 *
 * Window bits 8. zlib refuses a raw deflate stream with an 8-bit (256-byte)
 * window and silently uses 9. When 8 is negotiated for OUR compressor, duplex
 * asks zlib for 9, as other zlib-based implementations do. This is safe: zlib's
 * compressor never emits a distance larger than the window minus 262 bytes
 * (MIN_LOOKAHEAD), i.e. at most 250 with a 512-byte window, which a peer
 * inflating with a 256-byte window accepts. Our inflater uses the negotiated
 * value (8 included: zlib's inflate supports it).
 *
 * The inflater's window bounds memory, not strictness: zlib also accepts a
 * distance beyond the agreed window when the bytes it names are still in the
 * output buffer of the same call. A peer that breaks its window agreement may
 * therefore see a message inflate with a large output buffer and fail with
 * DX_EDEFLATE_DATA with small ones; a conforming peer is never affected.
 *
 * Memory (measured by tests/test_deflate.c with a counting allocator, zlib
 * 1.2.13, x86-64; zlib's documented formula in brackets):
 *   compressor  window w, memLevel m: 2^(w+2) + 2^(m+9) + 6112 bytes
 *               [(1 << (w+2)) + (1 << (m+9))]; w=15 m=8: 268256 bytes
 *   inflater    window w: 2^w + about 7.3 KiB [1 << w]; w=15: 40 KiB
 *   both, w=15 m=8 each way: 308560 bytes; the defaults with a peer window of
 *   15: 62800 bytes; w=9 m=1 both ways: 17232 bytes.
 * The defaults (our window DX_DEFLATE_DEFAULT_WINDOW_BITS = 11, memLevel
 * DX_DEFLATE_DEFAULT_MEM_LEVEL = 4) keep a connection under 64 KiB even when
 * the peer compresses with a 32 KiB window, which it may unless it offered
 * client_max_window_bits (a server cannot restrict a client that did not). Both
 * halves are created lazily, on the first message in their direction.
 *
 * Nothing here keeps global state; distinct objects may be used from distinct
 * threads. A dx_deflate is used from one thread at a time.
 */
#ifndef DUPLEX_DEFLATE_H
#define DUPLEX_DEFLATE_H

#include "duplex/base.h"
#include "duplex/handshake.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DX_DEFLATE_DEFAULT_WINDOW_BITS 11 /* our compressor's window when 0 is given */
#define DX_DEFLATE_DEFAULT_MEM_LEVEL 4    /* zlib memLevel when 0 is given */
#define DX_DEFLATE_DEFAULT_LEVEL 6        /* zlib compression level when 0 is given */

/*
 * What one side is willing to do. Zero-initialise and set what applies; zero
 * means the default. The same struct serves both sides; "our" window is
 * server_max_window_bits on a server and client_max_window_bits on a client.
 *
 * On a server (dx_deflate_accept):
 *   server_no_context_takeover  answer with it: our compressor resets after each
 *                               message (it is also accepted when offered)
 *   client_no_context_takeover  ask the client to reset after each message
 *   server_max_window_bits      our compressor's window, 8..15 (0: 11); the
 *                               answer always states it when below 15 or offered
 *   client_max_window_bits      largest window we let the client use, 8..15
 *                               (0: 15, no restriction); it can only be stated
 *                               when the client offered client_max_window_bits
 * On a client (dx_deflate_write_offer, dx_deflate_check_answer):
 *   server_no_context_takeover  ask the server to reset after each message
 *   client_no_context_takeover  announce that we reset after each message
 *   server_max_window_bits      largest window we let the server use (0: 15)
 *   client_max_window_bits      our compressor's window (0: 11). Always offered,
 *                               so that the server may bound it: bare when 0 (as
 *                               browsers offer it), with the value when set. Any
 *                               answer 8..15 (absent: 15) is accepted, even one
 *                               above the value offered (§7.1.2.2 lets a server
 *                               ignore it); we then compress within the smaller
 *                               of the answer and this window
 */
typedef struct dx_deflate_config {
    bool server_no_context_takeover; /* see above */
    bool client_no_context_takeover; /* see above */
    uint8_t server_max_window_bits;  /* 8..15, 0: default (see above) */
    uint8_t client_max_window_bits;  /* 8..15, 0: default (see above) */
    uint8_t mem_level;               /* zlib memLevel 1..9, 0: 4 (codec only) */
    uint8_t level;                   /* zlib level 1..9, 0: 6 (codec only) */
} dx_deflate_config;

/*
 * What both sides agreed to, as dx_deflate_create needs it: each field as it
 * applies on the wire, except that a client (dx_deflate_check_answer) folds in
 * what it does beyond the agreement. There client_no_context_takeover is also
 * set when our config asked for it, and client_max_window_bits is the window
 * our compressor uses: the smaller of ours and the one the server answered. The
 * server inflates with the value it answered, never smaller, so every message
 * we compress fits its window.
 */
typedef struct dx_deflate_params {
    bool server_no_context_takeover; /* the server's compressor resets per message */
    bool client_no_context_takeover; /* the client's compressor resets per message */
    uint8_t server_max_window_bits;  /* 8..15: the server compresses within this */
    uint8_t client_max_window_bits;  /* 8..15: the client compresses within this */
} dx_deflate_params;

/* ---- negotiation (§5, §7.1) --------------------------------------------------- */

/*
 * Check one extension offer (from dx_ext_parse) as a permessage-deflate offer
 * (§7.1) and fill @out with what it asks for: for window bits the offered value,
 * 15 when absent; *@client_bits_offered says whether client_max_window_bits was
 * present (with or without a value). @out may be NULL.
 *
 * Returns 0, or:
 *   DX_EDEFLATE_NONE       @offer is not named permessage-deflate (case-insensitive)
 *   DX_EDEFLATE_BAD_OFFER  an unknown parameter, a repeated one, a value on a
 *                          *_no_context_takeover, server_max_window_bits without
 *                          a value, or a window-bits value that is not a plain
 *                          decimal 8..15 (no sign, no leading zero; a quoted
 *                          value is unescaped first, §7.1)
 */
DX_API int dx_deflate_parse_offer(const dx_ext *offer, dx_deflate_params *out,
                                  bool *client_bits_offered);

/*
 * Server: choose the first acceptable permessage-deflate offer in @offers (the
 * whole list the client sent: other extensions and malformed offers are skipped,
 * as §5 and §7.1 say) under @cfg (NULL: defaults), fill @out with the agreed
 * parameters and write the answer (e.g. "permessage-deflate;
 * server_no_context_takeover; server_max_window_bits=11") into @answer (@cap
 * bytes, NUL-terminated; *@len is its length without the NUL). *@chosen, when
 * @chosen is not NULL, receives the index of the accepted offer in @offers.
 *
 * The answer holds server_no_context_takeover when @cfg or the offer asks for
 * it; client_no_context_takeover when @cfg asks for it; server_max_window_bits
 * (the smaller of ours and the offer's) when below 15 or offered;
 * client_max_window_bits (the smaller of @cfg's and the offer's value) only
 * when offered and below 15.
 *
 * Returns 0, or:
 *   DX_EDEFLATE_NONE  no acceptable offer (accept the connection without it)
 *   DX_ENOSPACE       @cap too small (*@len holds the length needed)
 *   DX_EINVAL         @cfg holds window bits outside 8..15 (0 aside)
 */
DX_API int dx_deflate_accept(const dx_deflate_config *cfg, const dx_ext *offers, size_t num_offers,
                             dx_deflate_params *out, size_t *chosen, char *answer, size_t cap,
                             size_t *len);

/*
 * Client: write the offer for @cfg (NULL: defaults) into @out (@cap bytes,
 * NUL-terminated; *@len without the NUL): "permessage-deflate;
 * client_max_window_bits" with the defaults, "permessage-deflate;
 * server_max_window_bits=10; client_max_window_bits=9" with
 * .server_max_window_bits = 10 and .client_max_window_bits = 9.
 * Returns 0, DX_ENOSPACE (*@len holds the length needed) or DX_EINVAL (window
 * bits outside 8..15, 0 aside).
 */
DX_API int dx_deflate_write_offer(const dx_deflate_config *cfg, char *out, size_t cap, size_t *len);

/*
 * Client: validate the server's answer. @answer is the extension list of the
 * response (dx_ext_parse_value over dx_ws_response.extensions); @cfg is the
 * config the offer was written with (NULL: defaults). Fills @out for
 * dx_deflate_create; its client_max_window_bits is the window our compressor
 * will use, the smaller of @cfg's (0: 11) and the answer's (absent: 15). A
 * client_max_window_bits above the value we offered is accepted (§7.1.2.2: the
 * server may ignore our value; compressing within less than it allows is safe).
 *
 * Returns 0, or:
 *   DX_EDEFLATE_NONE        no permessage-deflate in @answer (not negotiated)
 *   DX_EDEFLATE_BAD_ANSWER  a handshake failure (§7.1): permessage-deflate
 *                           appears twice; an unknown or repeated parameter; a
 *                           value on a *_no_context_takeover; window bits
 *                           without a value or not a plain decimal 8..15;
 *                           server_max_window_bits above the value we offered,
 *                           or missing when we offered one; server_no_context_
 *                           takeover missing when we asked for it
 *   DX_EINVAL               @cfg is invalid
 */
DX_API int dx_deflate_check_answer(const dx_deflate_config *cfg, const dx_ext *answer,
                                   size_t num_answer, dx_deflate_params *out);

/* ---- the codec (§7.2) --------------------------------------------------------- */

/* One connection's compressor and inflater. Opaque. */
typedef struct dx_deflate dx_deflate;

/*
 * Create the codec for one connection. @params are the agreed parameters;
 * @is_server says which half is ours (our compressor uses our side's window and
 * context takeover, the inflater the peer's). @cfg supplies mem_level and level
 * (NULL: defaults). @max_message is the hard limit on one inflated message in
 * bytes (0: 1 MiB, like dx_proto's default). zlib's memory comes from @alloc
 * (NULL: malloc), and only when the first message in a direction needs it.
 *
 * Returns 0 with *@out set, DX_EINVAL (a window outside 8..15, mem_level or
 * level outside 1..9) or DX_ENOMEM. On failure *@out is untouched.
 */
DX_API int dx_deflate_create(dx_deflate **out, const dx_deflate_params *params, bool is_server,
                             const dx_deflate_config *cfg, size_t max_message,
                             const dx_allocator *alloc);

/* Free @d and all zlib state. NULL is a no-op. */
DX_API void dx_deflate_destroy(dx_deflate *d);

/*
 * Compress the next piece @in of an outgoing message; @fin marks its last piece
 * (an empty @in with @fin ends the message). Output goes into @out (@cap >= 16
 * bytes); *@consumed bytes of @in were taken and *@written bytes of @out filled.
 * When the message ends, the sync-flush tail 00 00 FF FF is removed (§7.2.1), so
 * the bytes written over all calls of one message are its frame payload; with
 * our side's no_context_takeover the compressor is then reset. An empty message
 * compresses to the single byte 00.
 *
 * Returns:
 *   0            all of @in was consumed (with @fin: the message is complete and
 *                all of its output has been written)
 *   DX_ENOSPACE  @out is full: send what was written, then call again with the
 *                rest of @in (in.ptr + *consumed) and the same @fin
 *   DX_EINVAL    @cap < 16, or the codec failed earlier
 *   DX_ENOMEM    zlib could not get its memory (the codec is then unusable)
 */
DX_API int dx_deflate_compress(dx_deflate *d, dx_span in, bool fin, uint8_t *out, size_t cap,
                               size_t *consumed, size_t *written);

/*
 * Inflate the next piece @in of an incoming compressed message (the payload of
 * its frames, in order); @fin marks the last piece, after which the tail
 * 00 00 FF FF is fed (§7.2.2). Output goes into @out (@cap bytes, any size);
 * *@consumed and *@written say how much was taken and produced. Memory stays
 * bounded: zlib's state and window only, whatever the input.
 *
 * The limit: the message's inflated size never passes max_message. zlib is
 * never allowed to write more than the bytes left under the limit; when it has
 * more to give at that point, inflation stops there and DX_EDEFLATE_TOO_BIG is
 * returned (close with 1009). A zip bomb therefore costs at most max_message
 * bytes of output and the input read up to that point.
 *
 * A message whose frames carry no payload at all (RSV1 on an empty frame) is
 * an empty message, as browsers and zlib-based peers read it: the tail alone
 * would be a stored block cut short.
 *
 * Returns:
 *   0                     all of @in was consumed (with @fin: the message is
 *                         complete and all of its output written)
 *   DX_ENOSPACE           @out is full: call again with the rest of @in
 *   DX_EDEFLATE_TOO_BIG   the message inflates past max_message
 *   DX_EDEFLATE_DATA      corrupt data, or (at @fin) a message that does not
 *                         end on a block boundary (truncated) (close with 1007)
 *   DX_EINVAL             the codec failed earlier (every error above is final:
 *                         the connection must be closed)
 *   DX_ENOMEM             zlib could not get its memory
 */
DX_API int dx_deflate_inflate(dx_deflate *d, dx_span in, bool fin, uint8_t *out, size_t cap,
                              size_t *consumed, size_t *written);

/* Bytes zlib currently holds for @d (both halves), through its allocator. */
DX_API size_t dx_deflate_memory(const dx_deflate *d);

/* Our compressor's window (8..15): params' server_max_window_bits on a server,
 * client_max_window_bits on a client, never above the window the peer inflates
 * with. A message compressed elsewhere with at most this window may therefore
 * be sent in place of our own output (dx_deflate_reset_compressor). 0 when @d
 * is NULL. */
DX_API int dx_deflate_window_bits(const dx_deflate *d);

/*
 * Forget everything our compressor has seen, so that the next message refers to
 * nothing before it. Call it after sending a message that did not come out of
 * this compressor (a prepared message compressed once for many connections):
 * the peer's window now holds that message, not what our compressor remembers,
 * and only a compressor with no history stays in step with it. Nothing to do
 * when our side has no context takeover.
 *
 * Returns 0, DX_ESTATE (between the pieces of a message) or DX_EINVAL (@d NULL
 * or failed earlier).
 */
DX_API int dx_deflate_reset_compressor(dx_deflate *d);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_DEFLATE_H */
