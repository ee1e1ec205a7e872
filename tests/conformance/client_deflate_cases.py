#!/usr/bin/python3
"""duplex conformance, client side, permessage-deflate (RFC 7692): BUILD/bin/echo-client
against a raw server.

Usage: client_deflate_cases.py BUILD [-k CASE_PREFIX]... [-v]

For each case the harness listens on a fresh port of 127.0.0.1, launches
`BUILD/bin/echo-client ws://127.0.0.1:PORT/case/ID` (or $DX_CONF_CLIENT_CMD, the URL
appended), checks its offer (echo-client offers "permessage-deflate;
client_max_window_bits", duplex's defaults: the parameter without a value, as
browsers offer it; "client_max_window_bits=N" with --deflate-client-window N) and
answers it. Every compressed message of the client is inflated twice: with the
client window and context takeover we answered (as a server would; absent: 15),
and with the window the client must actually use, min(its own (default 11), the
answered one), which catches a client that compresses beyond its own window.
Groups:

  16  valid answers (context takeover either way, server_max_window_bits 8..15,
      client_max_window_bits 8..15, combinations): we send compressed messages of
      0 B .. 1 MiB (with our window and context as answered), the client echoes them,
      compressed when they are 64 B or more, and we inflate its frames as above
  17  invalid answers (unknown or repeated parameter, window bits 16 or 7 or 08 or
      without a value, a value on a *_no_context_takeover, permessage-deflate twice,
      an extension not offered): echo-client exits 2 and sends no frame
  18  errors with the extension agreed: RSV1 on a continuation or a control frame
      (1002), corrupt data or invalid UTF-8 (1007), a zip bomb over the client's
      16 MiB limit (1009); RSV1 without the extension agreed (1002); fragmented
      compressed messages
  19  like Autobahn 13.3.x-13.6.x: the server answers client_max_window_bits 8, 11,
      12..15 (or none), with and without client_no_context_takeover, to the default
      offer and to --deflate-client-window 9, 12 and 15 (RFC 7692 §7.1.2.2: a server
      may answer a window above the offered value; the client keeps its own, the
      smaller); messages of 16 B .. 128 KiB, several of each size, echoed compressed

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
OFFER = "permessage-deflate; client_max_window_bits"
DEFAULT_WINDOW = 11  # echo-client's compressor window unless --deflate-client-window
T_EXIT = 5.0


def offer_for(window):
    """echo-client's offer with --deflate-client-window @window (None: not given)."""
    return OFFER if window is None else f"{OFFER}={window}"


def client_window(answer, window=None):
    """The window the client must compress within: its own (@window, or the default)
    or the answered client_max_window_bits (absent: 15), whichever is smaller."""
    a = pmd_agreed([answer])
    return min(window or DEFAULT_WINDOW, a["client_max_window_bits"] or 15)


class BothInflaters:
    """Inflates each message of the client with the window we answered (what a
    server inflates with) and with the window the client must really use (the
    smaller one, see client_window): both must give the same message."""

    def __init__(self, agreed, own, no_context):
        self.agreed = Inflater(agreed, no_context)
        self.own = Inflater(own, no_context)
        self.messages = 0

    def inflate(self, payload, limit=64 << 20):
        body = self.agreed.inflate(payload, limit)
        if self.own.inflate(payload, limit) != body:
            raise Fail(f"harness: windows {self.agreed.wbits} and {self.own.wbits} inflate "
                       "the same message differently")
        self.messages += 1
        return body


