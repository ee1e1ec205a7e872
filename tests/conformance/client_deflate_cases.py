#!/usr/bin/python3
"""duplex conformance, client side, permessage-deflate (RFC 7692): BUILD/bin/echo-client
against a raw server.

Usage: client_deflate_cases.py BUILD [-k CASE_PREFIX]... [-v]

For each case the harness listens on a fresh port of 127.0.0.1, launches
`BUILD/bin/echo-client ws://127.0.0.1:PORT/case/ID` (or $DX_CONF_CLIENT_CMD, the URL
appended), checks its offer (echo-client offers "permessage-deflate;
client_max_window_bits=11", duplex's defaults) and answers it. Groups:

  16  valid answers (context takeover either way, server_max_window_bits 8..15,
      client_max_window_bits 8..11, combinations): we send compressed messages of
      0 B .. 1 MiB (with our window and context as answered), the client echoes them,
      compressed when they are 64 B or more, and we inflate its frames with exactly
      the client window and context takeover we answered
  17  invalid answers (unknown or repeated parameter, window bits 16 or 7 or 08 or
      without a value, client_max_window_bits above the offer, a value on a
      *_no_context_takeover, permessage-deflate twice, an extension not offered):
      echo-client exits 2 and sends no frame
  18  errors with the extension agreed: RSV1 on a continuation or a control frame
      (1002), corrupt data or invalid UTF-8 (1007), a zip bomb over the client's
      16 MiB limit (1009); RSV1 without the extension agreed (1002); fragmented
      compressed messages

Fault injection: DX_PMD_BREAK=window or =context (see server_deflate_cases.py).
The last line is "client_deflate_cases: N passed, M failed"; exit status 1 on failure.
"""
import os
import shlex
import signal
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client_cases import Ctx, check_keys, client_fails, server_close  # noqa: E402
from server_deflate_cases import far_repeats, random_binary, random_text  # noqa: E402
from wsraw import (BINARY, CLOSE, CONT, PING, RSV1, TEXT, Deflater, Fail,  # noqa: E402
                   Inflater, Suite, accept_response, binary_sample, close_payload,
                   header_values, opname, parse_args, pmd_agreed, pmd_message, short,
                   text_sample)

BREAK = os.environ.get("DX_PMD_BREAK", "")
COMPRESS_MIN = 64
OFFER = "permessage-deflate; client_max_window_bits=11"
T_EXIT = 5.0


def start_pmd(t, answer):
    """Launch the client, check its offer, answer with @answer (None: no extension).
    Returns (peer, our Deflater or None)."""
    t.spawn()
    p = t.accept()
    req = t.read_request()
    offers = header_values(req.headers, "sec-websocket-extensions")
    if offers != [OFFER]:
        raise Fail(f"the client offered {offers!r}, expected [{OFFER!r}]")
    extra = f"Sec-WebSocket-Extensions: {answer}\r\n" if answer is not None else ""
    p.send(accept_response(req.key, extra))
    if answer is None:
        return p, None
    a = pmd_agreed([answer])
    cwb = a["client_max_window_bits"] or 15
    cnct = a["client_no_context_takeover"]
    if BREAK == "window":
        cwb = min(cwb, 11) - 1
    if BREAK == "context":
        cnct = True
    p.pmd = Inflater(cwb, cnct)
    return p, Deflater(a["server_max_window_bits"] or 15, a["server_no_context_takeover"])


def check_open_line(t, answer):
    deadline = time.monotonic() + T_EXIT
    while time.monotonic() < deadline:
        for line in t.output():
            if line.startswith("open "):
                if f"extensions={answer}" not in line:
                    raise Fail(f"echo-client printed {line!r}; agreed {answer!r}")
                return
        time.sleep(0.02)
    raise Fail("echo-client printed no 'open' line")


def echo(p, tx, op, payload, pieces=1):
    pmd_message(p, op, payload, tx, pieces)
    ev = p.expect_message(op, payload)
    if ev.compressed != (len(payload) >= COMPRESS_MIN):
        raise Fail(f"echo of {len(payload)} B came back {'with' if ev.compressed else 'without'}"
                   f" RSV1 (echo-client compresses whole messages of >= {COMPRESS_MIN} B)")
    return ev


# ---- group 16: valid answers ---------------------------------------------------------

