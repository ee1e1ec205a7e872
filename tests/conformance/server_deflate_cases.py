#!/usr/bin/python3
"""duplex conformance, server side, permessage-deflate (RFC 7692): BUILD/bin/echo-server
against raw frames, in the style of the Autobahn|Testsuite's groups 12 and 13.

Usage: server_deflate_cases.py BUILD [-k CASE_PREFIX]... [-v]

Starts `BUILD/bin/echo-server --port 0 --host 127.0.0.1` (or $DX_CONF_SERVER_CMD) and
offers permessage-deflate on fresh connections. Groups:

  12  echo of compressible and incompressible texts and binaries of 0 B .. 1 MiB, many
      messages in a row, with context takeover and without (12.x-like)
  13  every offer of server_max_window_bits (absent, 9..15) x client_max_window_bits
      (absent, 9, 12, 15) x context takeover (both, server off, client off, both off),
      each with messages whose repeats lie beyond small windows (13.x-like)
  14  negotiation: parameters, malformed offers declined (a later good one accepted),
      no offer, and RSV1 without the extension
  15  compressed framing and errors: fragments (RSV1 on the first frame only), RSV1 on a
      continuation or a control frame (1002), corrupt data and invalid UTF-8 (1007),
      a zip bomb over the 16 MiB limit (1009, quickly), BFINAL blocks, empty messages,
      uncompressed messages with the extension agreed

echo-server's contract with the extension: every message is echoed with its type; a
whole message of 64 bytes or more is echoed compressed (RSV1), a shorter one is not.
Our inflater uses exactly the window and context takeover that the server's answer
agreed to (see wsraw.Inflater), so a server that compresses with a larger window or
keeps its context when it promised not to fails here.

Fault injection for showing that the checks can fail: DX_PMD_BREAK=window (we inflate
with a window one bit smaller than agreed) or DX_PMD_BREAK=context (we reset our
inflater after each message although the server keeps its context).

Each case prints "ok <id> <what>" or "FAIL <id> <what>: <why>"; the last line is
"server_deflate_cases: N passed, M failed", and the exit status is 1 on any failure.
"""
import os
import signal
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_cases import HOST, Ctx, Server, clean_close, fails  # noqa: E402
from wsraw import (BINARY, CLOSE, CONT, PING, RSV1, RSV2, RSV3, TEXT, Deflater,  # noqa: E402
                   Fail, Inflater, Suite, binary_sample, client_handshake_ext, close_payload,
                   opname, parse_args, pmd_agreed, pmd_message, pmd_offer, short, text_sample)

BREAK = os.environ.get("DX_PMD_BREAK", "")
COMPRESS_MIN = 64  # echo-server compresses whole messages of at least this many bytes


# ---- samples ----------------------------------------------------------------------

def random_text(n, seed):
    """@n bytes of valid UTF-8 that hardly compress (random code points)."""
    import random
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        cp = rnd.randrange(0x20, 0x3000)
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp).encode()
        if len(out) + len(c) > n:
            out += b"x" * (n - len(out))
        else:
            out += c
    return bytes(out)


def random_binary(n, seed):
    import random
    return random.Random(seed).randbytes(n)