def start_pmd(t, answer, window=None):
    """Launch the client (with --deflate-client-window @window unless None), check
    its offer, answer with @answer (None: no extension). Returns (peer, our Deflater
    or None)."""
    if window is not None:
        t.argv = t.argv + ["--deflate-client-window", str(window)]
    t.spawn()
    p = t.accept()
    req = t.read_request()
    offers = header_values(req.headers, "sec-websocket-extensions")
    want = offer_for(window)
    if offers != [want]:
        raise Fail(f"the client offered {offers!r}, expected [{want!r}]")
    extra = f"Sec-WebSocket-Extensions: {answer}\r\n" if answer is not None else ""
    p.send(accept_response(req.key, extra))
    if answer is None:
        return p, None
    a = pmd_agreed([answer])
    agreed = a["client_max_window_bits"] or 15
    own = client_window(answer, window)
    cnct = a["client_no_context_takeover"]
    if BREAK == "window":
        own -= 1
    if BREAK == "context":
        cnct = True
    p.pmd = BothInflaters(agreed, own, cnct)
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
    cw = client_window(answer)
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
    answers += [f"permessage-deflate; client_max_window_bits={w}" for w in range(8, 16)]
    answers += [f"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                f"server_max_window_bits={w}; client_max_window_bits={c}"
                for w, c in ((9, 9), (15, 11), (12, 8), (10, 10))]
    answers += ["permessage-deflate; client_max_window_bits=10; server_max_window_bits=13; "
                "client_no_context_takeover",
                'permessage-deflate; server_max_window_bits="12"',
                "PERMESSAGE-DEFLATE; Client_No_Context_Takeover"]
    for a in answers:
        add(f"answer {a!r}", valid_answer, a)
    big = [a for a in answers if a.endswith("=10; client_max_window_bits=10")]
    for a in (answers[0], answers[3], big[0], "permessage-deflate; client_max_window_bits=15"):
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
           "permessage-deflate; client_max_window_bits=16",
           "permessage-deflate; client_max_window_bits=7",
           "permessage-deflate; client_max_window_bits=08",
           'permessage-deflate; client_max_window_bits="16"',
           "permessage-deflate; client_max_window_bits",
           "permessage-deflate; client_max_window_bits=15; client_max_window_bits=15",
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


# ---- group 19: a server that answers a client window of its own (Autobahn 13.3-13.6) --

AB_SIZES = (16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072)


def window_answer(t, answer, window=None, pieces=1):
    """Autobahn's 13.x cases send messages of one size after another and the client
    echoes them; 13.4.x and 13.6.x answer client_max_window_bits=15, above the value
    many clients offer. We send three messages of each size in AB_SIZES (repeating
    text, random text, and binary repeating 2000 and 20000 bytes back)."""
    p, tx = start_pmd(t, answer, window)
    cw = client_window(answer, window)
    for i, n in enumerate(AB_SIZES):
        for k, (op, payload) in enumerate(((TEXT, text_sample(n)),
                                           (TEXT, random_text(n, 10 * i + 1)),
                                           (BINARY, far_repeats(n, i)))):
            ev = echo(p, tx, op, payload, pieces)
            # With a 32 KiB window the repeats 20000 B back are found, so a client
            # that agreed to 15 and kept a smaller window would show here.
            if k == 2 and n >= 65536 and cw == 15 and ev.wire > n * 0.6:
                raise Fail(f"client window 15: {n} B with repeats 20000 B back took "
                           f"{ev.wire} B (its compressor does not use the agreed window)")
    check_open_line(t, answer)
    server_close(t, p)


def group19(s):
    add = s.adder(19)
    pmd = "permessage-deflate"
    cnct = "; client_no_context_takeover"
    for w in (8, 11, 12, 13, 14, 15, None):
        for nct in ("", cnct):
            answer = pmd + nct + (f"; client_max_window_bits={w}" if w else "")
            add(f"offer {OFFER!r}, answer {answer!r}: client window "
                f"{client_window(answer)}", window_answer, answer)
    for window, answers in ((9, (f"{pmd}; client_max_window_bits=15",
                                 f"{pmd}{cnct}; client_max_window_bits=15",
                                 f"{pmd}; client_max_window_bits=8", pmd)),
                            (12, (f"{pmd}; client_max_window_bits=14",
                                  f"{pmd}; server_no_context_takeover; "
                                  "client_max_window_bits=15")),
                            (15, (f"{pmd}; client_max_window_bits=15", pmd))):
        for answer in answers:
            add(f"--deflate-client-window {window}, answer {answer!r}: client window "
                f"{client_window(answer, window)}", window_answer, answer, window)
    add(f"answer '{pmd}; client_max_window_bits=15', our messages in 3 frames",
        window_answer, f"{pmd}; client_max_window_bits=15", None, 3)


def build_suite():
    s = Suite("client_deflate_cases")
    for g in (group16, group17, group18, group19):
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