def valid_answer(t, answer, big=False):
    p, tx = start_pmd(t, answer)
    msgs = [(TEXT, b""), (BINARY, b"x" * 10), (TEXT, text_sample(64)),
            (BINARY, random_binary(3000, 1)), (BINARY, random_binary(3000, 1)),
            (TEXT, random_text(700, 2)), (TEXT, random_text(700, 2)),
            (BINARY, far_repeats(70000, 3)), (TEXT, far_repeats(30000, 4).hex().encode()),
            (BINARY, binary_sample(65536))]
    if big:
        msgs += [(TEXT, text_sample(1 << 20)), (BINARY, random_binary(1 << 20, 5)),
                 (BINARY, far_repeats(1 << 20, 6))]
    wires = [echo(p, tx, op, m).wire for op, m in msgs]
    check_open_line(t, answer)
    a = pmd_agreed([answer])
    # The same 3000 B random message twice: with context takeover (and a window that
    # holds it) the client's second echo is a few bytes; without, as long as the first.
    cw = a["client_max_window_bits"] or 11
    if a["client_no_context_takeover"] and wires[4] * 2 < wires[3]:
        raise Fail(f"client_no_context_takeover agreed, yet the repeat shrank "
                   f"{wires[3]} -> {wires[4]} B")
    if not a["client_no_context_takeover"] and cw >= 12 and wires[4] * 2 > wires[3]:
        raise Fail(f"context takeover and window {cw}: the repeated 3000 B message took "
                   f"{wires[4]} B after {wires[3]} B")
    server_close(t, p)


def group16(s):
    add = s.adder(16)
    answers = ["permessage-deflate", "permessage-deflate; server_no_context_takeover",
               "permessage-deflate; client_no_context_takeover",
               "permessage-deflate; server_no_context_takeover; client_no_context_takeover"]
    answers += [f"permessage-deflate; server_max_window_bits={w}" for w in range(8, 16)]
    answers += [f"permessage-deflate; client_max_window_bits={w}" for w in range(8, 12)]
    answers += [f"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                f"server_max_window_bits={w}; client_max_window_bits={c}"
                for w, c in ((9, 9), (15, 11), (12, 8), (10, 10))]
    answers += ["permessage-deflate; client_max_window_bits=10; server_max_window_bits=13; "
                "client_no_context_takeover",
                'permessage-deflate; server_max_window_bits="12"',
                "PERMESSAGE-DEFLATE; Client_No_Context_Takeover"]
    for a in answers:
        add(f"answer {a!r}", valid_answer, a)
    for a in (answers[0], answers[3], answers[16 - 1 + 4]):
        add(f"answer {a!r}: messages up to 1 MiB", valid_answer, a, True)


# ---- group 17: invalid answers ----------------------------------------------------------

def bad_answer(t, answer):
    t.spawn()
    p = t.accept()
    req = t.read_request()
    p.send(accept_response(req.key, f"Sec-WebSocket-Extensions: {answer}\r\n"))
    ev = p.next_event(T_EXIT)
    if ev.kind != "eof":
        raise Fail(f"after the invalid answer {answer!r} the client sent {ev!r} "
                   "(§7.1: it must fail the WebSocket connection)")
    t.expect_exit(2)


def group17(s):
    add = s.adder(17)
    bad = ["permessage-deflate; foo", "permessage-deflate; foo=1",
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
           "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
           "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
           "permessage-deflate; server_max_window_bits=16",
           "permessage-deflate; server_max_window_bits=7",
           "permessage-deflate; server_max_window_bits=08",
           "permessage-deflate; server_max_window_bits",
           "permessage-deflate; server_max_window_bits=ten",
           "permessage-deflate; client_max_window_bits=12",
           "permessage-deflate; client_max_window_bits=15",
           "permessage-deflate; client_max_window_bits=16",
           "permessage-deflate; client_max_window_bits",
           "permessage-deflate; server_no_context_takeover=1",
           "permessage-deflate; client_no_context_takeover=\"\"",
           "permessage-deflate, permessage-deflate",
           "x-foo", "permessage-deflate, x-foo", "x-foo, permessage-deflate",
           "permessage-deflate; server_max_window_bits=-9"]
    for a in bad:
        add(f"answer {a!r}: exit 2, no frame", bad_answer, a)


# ---- group 18: errors ---------------------------------------------------------------------

DEFAULT = "permessage-deflate"


def rsv1_unagreed(t):
    p, _ = start_pmd(t, None)
    p.send_frame(TEXT, Deflater().compress(b"hello hello hello"), rsv=RSV1)
    client_fails(t, p, 1002)