def far_repeats(n, seed):
    """@n bytes whose repeats lie 2000 and 20000 bytes apart (random blocks copied):
    a compressor with a window of 2^w < 2000 (w <= 10) or < 20000 (w <= 14) must not
    reach them, and our inflater, limited to the agreed window, notices if it does."""
    import random
    rnd = random.Random(seed)
    a = rnd.randbytes(2000)
    b = rnd.randbytes(20000)
    unit = a * 4 + b * 2
    return (unit * (n // len(unit) + 1))[:n]


def sample(op, kind, n, seed=1):
    if kind == "compressible":
        return text_sample(n) if op == TEXT else binary_sample(n, seed)
    if kind == "far":
        data = far_repeats(n, seed)
        return data.hex().encode()[:n] if op == TEXT else data
    return random_text(n, seed) if op == TEXT else random_binary(n, seed)


# ---- helpers ----------------------------------------------------------------------

class Pmd:
    """One connection with permessage-deflate agreed: the peer, the agreement, our
    compressor (client window and context) and the peer's inflater."""

    def __init__(self, t, offer, expect=True):
        sock = t.tcp()
        self.peer, self.answer = client_handshake_ext(sock, HOST, t.server.port, t.path, offer)
        self.agreed = pmd_agreed(self.answer)
        if expect and self.agreed is None:
            raise Fail(f"offer {offer!r} answered without permessage-deflate")
        if self.agreed is None:
            self.tx = None
            return
        a = self.agreed
        swb = a["server_max_window_bits"] or 15
        cwb = a["client_max_window_bits"] or 15
        snct = a["server_no_context_takeover"]
        if BREAK == "window":
            swb -= 1
        if BREAK == "context":
            snct = True
        self.peer.pmd = Inflater(swb, snct)
        self.tx = Deflater(cwb, a["client_no_context_takeover"])

    def echo(self, op, payload, pieces=1, compress=True):
        p = self.peer
        if compress:
            pmd_message(p, op, payload, self.tx, pieces)
        else:
            pmd_message(p, op, payload, None, pieces, rsv_first=0)
        self.expect_echo(op, payload)

    def expect_echo(self, op, payload, i=None):
        ev = self.peer.expect_message(op, payload, what="echo" if i is None else f"echo {i}")
        want = len(payload) >= COMPRESS_MIN
        if ev.compressed != want:
            raise Fail(f"echo of {len(payload)} B came back {'with' if ev.compressed else 'without'}"
                       f" RSV1; echo-server compresses whole messages of >= {COMPRESS_MIN} B "
                       "and only those")
        return ev


def check_answer(pm, offer_params):
    """The answer agrees with the offer (§7.1): what it may state and what it must."""
    a = pm.agreed
    off = dict((p.split("=") + [None])[:2] for p in offer_params)
    if "server_no_context_takeover" in off and not a["server_no_context_takeover"]:
        raise Fail(f"offer asked for server_no_context_takeover; answer {pm.answer!r} "
                   "lacks it (§7.1.1.1: the server must accept it or decline the offer)")
    if "server_max_window_bits" in off:
        if a["server_max_window_bits"] is None or \
                a["server_max_window_bits"] > int(off["server_max_window_bits"]):
            raise Fail(f"offer server_max_window_bits={off['server_max_window_bits']}; answer "
                       f"{pm.answer!r} (§7.1.2.1: a value not above the offer's)")
    if "client_max_window_bits" not in off and a["client_max_window_bits"] is not None:
        raise Fail(f"answer {pm.answer!r} has client_max_window_bits that was not offered "
                   "(§7.1.2.2)")
    cv = off.get("client_max_window_bits")
    if cv and a["client_max_window_bits"] is not None and \
            a["client_max_window_bits"] > int(cv):
        raise Fail(f"answer {pm.answer!r}: client_max_window_bits above the offer's {cv}")


# ---- group 12: sizes and kinds, many messages in a row ------------------------------

SIZES12 = ((0, 10), (1, 10), (63, 10), (64, 10), (125, 10), (126, 10), (1000, 10),
           (4096, 10), (65535, 5), (65536, 5), (262144, 3), (1 << 20, 2))


def in_a_row(t, offer, op, kind, n, count, pieces=1):
    pm = Pmd(t, offer)
    msgs = [sample(op, kind, n, seed=i) for i in range(count)]
    if count > 2 and n >= 64:
        msgs[1] = msgs[0]  # the same message again: with context takeover it shrinks
    sent = []
    for m in msgs:  # all sent before any echo is read (Peer.send reads as it writes)
        sent.append(len(pmd_message(pm.peer, op, m, pm.tx, pieces)))
    wires = []
    for i, m in enumerate(msgs):
        wires.append(pm.expect_echo(op, m, i).wire)
    if kind == "compressible" and n >= 4096 and wires[0] * 4 > n:
        raise Fail(f"a compressible {n} B message was echoed in {wires[0]} B")
    takeover = not pm.agreed["server_no_context_takeover"]
    # A repeat is reachable only when the whole message fits the server's window.
    fits = n + 300 <= 1 << (pm.agreed["server_max_window_bits"] or 15)
    if count > 2 and n >= 1000 and kind == "random" and fits and takeover \
            and wires[1] * 2 > wires[0]:
        raise Fail(f"with context takeover the repeated {n} B random message took "
                   f"{wires[1]} B after {wires[0]} B (the server's context was not kept?)")
    if count > 2 and n >= 1000 and kind == "random" and not takeover and wires[1] * 2 < wires[0]:
        raise Fail(f"server_no_context_takeover agreed, yet the repeated message shrank "
                   f"from {wires[0]} to {wires[1]} B")
    clean_close(pm.peer)


def group12(s):
    add = s.adder(12)
    for offer, how in ((pmd_offer(), "context takeover"),
                       (pmd_offer("server_no_context_takeover", "client_no_context_takeover"),
                        "no context takeover")):
        for kind in ("compressible", "random"):
            for op in (TEXT, BINARY):
                for n, count in SIZES12:
                    add(f"{how}: {count} {kind} {opname(op)} messages of {n} B in a row",
                        in_a_row, offer, op, kind, n, count)
    for pieces in (2, 7):
        add(f"context takeover: 4 compressible binary messages of 100000 B in {pieces} "
            "frames each", in_a_row, pmd_offer(), BINARY, "compressible", 100000, 4, pieces)


# ---- group 13: windows and context takeover -----------------------------------------

def windows_case(t, params):
    pm = Pmd(t, pmd_offer(*params))
    check_answer(pm, params)
    for i, (op, n) in enumerate(((BINARY, 60000), (TEXT, 3000), (BINARY, 64), (TEXT, 50000),
                                 (BINARY, 60000), (TEXT, 100), (BINARY, 200000))):
        pm.echo(op, sample(op, "far", n, seed=i % 3))
    clean_close(pm.peer)


def group13(s):
    add = s.adder(13)
    ctx = ((), ("server_no_context_takeover",), ("client_no_context_takeover",),
           ("server_no_context_takeover", "client_no_context_takeover"))
    for sw in (None,) + tuple(range(9, 16)):
        for cw in (None, 9, 12, 15):
            for c in ctx:
                params = tuple(c)
                if sw is not None:
                    params += (f"server_max_window_bits={sw}",)
                if cw is not None:
                    params += (f"client_max_window_bits={cw}",)
                add("offer " + (pmd_offer(*params)), windows_case, params)
    add("offer client_max_window_bits without a value", windows_case,
        ("client_max_window_bits",))
    add("offer server_max_window_bits=8 (answered with 8 or declined)", windows8)


def windows8(t):
    # §7.1.2.1: a server that cannot compress with a 256-byte window declines the offer;
    # duplex accepts it (its compressor uses 9, with distances of at most 250).
    pm = Pmd(t, pmd_offer("server_max_window_bits=8"), expect=False)
    if pm.agreed is None:
        return
    if pm.agreed["server_max_window_bits"] != 8:
        raise Fail(f"answer {pm.answer!r} to server_max_window_bits=8")
    for i in range(4):
        pm.echo(BINARY, sample(BINARY, "far", 30000, seed=i))
        pm.echo(TEXT, text_sample(5000))
    clean_close(pm.peer)


# ---- group 14: negotiation ---------------------------------------------------------

def negotiate(t, offer, want, params_sent=()):
    """@want: None (no extension in the answer) or the dict of agreed parameters the
    answer must hold (keys absent from it are not checked)."""
    pm = Pmd(t, offer, expect=False)
    if want is None:
        if pm.agreed is not None:
            raise Fail(f"offer {offer!r} must be declined; answer {pm.answer!r}")
        p = pm.peer
        p.send_frame(TEXT, b"plain")  # the connection works without the extension
        p.expect_message(TEXT, b"plain")
        z = Deflater()
        p.send_frame(TEXT, z.compress(b"hello hello hello"), rsv=RSV1)
        fails(p, 1002)  # RSV1 without an extension (§5.2)
        return
    if pm.agreed is None:
        raise Fail(f"offer {offer!r} must be accepted; answer {pm.answer!r}")
    for k, v in want.items():
        if pm.agreed[k] != v:
            raise Fail(f"offer {offer!r}: answer {pm.answer!r} has {k}={pm.agreed[k]}, "
                       f"expected {v}")
    pm.echo(TEXT, text_sample(3000))
    pm.echo(BINARY, random_binary(3000, 2))
    clean_close(pm.peer)


def group14(s):
    add = s.adder(14)
    swb = "server_max_window_bits"
    cwb = "client_max_window_bits"
    good = {"server_no_context_takeover": False}
    add("no offer: no extension, RSV1 -> 1002", negotiate, None, None)
    add("offer of another extension only: declined", negotiate, "x-webkit-foo; bar=1", None)
    add("plain offer accepted", negotiate, "permessage-deflate", {cwb: None})
    add("name in another case accepted (tokens are case-insensitive)", negotiate,
        "Permessage-Deflate", {cwb: None})
    add("other extension first, then permessage-deflate", negotiate,
        "x-foo, permessage-deflate; client_max_window_bits", {})
    add("server_no_context_takeover asked -> in the answer", negotiate,
        "permessage-deflate; server_no_context_takeover", {"server_no_context_takeover": True})
    add("client_max_window_bits=10 -> answer at most 10", negotiate,
        "permessage-deflate; client_max_window_bits=10", {})
    add("quoted value server_max_window_bits=\"10\" (§7.1: quoted-string allowed)", negotiate,
        'permessage-deflate; server_max_window_bits="10"', {swb: 10})
    add("extra whitespace around ; and =", negotiate,
        "permessage-deflate ;  server_max_window_bits = 10 ; client_max_window_bits", {})
    # Malformed offers are declined (§7.1: "a server MUST decline"), and a good one after
    # them in the same header is accepted (§5.1, a list of offers in preference order).
    bad = [("unknown parameter", "permessage-deflate; foo=1"),
           ("unknown parameter without a value", "permessage-deflate; foo"),
           ("server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16"),
           ("server_max_window_bits=7", "permessage-deflate; server_max_window_bits=7"),
           ("server_max_window_bits=0", "permessage-deflate; server_max_window_bits=0"),
           ("server_max_window_bits with a leading zero", "permessage-deflate; "
            "server_max_window_bits=09"),
           ("server_max_window_bits with a sign", "permessage-deflate; "
            "server_max_window_bits=+9"),
           ("server_max_window_bits without a value", "permessage-deflate; "
            "server_max_window_bits"),
           ("server_max_window_bits=abc", "permessage-deflate; server_max_window_bits=abc"),
           ("client_max_window_bits=16", "permessage-deflate; client_max_window_bits=16"),
           ("client_max_window_bits=7", "permessage-deflate; client_max_window_bits=7"),
           ("server_no_context_takeover with a value",
            "permessage-deflate; server_no_context_takeover=1"),
           ("client_no_context_takeover with a value",
            "permessage-deflate; client_no_context_takeover=true"),
           ("server_no_context_takeover twice", "permessage-deflate; "
            "server_no_context_takeover; server_no_context_takeover"),
           ("server_max_window_bits twice", "permessage-deflate; server_max_window_bits=10; "
            "server_max_window_bits=10"),
           ("client_max_window_bits twice", "permessage-deflate; client_max_window_bits; "
            "client_max_window_bits=10")]
    for what, offer in bad:
        add(f"{what}: declined", negotiate, offer, None)
        add(f"{what}, then a good offer: the good one accepted", negotiate,
            offer + ", permessage-deflate; server_max_window_bits=10", {swb: 10, **good})
    add("three bad offers then a good one", negotiate,
        "permessage-deflate; a, permessage-deflate; server_max_window_bits=99, "
        "permessage-deflate; client_no_context_takeover=x, permessage-deflate; "
        "server_no_context_takeover", {"server_no_context_takeover": True})
    add("two good offers: the first one is chosen", negotiate,
        "permessage-deflate; server_max_window_bits=10, permessage-deflate; "
        "server_max_window_bits=9", {swb: 10})
    add("offers in two header fields: good one in the second", negotiate,
        "permessage-deflate; bogus\r\nSec-WebSocket-Extensions: permessage-deflate; "
        "server_max_window_bits=9", {swb: 9})


# ---- group 15: compressed framing and errors ------------------------------------------

def open_default(t):
    return Pmd(t, pmd_offer("client_max_window_bits"))


def fragmented(t, op, n, pieces, ping=False):
    pm = open_default(t)
    p = pm.peer
    payload = sample(op, "compressible", n)
    data = pm.tx.compress(payload)
    cuts = [len(data) * i // pieces for i in range(pieces + 1)]
    for i in range(pieces):
        p.send_frame(op if i == 0 else CONT, data[cuts[i]:cuts[i + 1]], fin=i == pieces - 1,
                     rsv=RSV1 if i == 0 else 0)
        if ping and i == pieces // 2:
            p.send_frame(PING, b"mid")
    if ping:
        p.expect_pong(b"mid")
    pm.expect_echo(op, payload)
    pm.echo(op, payload)  # and the context goes on
    clean_close(p)


def rsv_error(t, where):
    pm = open_default(t)
    p = pm.peer
    payload = text_sample(1000)
    if where == "continuation":
        pmd_message(p, TEXT, payload, pm.tx, pieces=3, rsv_cont=RSV1)
        fails(p, 1002, partial_of=payload)
    elif where == "ping":
        p.send_frame(PING, b"x", rsv=RSV1)
        fails(p, 1002)
    elif where == "close":
        p.send_frame(CLOSE, close_payload(1000), rsv=RSV1)
        fails(p, 1002)
    elif where == "compressed ping":
        p.send_frame(PING, Deflater().compress(b"ping"), rsv=RSV1)
        fails(p, 1002)
    elif where == "rsv2":
        pmd_message(p, TEXT, payload, pm.tx, rsv_first=RSV1 | RSV2)
        fails(p, 1002)
    elif where == "rsv3":
        pmd_message(p, BINARY, payload, pm.tx, rsv_first=RSV3)
        fails(p, 1002)
    elif where == "continuation-only-last":
        pmd_message(p, TEXT, payload, None, pieces=2, rsv_first=0, rsv_cont=RSV1)
        fails(p, 1002, partial_of=payload)


def bad_data(t, how):
    pm = open_default(t)
    p = pm.peer
    if how == "corrupt":
        p.send_frame(BINARY, b"\xff\xff\xff\xff\xff\xff\xff\xff", rsv=RSV1)
        fails(p, 1007)
    elif how == "corrupt after good":
        good = pm.tx.compress(binary_sample(5000))
        p.send_frame(BINARY, good[:50] + b"\xff" * 40 + good[90:], rsv=RSV1)
        fails(p, 1007)
    elif how == "truncated":
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        whole = z.compress(text_sample(20000)) + z.flush(zlib.Z_SYNC_FLUSH)
        p.send_frame(TEXT, whole[:len(whole) // 2], rsv=RSV1)
        fails(p, 1007)
    elif how == "invalid utf-8":
        p.send_frame(TEXT, pm.tx.compress(text_sample(500) + b"\xed\xa0\x80" + b"abc" * 50),
                     rsv=RSV1)
        fails(p, 1007, partial_of=text_sample(500))
    elif how == "invalid utf-8 small":
        p.send_frame(TEXT, pm.tx.compress(b"\xff"), rsv=RSV1)
        fails(p, 1007)
    elif how == "truncated utf-8":
        p.send_frame(TEXT, pm.tx.compress(b"ab\xf0\x9f\x98"), rsv=RSV1)
        fails(p, 1007)
    elif how == "utf-8 split across frames":
        data = pm.tx.compress("\u03ba\u1f79\u03c3\u03bc\u03b5\U0001F600".encode() * 30)
        for i in range(len(data)):
            p.send_frame(TEXT if i == 0 else CONT, data[i:i + 1], fin=i == len(data) - 1,
                         rsv=RSV1 if i == 0 else 0)
        pm.expect_echo(TEXT, "\u03ba\u1f79\u03c3\u03bc\u03b5\U0001F600".encode() * 30)
        clean_close(p)
    elif how == "dictionary distance too far":
        # A distance back into nothing: inflate must fail, not read garbage.
        p.send_frame(BINARY, bytes.fromhex("0a0c0500") + b"\x00" * 8, rsv=RSV1)
        ev = p.expect_close((1007,))
        p.send_frame(CLOSE, close_payload(ev.code))
        p.expect_tcp_close()


def zip_bomb(t, fragmented_frames):
    pm = open_default(t)
    p = pm.peer
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    n = 20 << 20
    data = z.compress(b"\x00" * n) + z.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4]
    t0 = time.monotonic()
    if fragmented_frames:
        step = 1000
        for i in range(0, len(data), step):
            last = i + step >= len(data)
            p.send_frame(BINARY if i == 0 else CONT, data[i:i + step], fin=last,
                         rsv=RSV1 if i == 0 else 0)
            if p.eof or p.rbuf:
                break
    else:
        p.send_frame(BINARY, data, rsv=RSV1)
    ev = p.expect_close(1009)
    dt = time.monotonic() - t0
    if dt > 3.0:
        raise Fail(f"1009 came {dt:.2f} s after the {len(data)} B bomb (expected quickly)")
    if ev.partial:
        raise Fail("part of the bomb was echoed")
    p.send_frame(CLOSE, close_payload(1009))
    p.expect_tcp_close()
    print(f"# zip bomb ({len(data)} B -> {n} B, {'in 1000 B frames' if fragmented_frames else 'one frame'}): "
          f"close 1009 after {dt * 1000:.0f} ms", flush=True)


def near_limit(t):
    # 16 MiB exactly (the limit) inflates and is echoed (compressed).
    pm = open_default(t)
    n = 16 << 20
    payload = b"a" * n
    pmd_message(pm.peer, BINARY, payload, pm.tx)
    ev = pm.peer.next_event(30.0)
    if ev.kind != "message" or ev.payload != payload or not ev.compressed:
        raise Fail(f"16 MiB compressed message: got {ev!r}")
    clean_close(pm.peer)


def mixed(t):
    """Compressed and uncompressed messages interleaved on one connection."""
    pm = open_default(t)
    for i in range(6):
        for op in (TEXT, BINARY):
            pm.echo(op, sample(op, "compressible", 3000 + i), compress=i % 2 == 0)
            pm.echo(op, sample(op, "random", 70 + i), compress=i % 2 == 1)
            pm.echo(op, b"short"[:i], compress=i % 3 == 0)
    clean_close(pm.peer)


def final_block(t):
    """§7.2.3.3: a message may end with a BFINAL block; the next one then starts a new
    stream (the receiver must handle it with and without context takeover)."""
    pm = open_default(t)
    p = pm.peer
    for i in range(4):
        payload = text_sample(2000 + i)
        pmd_message(p, TEXT, payload, pm.tx, final_block=i % 2 == 0)
        pm.expect_echo(TEXT, payload)
    clean_close(p)


def empty_messages(t):
    pm = open_default(t)
    p = pm.peer
    for payload in (b"\x00", b"\x02\x00"):  # empty stored block (§7.2.3.6); fixed block
        p.send_frame(BINARY, payload, rsv=RSV1)
        ev = p.expect_message(BINARY, b"")
        if ev.compressed:
            raise Fail("an empty message was echoed compressed (below the threshold)")
    p.send_frame(TEXT, b"\x00", rsv=RSV1)
    p.expect_message(TEXT, b"")
    pm.echo(TEXT, text_sample(500))
    clean_close(p)


def empty_payload(t):
    """RSV1 with no payload at all: with 00 00 FF FF appended it is a stored block
    header cut short (LEN FF00, no NLEN). Browsers and zlib-based peers read it as an
    empty message, and so must we; the context survives it (the next message may
    refer back past it)."""
    pm = open_default(t)
    p = pm.peer
    pm.echo(TEXT, text_sample(300))
    p.send_frame(BINARY, b"", rsv=RSV1)
    p.expect_message(BINARY, b"")
    pm.echo(TEXT, text_sample(300))
    clean_close(p)


def group15(s):
    add = s.adder(15)
    for op in (TEXT, BINARY):
        for n, pieces in ((100, 2), (10000, 3), (300000, 16), (5000, 40)):
            add(f"compressed {opname(op)} of {n} B in {pieces} frames, RSV1 on the first",
                fragmented, op, n, pieces)
    add("compressed text of 3000 B in frames of 1 byte... (every compressed byte a frame) "
        "with a ping in the middle", fragmented, TEXT, 3000, 60, True)
    add("RSV1 on a continuation frame -> 1002", rsv_error, "continuation")
    add("RSV1 on the last continuation only (first frame plain) -> 1002", rsv_error,
        "continuation-only-last")
    add("RSV1 on a ping -> 1002", rsv_error, "ping")
    add("RSV1 on a compressed ping -> 1002", rsv_error, "compressed ping")
    add("RSV1 on a close -> 1002", rsv_error, "close")
    add("RSV1|RSV2 on a data frame -> 1002", rsv_error, "rsv2")
    add("RSV3 on a data frame -> 1002", rsv_error, "rsv3")
    add("corrupt compressed data -> 1007", bad_data, "corrupt")
    add("corrupt bytes inside a good stream -> 1007", bad_data, "corrupt after good")
    add("truncated compressed data (not on a block boundary) -> 1007", bad_data, "truncated")
    add("distance too far back in the first block -> 1007", bad_data,
        "dictionary distance too far")
    add("compressed text inflating to invalid UTF-8 (surrogate) -> 1007", bad_data,
        "invalid utf-8")
    add("compressed text inflating to 0xFF -> 1007", bad_data, "invalid utf-8 small")
    add("compressed text inflating to a truncated 4-byte sequence -> 1007", bad_data,
        "truncated utf-8")
    add("compressed text in 1-byte frames (UTF-8 checked after inflation)", bad_data,
        "utf-8 split across frames")
    add("zip bomb: 20 KiB inflating to 20 MiB in one frame -> 1009 quickly", zip_bomb, False)
    add("zip bomb in 1000-byte frames -> 1009 before the end", zip_bomb, True)
    add("16 MiB (the limit) compressed to 16 KiB: echoed", near_limit)
    add("compressed and uncompressed messages interleaved", mixed)
    add("messages ending with a BFINAL block (§7.2.3.3)", final_block)
    add("empty compressed messages (empty stored block 00, empty fixed block 02 00)",
        empty_messages)
    add("RSV1 with an empty payload: an empty message", empty_payload)


# ---- main ----------------------------------------------------------------------------

def build_suite():
    s = Suite("server_deflate_cases")
    for g in (group12, group13, group14, group15):
        g(s)
    return s


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build, prefixes, verbose = parse_args(sys.argv)
    suite = build_suite()
    server = Server(build)

    def run_one(cid, fn, args, kw):
        if not server.alive():
            server.stop()
            server.start()
        ctx = Ctx(server, cid)
        try:
            fn(ctx, *args, **kw)
        finally:
            ctx.cleanup()
        if not server.alive():
            raise Fail(f"the server died during the case (status {server.proc.poll()})")

    try:
        try:
            server.start()
        except (Fail, OSError) as e:
            print(f"FAIL 0.0 start {' '.join(server.argv)}: {e}")
            print("server_deflate_cases: 0 passed, 1 failed")
            sys.exit(1)
        ok = suite.run(run_one, prefixes, verbose, before_summary=lambda failed: (
            failed and server.tail and print("# last lines of the server's stdout:\n" + "\n".join(
                f"#   {line}" for line in server.tail), flush=True)))
    finally:
        server.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
