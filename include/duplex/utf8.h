/*
 * duplex/utf8.h - incremental UTF-8 validation (RFC 3629, RFC 6455 §8.1).
 *
 * Text messages arrive in frames and frames arrive in pieces, so validation keeps
 * a tiny state between calls. It fails as soon as a byte makes the sequence
 * impossible to complete (overlongs, surrogates, code points above U+10FFFF, bytes
 * that can never appear), not at the end of the message: the call that receives
 * that byte returns false. The work is done by the fastest variant the CPU has,
 * chosen at run time: with AVX2 every 32 bytes are validated at once (ASCII and
 * not); with SSE2, or in portable C, ASCII runs are skipped 16 or 32 bytes at a
 * time and other text goes through a table-driven DFA. All give the same answers.
 *
 * The state is a plain value: `dx_utf8_state s = {0};` is ready to use. Functions
 * keep no global state apart from the variant picked at first use (a relaxed
 * atomic) and are safe to call from any thread.
 */
#ifndef DUPLEX_UTF8_H
#define DUPLEX_UTF8_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dx_utf8_state {
    uint32_t state; /* 0: at a character boundary; any other value is internal
                       (inside a sequence, or failed) */
} dx_utf8_state;

/*
 * Validate the next @len bytes of a stream. Returns true while everything seen so
 * far is valid or a valid prefix; false as soon as it cannot be (the state is then
 * poisoned and every later call returns false too).
 */
DX_API bool dx_utf8_feed(dx_utf8_state *s, const uint8_t *buf, size_t len);

/* True when the stream fed so far ends at a character boundary (and is valid). */
DX_API bool dx_utf8_is_complete(const dx_utf8_state *s);

/* Validate a whole buffer: true when @buf is complete, valid UTF-8. */
DX_API bool dx_utf8_valid(const uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_UTF8_H */