def rsv_error(t, where):
    p, tx = start_pmd(t, DEFAULT)
    payload = text_sample(1000)
    if where == "continuation":
        pmd_message(p, TEXT, payload, tx, pieces=3, rsv_cont=RSV1)
        client_fails(t, p, 1002)
    elif where == "ping":
        p.send_frame(PING, b"x", rsv=RSV1)
        client_fails(t, p, 1002)
    elif where == "close":
        p.send_frame(CLOSE, close_payload(1000), rsv=RSV1)
        client_fails(t, p, 1002)


def bad_data(t, how):
    p, tx = start_pmd(t, DEFAULT)
    if how == "corrupt":
        p.send_frame(BINARY, b"\xff" * 8, rsv=RSV1)
        client_fails(t, p, 1007)
    elif how == "truncated":
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        whole = z.compress(text_sample(20000)) + z.flush(zlib.Z_SYNC_FLUSH)
        p.send_frame(TEXT, whole[:len(whole) // 2], rsv=RSV1)
        client_fails(t, p, 1007)
    elif how == "utf-8":
        p.send_frame(TEXT, tx.compress(text_sample(300) + b"\xed\xa0\x80"), rsv=RSV1)
        client_fails(t, p, 1007)
    elif how == "bomb":
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = (z.compress(b"\x00" * (20 << 20)) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
        t0 = time.monotonic()
        p.send_frame(BINARY, data, rsv=RSV1)
        client_fails(t, p, 1009)
        dt = time.monotonic() - t0
        print(f"# client zip bomb ({len(data)} B -> 20 MiB): 1009 after {dt * 1000:.0f} ms",
              flush=True)
        if dt > 3.0:
            raise Fail(f"1009 after {dt:.2f} s")


def fragmented(t, op, n, pieces):
    p, tx = start_pmd(t, DEFAULT)
    payload = text_sample(n) if op == TEXT else binary_sample(n)
    for _ in range(2):
        echo(p, tx, op, payload, pieces)
    server_close(t, p)


def mixed(t):
    p, tx = start_pmd(t, "permessage-deflate; server_no_context_takeover")
    for i in range(5):
        payload = text_sample(2000 + i)
        pmd_message(p, TEXT, payload, None if i % 2 else tx, rsv_first=0 if i % 2 else RSV1)
        ev = p.expect_message(TEXT, payload)
        if not ev.compressed:
            raise Fail("echo of 2000 B not compressed")
    pmd_message(p, TEXT, text_sample(3000), tx, final_block=True)
    p.expect_message(TEXT, text_sample(3000))
    server_close(t, p)


def group18(s):
    add = s.adder(18)
    add("RSV1 without the extension agreed -> 1002", rsv1_unagreed)
    add("RSV1 on a continuation -> 1002", rsv_error, "continuation")
    add("RSV1 on a ping -> 1002", rsv_error, "ping")
    add("RSV1 on a close -> 1002", rsv_error, "close")
    add("corrupt compressed data -> 1007", bad_data, "corrupt")
    add("truncated compressed data -> 1007", bad_data, "truncated")
    add("compressed text inflating to invalid UTF-8 -> 1007", bad_data, "utf-8")
    add("zip bomb 20 KiB -> 20 MiB (limit 16 MiB) -> 1009 quickly", bad_data, "bomb")
    for op, n, pieces in ((TEXT, 100, 2), (BINARY, 50000, 9), (TEXT, 300000, 30)):
        add(f"compressed {opname(op)} of {n} B in {pieces} frames", fragmented, op, n, pieces)
    add("compressed and plain messages interleaved, a BFINAL block", mixed)


def build_suite():
    s = Suite("client_deflate_cases")
    for g in (group16, group17, group18):
        g(s)
    return s


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build, prefixes, verbose = parse_args(sys.argv)
    cmd = os.environ.get("DX_CONF_CLIENT_CMD")
    argv = shlex.split(cmd) if cmd else [os.path.join(build, "bin", "echo-client")]
    suite = build_suite()
    if not os.path.exists(argv[0]) and "/" in argv[0]:
        print(f"FAIL 0.0 {argv[0]} not found")
        print("client_deflate_cases: 0 passed, 1 failed")
        sys.exit(1)

    def run_one(cid, fn, args, kw):
        t = Ctx(argv, cid)
        try:
            fn(t, *args, **kw)
            if t.peer is not None:
                check_keys(t.peer)
        except Fail as e:
            raise Fail(str(e) + "".join(f"\nclient: {line}" for line in t.output()))
        finally:
            t.cleanup()

    ok = suite.run(run_one, prefixes, verbose)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
