/*
 * Fuzz target: a server-side dx_proto (RFC 6455 §5-§8) fed client frames in
 * fuzz-chosen pieces, with our own sends, pings and closes in between. The input
 * format and every invariant checked are described in frames_fuzz.h.
 */
#include "frames_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fz_run(data, size, DX_SIDE_SERVER);
}
