#!/usr/bin/python3
"""duplex conformance, client side: BUILD/bin/echo-client against a raw server.

Usage: client_cases.py BUILD [-k CASE_PREFIX]... [-v]

For each case the harness listens on a fresh port of 127.0.0.1, launches
`BUILD/bin/echo-client ws://127.0.0.1:PORT/case/ID` (or the command in
$DX_CONF_CLIENT_CMD, the URL appended), answers the opening handshake as a
strict server, sends frames UNMASKED and checks what comes back: every frame
masked (§5.1) with fresh keys (§5.3), messages echoed with their type, close
codes echoed, protocol errors answered with the right close code. The client's
exit status is part of each case: 0 after a clean close (close frames
exchanged, then the server closes TCP), 1 after an unclean close (TCP dropped),
3 when the client had to fail the connection (a protocol error: it sent 1002,
1007, 1009...), 2 when the connection or the handshake fails (and then it sends
no frame).
Messages up to 16 MiB (echo-client's default limit) are echoed; bigger ones fail
the connection with 1009.

The groups mirror server_cases.py (1 framing, 2 ping/pong, 3 reserved bits,
4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 sizes, 10 misc, 11 handshake).
Each case prints "ok <id> <what>" or "FAIL <id> <what>: <why>"; the last line is
"client_cases: N passed, M failed", and the exit status is 1 on any failure.
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsraw import (BINARY, CLOSE, CONT, PING, PONG, RSV1, RSV2, RSV3, T_BIG,  # noqa: E402
                   T_EVENT, TEXT, UTF8_INVALID, UTF8_SPLIT, UTF8_VALID, Fail, Peer, Suite,
                   accept_for, accept_response, binary_sample, close_payload, frame, opname,
                   parse_args, pongs_before, read_request, request_problems, short,
                   text_sample)

HOST = "127.0.0.1"
T_START = 10.0  # the client connects (process start under sanitizers included)
T_EXIT = 5.0    # the client exits after the connection ended


class Ctx:
    """One case: a listener, the client process, its connection."""

    def __init__(self, argv, cid):
        self.argv = argv
        self.cid = cid
        self.ls = None
        self.proc = None
        self.peer = None
        self.req = None
        self.log = tempfile.TemporaryFile()
        self.socks = []

    def listen(self):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind((HOST, 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.path = f"/case/{self.cid}"
        return f"ws://{HOST}:{self.port}{self.path}"

    def spawn(self, url=None):
        url = url or self.listen()
        self.proc = subprocess.Popen(self.argv + [url], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def accept(self):
        self.ls.settimeout(T_START)
        try:
            s, _ = self.ls.accept()
        except socket.timeout:
            rc = self.proc.poll()
            raise Fail(f"the client did not connect within {T_START:g} s"
                       + (f" (it exited with {rc})" if rc is not None else ""))
        self.socks.append(s)
        self.peer = Peer(s, "server")
        return self.peer

    def read_request(self):
        req = read_request(self.peer)
        if req is None:
            raise Fail(f"the client closed TCP ({self.peer.eof}) before its request")
        self.req = req
        return req

    def start(self, extra=""):
        """Launch the client, accept it, answer its handshake with a 101 (§4.2.2).
        Returns the Peer."""
        self.spawn()
        p = self.accept()
        req = self.read_request()
        if req.key is None:
            raise Fail(f"no single Sec-WebSocket-Key in {req.raw!r}")
        p.send(accept_response(req.key, extra))
        return p

    def expect_exit(self, code, timeout=T_EXIT):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Fail(f"the client did not exit within {timeout:g} s (expected status {code})")
        if rc != code:
            raise Fail(f"the client exited with {rc}, expected {code}")

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace").splitlines()[-8:]

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # by PID: Popen.kill signals exactly this process
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for s in self.socks + ([self.ls] if self.ls else []):
            try:
                s.close()
            except OSError:
                pass
        self.log.close()


# ---- helpers ---------------------------------------------------------------------

def check_keys(p):
    """§5.3: "The masking key is a 32-bit value chosen at random"; "the masking
    key for each frame MUST ... be unpredictable". We can only see repeats: two
    frames in a row with the same key, or (among few frames, where a random
    repeat is too unlikely to matter) any repeat."""
    keys = p.keys
    for a, b in zip(keys, keys[1:]):
        if a == b:
            raise Fail(f"two consecutive frames masked with the same key {a.hex()} (§5.3)")
    if 1 < len(keys) <= 200 and len(set(keys)) != len(keys):
        raise Fail(f"{len(keys) - len(set(keys))} repeated masking keys in {len(keys)} "
                   "frames (§5.3)")


def server_close(t, p, code=1000, reason=b"", wait=0.0):
    """The server starts the closing handshake: the client answers with a close
    frame echoing the code (§5.5.1; echo-client's contract), an empty close
    answered by an empty close or 1000; then we close TCP first (§7.1.1) and the
    client exits 0. @wait: first check that the client keeps TCP open that long
    (§7.1.1: the server closes first; the client waits for it)."""
    p.send_frame(CLOSE, close_payload(code, reason))
    p.expect_close((None, 1000) if code is None else code)
    if wait:
        p.expect_quiet(wait)
    check_keys(p)
    p.close_tcp()
    t.expect_exit(0)


def client_fails(t, p, code, partial_of=None, timeout=T_EVENT):
    """The client fails the connection (§7.1.7): a close frame with @code; we
    close TCP; it exits 3 (it had to fail the connection)."""
    codes = code if isinstance(code, tuple) else (code,)
    p.expect_close(codes, timeout, partial_of)
    check_keys(p)
    p.close_tcp()
    t.expect_exit(3)


def echo_case(t, opcode, payload, chunk=None, pause=0.0, timeout=T_EVENT, **kw):
    p = t.start()
    p.send_frame(opcode, payload, chunk=chunk, pause=pause, **kw)
    p.expect_message(opcode, payload, timeout)
    server_close(t, p)


def send_fragments(p, opcode, pieces, chunk=None, **kw):
    data = b"".join(p.build(opcode if i == 0 else CONT, piece, fin=i == len(pieces) - 1, **kw)
                    for i, piece in enumerate(pieces))
    return p.send(data, chunk=chunk)


# ---- group 1: framing --------------------------------------------------------------

def group1(s):
    add = s.adder(1)
    for op, sample in ((TEXT, text_sample), (BINARY, binary_sample)):
        for n in (0, 125, 126, 127, 128, 65535, 65536):
            for chunk, how in ((None, "whole"), (1, "in 1-byte writes"),
                               (997, "in 997-byte writes")):
                add(f"{opname(op)} of {n} bytes {how}", echo_case, op, sample(n), chunk)

    def length_form(t, op, n, form):
        # §5.2: the minimal length encoding binds the sender; how a receiver
        # treats a longer one is not said: the echo or failing with 1002 are right.
        p = t.start()
        payload = binary_sample(n) if op == BINARY else text_sample(n)
        p.send_frame(op, payload, form=form)
        ev = p.next_event()
        if ev.kind == "close":
            if ev.code != 1002:
                raise Fail(f"expected the echo or close 1002, got {ev!r}")
            p.close_tcp()
            t.expect_exit(1)
            return
        if ev.kind != "message" or ev.opcode != op or ev.payload != payload:
            raise Fail(f"expected the echo of {short(payload)} or close 1002, got {ev!r}")
        server_close(t, p)

    add("text of 5 bytes with a 16-bit length (not minimal): echo or 1002",
        length_form, TEXT, 5, 16)
    add("binary of 5 bytes with a 64-bit length (not minimal): echo or 1002",
        length_form, BINARY, 5, 64)
    add("binary of 300 bytes with a 64-bit length (not minimal): echo or 1002",
        length_form, BINARY, 300, 64)

    def slow_header(t, op, n):
        p = t.start()
        payload = binary_sample(n) if op == BINARY else text_sample(n)
        raw = frame(op, payload)
        hlen = len(raw) - n
        p.send(raw[:hlen], chunk=1, pause=0.005)
        p.send(raw[hlen:])
        p.expect_message(op, payload)
        server_close(t, p)

    add("binary of 200 bytes, 16-bit length, header in 1-byte writes with pauses",
        slow_header, BINARY, 200)
    add("text of 70000 bytes, 64-bit length, header in 1-byte writes with pauses",
        slow_header, TEXT, 70000)

    def msb_set(t):
        # §5.2: the 64-bit length's most significant bit MUST be 0: 1002 or 1009.
        p = t.start()
        p.send(frame(BINARY, b"", length=(1 << 63) | 5, form=64))
        client_fails(t, p, (1002, 1009))

    add("64-bit length with the most significant bit set -> 1002 or 1009, exit 3", msb_set)

    def several(t):
        p = t.start()
        msgs = [(TEXT, b"one"), (BINARY, b"\x00\xff"), (TEXT, b""), (BINARY, b""),
                (TEXT, text_sample(300))]
        p.send(b"".join(frame(op, m) for op, m in msgs))
        for op, m in msgs:
            p.expect_message(op, m)
        server_close(t, p)

    add("five messages of both types in one write, echoed in order", several)


# ---- group 2: ping / pong ------------------------------------------------------------

def group2(s):
    add = s.adder(2)

    def ping(t, payload, chunk=None, pause=0.0):
        # §5.5.2: the Pong carries the Ping's application data; §5.1: masked.
        p = t.start()
        p.send_frame(PING, payload, chunk=chunk, pause=pause)
        p.expect_pong(payload)
        server_close(t, p)

    add("ping with no payload -> masked pong", ping, b"")
    add("ping with 125-byte payload -> pong", ping, text_sample(125))
    add("ping with binary payload (invalid UTF-8) -> pong", ping, bytes(range(256))[131:])
    add("ping chopped into 1-byte writes with pauses -> pong", ping, b"chopped", 1, 0.003)
    add("ping of 125 bytes in 1-byte writes -> pong", ping, binary_sample(125), 1)

    def too_big(t, op):
        # §5.5: control frames carry at most 125 bytes.
        p = t.start()
        p.send_frame(op, b"x" * 126)
        client_fails(t, p, 1002)

    add("ping with 126-byte payload -> 1002, exit 3", too_big, PING)
    add("pong with 126-byte payload -> 1002, exit 3", too_big, PONG)

    def unsolicited(t):
        # §5.5.3: no answer to an unsolicited pong.
        p = t.start()
        p.send(frame(PONG, b"unsolicited") + frame(TEXT, b"after pong"))
        p.expect_message(TEXT, b"after pong")
        server_close(t, p)

    add("unsolicited pong is ignored, the next message is echoed", unsolicited)

    def burst(t):
        # §5.5.3: only the most recent of several unanswered pings must be answered.
        p = t.start()
        payloads = [b"ping %d" % i for i in range(10)]
        p.send(b"".join(frame(PING, x) for x in payloads) + frame(TEXT, b"end"))
        ev = pongs_before(iter(lambda: p.next_event(), None), payloads)
        if ev.opcode != TEXT or ev.payload != b"end":
            raise Fail(f"wrong message {ev!r}")
        server_close(t, p)

    add("10 pings in one write -> pongs in order, the last one answered", burst)

    def one_by_one(t):
        p = t.start()
        for i in range(10):
            p.send_frame(PING, b"%d" % i)
            p.expect_pong(b"%d" % i)
        server_close(t, p)

    add("10 pings, each after the previous pong -> 10 pongs with distinct keys", one_by_one)

    def ping_then_close(t):
        # §5.5.2: a ping before the close is answered.
        p = t.start()
        p.send(frame(PING, b"before close") + frame(CLOSE, close_payload(1000)))
        p.expect_pong(b"before close")
        p.expect_close(1000)
        p.close_tcp()
        t.expect_exit(0)

    add("ping then close in one write -> pong, then close 1000, exit 0", ping_then_close)

    def close_then_ping(t):
        # §5.5.2: "unless it already received a Close frame": no pong.
        p = t.start()
        p.send(frame(CLOSE, close_payload(1000)) + frame(PING, b"after close"))
        p.expect_close(1000)
        p.expect_quiet()
        p.close_tcp()
        t.expect_exit(0)

    add("close then ping in one write -> close 1000, no pong, exit 0", close_then_ping)


# ---- group 3: reserved bits ------------------------------------------------------------

def group3(s):
    add = s.adder(3)
    # §5.2: nonzero RSV bits with no extension negotiated: Fail the connection.

    # A valid text before the bad frame is echoed. Where the case says "echoed
    # first" we wait for that echo before sending the bad frame, so a client that
    # reads ahead of its application (and may fail the connection before it sends
    # the echo) is not penalised; "in one write" sends both at once and relies on
    # echo-client's contract: it handles what it reads in order.
    def rsv_case(t, bits, kind, before):
        p = t.start()
        data = b""
        if before == "awaited":
            p.send(frame(TEXT, b"valid before"))
            p.expect_message(TEXT, b"valid before")
        elif before:
            data = frame(TEXT, b"valid before")
        partial = None
        if kind == "text":
            data += frame(TEXT, b"reserved", rsv=bits)
        elif kind == "binary":
            data += frame(BINARY, b"\x00\x01", rsv=bits)
        elif kind == "ping":
            data += frame(PING, b"ping", rsv=bits)
        elif kind == "pong":
            data += frame(PONG, b"pong", rsv=bits)
        elif kind == "close":
            data += frame(CLOSE, close_payload(1000), rsv=bits)
        elif kind == "continuation":
            data += frame(TEXT, b"first ", fin=False) + frame(CONT, b"second", rsv=bits)
            partial = b"first second"
        data += frame(TEXT, b"valid after") + frame(PING, b"after")
        p.send(data)
        if before == "one write":
            p.expect_message(TEXT, b"valid before")
        client_fails(t, p, 1002, partial_of=partial)

    names = {RSV1: "RSV1", RSV2: "RSV2", RSV3: "RSV3", 7: "RSV1+2+3", RSV1 | RSV3: "RSV1+3"}
    for bits in (RSV1, RSV2, RSV3):
        for i, kind in enumerate(("text", "binary", "ping", "pong", "close", "continuation")):
            before = "awaited" if i % 2 == 0 or kind == "continuation" else None
            add(f"{names[bits]} on {kind}{' after a valid text echoed first' if before else ''}"
                " -> 1002, exit 3", rsv_case, bits, kind, before)
    add("RSV1+2+3 on text after a valid text echoed first -> 1002, exit 3",
        rsv_case, 7, "text", "awaited")
    add("RSV1+3 on binary -> 1002, exit 3", rsv_case, RSV1 | RSV3, "binary", None)
    add("valid text and RSV1 text in one write: the echo, then 1002, exit 3",
        rsv_case, RSV1, "text", "one write")


# ---- group 4: opcodes -----------------------------------------------------------------

def group4(s):
    add = s.adder(4)
    # §5.2: unknown opcodes fail the connection.

    def opcode_case(t, op, before):
        p = t.start()
        data = b""
        if before == "awaited":  # see group 3
            p.send(frame(TEXT, b"valid before"))
            p.expect_message(TEXT, b"valid before")
        elif before:
            data = frame(TEXT, b"valid before")
        data += frame(op, b"reserved opcode" if before else b"")
        data += frame(TEXT, b"valid after") + frame(PING, b"after")
        p.send(data)
        if before == "one write":
            p.expect_message(TEXT, b"valid before")
        client_fails(t, p, 1002)

    for before in (None, "awaited"):
        for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            kind = "data" if op < 8 else "control"
            add(f"reserved {kind} opcode {op}"
                f"{' with payload after a valid text echoed first' if before else ''}"
                " -> 1002, exit 3", opcode_case, op, before)
    add("valid text and reserved opcode 5 in one write: the echo, then 1002, exit 3",
        opcode_case, 5, "one write")


# ---- group 5: fragmentation -----------------------------------------------------------

def group5(s):
    add = s.adder(5)

    def frags(t, op, pieces, chunk=None):
        p = t.start()
        send_fragments(p, op, pieces, chunk)
        p.expect_message(op, b"".join(pieces))
        server_close(t, p)

    add("text in 2 fragments", frags, TEXT, [b"frag", b"mented"])
    add("binary in 2 fragments", frags, BINARY, [b"\x00\x01", b"\xfe\xff"])
    add("text in 10 fragments", frags, TEXT, [b"part%d " % i for i in range(10)])
    add("binary in 3 fragments of 64 KiB", frags, BINARY,
        [binary_sample(65536, i) for i in range(3)])
    add("text in 1-byte fragments (200)", frags, TEXT, [bytes([c]) for c in text_sample(200)])
    add("binary in 1-byte fragments (200)", frags, BINARY, [bytes([c]) for c in binary_sample(200)])
    add("text with empty first, middle and last fragments", frags, TEXT,
        [b"", b"a", b"", b"", b"b", b""])
    add("binary message made only of 3 empty fragments", frags, BINARY, [b"", b"", b""])
    add("text in 4 fragments, sent in 1-byte writes", frags, TEXT,
        [b"one ", b"two ", b"three ", b"four"], 1)

    def with_pings(t, wait_pong):
        # §5.4: control frames between fragments are handled; §5.5.2: pong soon.
        p = t.start()
        if wait_pong:
            for i, piece in enumerate((b"alpha ", b"beta ", b"gamma")):
                last = i == 2
                p.send(frame(TEXT if i == 0 else CONT, piece, fin=last))
                if not last:
                    p.send(frame(PING, b"mid %d" % i))
                    ev = p.next_event()
                    if ev.kind != "pong" or ev.payload != b"mid %d" % i:
                        raise Fail(f"expected the pong for a ping between fragments, got {ev!r}")
            p.expect_message(TEXT, b"alpha beta gamma")
        else:
            p.send(frame(TEXT, b"alpha ", fin=False) + frame(PING, b"p1") +
                   frame(CONT, b"beta ", fin=False) + frame(PING, b"p2") +
                   frame(CONT, b"gamma", fin=True))
            ev = pongs_before(iter(lambda: p.next_event(), None), [b"p1", b"p2"])
            if ev.opcode != TEXT or ev.payload != b"alpha beta gamma":
                raise Fail(f"wrong message {ev!r}")
        server_close(t, p)

    add("text in 3 fragments with pings between, one write: pongs before the message",
        with_pings, False)
    add("text in 3 fragments, each next fragment sent only after the pong", with_pings, True)

    def with_pong(t):
        p = t.start()
        p.send(frame(BINARY, b"\x01", fin=False) + frame(PONG, b"unsolicited") +
               frame(CONT, b"\x02", fin=True))
        p.expect_message(BINARY, b"\x01\x02")
        server_close(t, p)

    add("binary in 2 fragments with an unsolicited pong between", with_pong)

    def bad(t, frames, partial=None, echoed=None):
        p = t.start()
        if echoed:  # a complete message first, echoed before we go on (see group 3)
            p.send(frame(TEXT, echoed))
            p.expect_message(TEXT, echoed)
        p.send(b"".join(frame(op, pl, **kw) for op, pl, kw in frames))
        client_fails(t, p, 1002, partial_of=partial)

    # §5.5: control frames are not fragmented; §5.4: continuation rules.
    add("fragmented ping (fin=0 then continuation) -> 1002, exit 3", bad,
        [(PING, b"frag", {"fin": False}), (CONT, b"ment", {})])
    add("fragmented close (fin=0 then continuation) -> 1002, exit 3", bad,
        [(CLOSE, close_payload(1000), {"fin": False}), (CONT, b"", {})])
    add("ping with fin=0 inside a fragmented text -> 1002, exit 3", bad,
        [(TEXT, b"start", {"fin": False}), (PING, b"x", {"fin": False}), (CONT, b"end", {})],
        b"startend")
    add("continuation (fin=1) with nothing to continue -> 1002, exit 3", bad,
        [(CONT, b"orphan", {})])
    add("continuation (fin=0) with nothing to continue -> 1002, exit 3", bad,
        [(CONT, b"orphan", {"fin": False})])
    add("continuation after a complete, echoed message -> 1002, exit 3", bad,
        [(CONT, b"orphan", {})], None, b"complete")
    add("new text while a text is unfinished -> 1002, exit 3", bad,
        [(TEXT, b"first", {"fin": False}), (TEXT, b"second", {})], b"first")
    add("new binary while a text is unfinished -> 1002, exit 3", bad,
        [(TEXT, b"first", {"fin": False}), (BINARY, b"second", {})], b"first")
    add("new text (fin=0) while a binary is unfinished -> 1002, exit 3", bad,
        [(BINARY, b"first", {"fin": False}), (TEXT, b"second", {"fin": False})], b"first")

    def close_mid(t):
        # A close between fragments is answered; the message is dropped.
        p = t.start()
        p.send(frame(TEXT, b"never ", fin=False) + frame(CLOSE, close_payload(1000)))
        p.expect_close(1000, partial_of=b"never ")
        p.close_tcp()
        t.expect_exit(0)

    add("close between fragments -> close 1000, exit 0", close_mid)


# ---- group 6: UTF-8 -------------------------------------------------------------------

def invalid_text(t, b):
    # §8.1: invalid UTF-8 in a text message fails the connection with 1007.
    p = t.start()
    p.send_frame(TEXT, b)
    client_fails(t, p, 1007, partial_of=b)


def split_every(t, b, ok, k):
    p = t.start()
    send_fragments(p, TEXT, [b[:k], b[k:]])
    if ok:
        p.expect_message(TEXT, b)
        server_close(t, p)
    else:
        client_fails(t, p, 1007, partial_of=b)


def one_byte_frags(t, b, ok):
    p = t.start()
    send_fragments(p, TEXT, [bytes([c]) for c in b])
    if ok:
        p.expect_message(TEXT, b)
        server_close(t, p)
    else:
        client_fails(t, p, 1007, partial_of=b)


def one_byte_writes(t, b, ok):
    p = t.start()
    p.send_frame(TEXT, b, chunk=1, pause=0.001)
    if ok:
        p.expect_message(TEXT, b)
        server_close(t, p)
    else:
        client_fails(t, p, 1007, partial_of=b)


def group6(s):
    add = s.adder(6)
    for what, b in UTF8_VALID:
        add(f"valid text: {what}", echo_case, TEXT, b)
    for what, b in UTF8_INVALID:
        add(f"invalid text: {what} -> 1007, exit 3", invalid_text, b)
    # A fresh process per split position would make this group slow; split at
    # every position for the first representative and at a few for the others.
    for i, (what, ok, b) in enumerate(UTF8_SPLIT):
        verdict = "valid" if ok else "invalid"
        positions = range(1, len(b)) if i < 2 else sorted({1, len(b) // 2, len(b) - 1})
        for k in positions:
            add(f"{verdict} text '{what}' in 2 fragments split at byte {k}", split_every, b, ok, k)
        add(f"{verdict} text '{what}' in 1-byte fragments", one_byte_frags, b, ok)
        add(f"{verdict} text '{what}', one frame in 1-byte writes", one_byte_writes, b, ok)

    def fail_fast_fragment(t, bad):
        # The invalid bytes are in a non-final fragment; 1007 must come before the
        # final fragment is sent (duplex fails fast; §8.1).
        p = t.start()
        good = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()
        p.send(frame(TEXT, good, fin=False) + frame(CONT, bad, fin=False))
        client_fails(t, p, 1007, partial_of=good + bad)

    add("invalid byte in the 2nd of 3 fragments: 1007 before the 3rd is sent",
        fail_fast_fragment, b"\xed\xa0\x80")
    add("U+110000 start (F4 90) in the 2nd fragment: 1007 before the 3rd is sent",
        fail_fast_fragment, b"ok\xf4\x90")

    def fail_fast_frame(t):
        # duplex fails in the read that sees the impossible byte (proto.h); the
        # RFC only requires failing (§8.1). Only 20 of 4096 payload bytes are sent.
        p = t.start()
        payload = b"valid text " + b"\xc0\xaf" + b"x" * 4083
        p.send(frame(TEXT, payload)[:4 + 20])
        client_fails(t, p, 1007, partial_of=payload)

    add("invalid byte early in a 4 KiB frame: 1007 before the rest is sent", fail_fast_frame)

    def after_valid(t):
        p = t.start()
        p.send(frame(TEXT, "\u20ac ok".encode()))
        p.expect_message(TEXT, "\u20ac ok".encode())
        p.send(frame(TEXT, b"bad \xff") + frame(TEXT, b"never echoed"))
        client_fails(t, p, 1007)

    add("valid text echoed, then invalid text and valid text: 1007, exit 3", after_valid)

    def fail_then_answered(t):
        # The server answers the client's 1007 with its own close frame, completing
        # the closing handshake: the client still had to fail the connection, exit 3.
        p = t.start()
        p.send(frame(TEXT, b"bad \xff"))
        p.expect_close(1007)
        p.send_frame(CLOSE, close_payload(1007))
        check_keys(p)
        p.close_tcp()
        t.expect_exit(3)

    add("invalid text -> 1007, the server answers the close: still exit 3", fail_then_answered)
    add("invalid UTF-8 in a binary message is echoed", echo_case, BINARY,
        b"\xff\xfe\xed\xa0\x80\xc0\x80")


# ---- group 7: closing -----------------------------------------------------------------

VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
               3999, 4000, 4999)
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)


def group7(s):
    add = s.adder(7)

    add("close with no payload -> empty close (or 1000), exit 0",
        lambda t: server_close(t, t.start(), None))
    add("close 1000 with a reason -> close 1000, exit 0",
        lambda t: server_close(t, t.start(), 1000, b"bye"))
    for code in VALID_CODES:
        add(f"close {code} -> close {code} echoed, exit 0",
            lambda t, c=code: server_close(t, t.start(), c))

    def bad_close(t, body, code):
        p = t.start()
        p.send_frame(CLOSE, body)
        client_fails(t, p, code)

    # §7.4.1/§7.4.2, as in server_cases.py.
    for code in INVALID_CODES:
        add(f"close with invalid code {code} -> 1002, exit 3", bad_close, close_payload(code), 1002)
    add("close with a 1-byte payload -> 1002, exit 3", bad_close, b"\x03", 1002)
    add("close 1000 with an invalid UTF-8 reason -> 1007, exit 3", bad_close,
        close_payload(1000, b"bad \xed\xa0\x80"), 1007)
    add("close 1000 with a truncated UTF-8 reason -> 1007, exit 3", bad_close,
        close_payload(1000, b"cut \xe2\x82"), 1007)
    add("close 1000 with a 123-byte reason -> close 1000, exit 0",
        lambda t: server_close(t, t.start(), 1000, b"r" * 123))
    add("close 1000 with a multi-byte UTF-8 reason -> close 1000, exit 0",
        lambda t: server_close(t, t.start(), 1000, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()))
    add("close 1000 with a 124-byte reason (payload 126) -> 1002, exit 3", bad_close,
        close_payload(1000, b"r" * 124), 1002)

    def data_after_close(t):
        # §5.5.1: after its close the client sends no data frame; what follows our
        # close is not echoed.
        p = t.start()
        p.send(frame(CLOSE, close_payload(1000)) + frame(TEXT, b"after close") +
               frame(BINARY, b"\x00"))
        p.expect_close(1000)
        p.expect_quiet()
        p.close_tcp()
        t.expect_exit(0)

    add("text and binary after our close are not echoed, exit 0", data_after_close)

    def waits_for_server(t):
        # §7.1.1: "the underlying TCP connection, in most normal cases, SHOULD be
        # closed first by the server"; §5.5.1/§7.1.1: the client waits for it. We
        # keep TCP open 0.5 s after its close frame: it must not close it.
        p = t.start()
        p.send_frame(TEXT, b"x")
        p.expect_message(TEXT, b"x")
        server_close(t, p, 1000, b"", wait=0.5)

    add("after the closing handshake the client leaves closing TCP to the server",
        waits_for_server)

    def slow_close(t):
        # The server keeps TCP open 1 s after the handshake; the client still
        # exits 0 once the server closes (or after its own close timeout).
        p = t.start()
        p.send_frame(CLOSE, close_payload(1000))
        p.expect_close(1000)
        time.sleep(1.0)
        p.close_tcp()
        t.expect_exit(0)

    add("the server closes TCP 1 s after the closing handshake: exit 0", slow_close)

    def tcp_drop(t):
        # TCP ends without a close frame: §7.1.5 code 1006, not clean: exit 1.
        p = t.start()
        p.send_frame(TEXT, b"x")
        p.expect_message(TEXT, b"x")
        p.close_tcp()
        t.expect_exit(1)

    add("the server drops TCP without a close frame -> exit 1", tcp_drop)

    def drop_mid_frame(t):
        p = t.start()
        p.send(frame(BINARY, b"y" * 100)[:50])
        time.sleep(0.1)
        p.close_tcp()
        t.expect_exit(1)

    add("the server drops TCP in the middle of a frame -> exit 1", drop_mid_frame)

    def close_chopped(t):
        p = t.start()
        p.send_frame(CLOSE, close_payload(1000, b"chopped"), chunk=1, pause=0.002)
        p.expect_close(1000)
        p.close_tcp()
        t.expect_exit(0)

    add("close with reason in 1-byte writes with pauses -> close 1000, exit 0", close_chopped)

    def close_after_messages(t):
        p = t.start()
        p.send(b"".join(frame(TEXT, b"m%d" % i) for i in range(5)) +
               frame(CLOSE, close_payload(3000)))
        for i in range(5):
            p.expect_message(TEXT, b"m%d" % i)
        p.expect_close(3000)
        p.close_tcp()
        t.expect_exit(0)

    # echo-client's contract: it echoes every message it read before the close
    # (the RFC would also let it answer the close first and drop them).
    add("5 messages then close 3000 in one write: 5 echoes, close 3000, exit 0",
        close_after_messages)


# ---- group 9: sizes ------------------------------------------------------------------

def big(t, op, n, frag):
    p = t.start()
    payload = text_sample(n) if op == TEXT else binary_sample(n, n)
    if frag:
        send_fragments(p, op, [payload[i:i + frag] for i in range(0, n, frag)])
    else:
        p.send_frame(op, payload)
    p.expect_message(op, payload, timeout=T_BIG)
    server_close(t, p)


def group9(s):
    add = s.adder(9)
    for n in (64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20):
        for op in (TEXT, BINARY):
            label = f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
            add(f"{opname(op)} of {label} in one frame", big, op, n, None)
            add(f"{opname(op)} of {label} in 64 KiB fragments", big, op, n, 64 << 10)

    def many_small(t):
        p = t.start()
        msgs = [b"msg %04d ..........." % i for i in range(1000)]  # 20 bytes each
        p.send(b"".join(frame(TEXT if i % 2 else BINARY, m) for i, m in enumerate(msgs)))
        for i, m in enumerate(msgs):
            p.expect_message(TEXT if i % 2 else BINARY, m)
        server_close(t, p)

    add("1000 messages of 20 bytes in one write, echoed in order", many_small)

    def over_limit(t, op, fragmented):
        # echo-client's limit is 16 MiB (its default --max-message); one byte more
        # -> 1009 (§7.4.1 "message too big to process"), exit 3. We stop sending
        # when the close arrives.
        p = t.start()
        n = (16 << 20) + 1
        payload = binary_sample(n) if op == BINARY else text_sample(n)
        if fragmented:
            step = 4 << 20
            data = b"".join(frame(op if i == 0 else CONT, payload[i:i + step], fin=i + step >= n)
                            for i in range(0, n, step))
        else:
            data = frame(op, payload)
        p.send(data, chunk=256 << 10)
        client_fails(t, p, 1009, partial_of=payload, timeout=T_BIG)

    add("binary of 16 MiB + 1 byte in one frame -> 1009, exit 3", over_limit, BINARY, False)
    add("text of 16 MiB + 1 byte in 4 MiB fragments -> 1009, exit 3", over_limit, TEXT, True)


# ---- group 10: miscellaneous ---------------------------------------------------------

def group10(s):
    add = s.adder(10)

    def many_frags(t):
        p = t.start()
        payload = text_sample(65536)
        send_fragments(p, TEXT, [payload[i:i + 1] for i in range(len(payload))])
        p.expect_message(TEXT, payload, timeout=T_BIG)
        server_close(t, p)

    add("64 KiB text in 65536 fragments of 1 byte", many_frags)

    def masked(t, op, payload, before):
        # §5.1: "A client MUST close a connection if it detects a masked frame"
        # (and §7.4.1: with 1002 when it sends a close first).
        p = t.start()
        if before:
            p.send(frame(TEXT, b"unmasked first"))
            p.expect_message(TEXT, b"unmasked first")
        p.send(frame(op, payload, key=os.urandom(4)))
        client_fails(t, p, 1002)

    add("masked text frame from the server -> 1002, exit 3", masked, TEXT, b"masked", True)
    add("masked binary frame of 0 bytes -> 1002, exit 3", masked, BINARY, b"", False)
    add("masked ping -> 1002, exit 3", masked, PING, b"masked", True)
    add("masked close 1000 -> 1002, exit 3", masked, CLOSE, close_payload(1000), False)

    def masked_cont(t):
        p = t.start()
        p.send(frame(TEXT, b"start ", fin=False) + frame(CONT, b"masked", key=b"\1\2\3\4"))
        client_fails(t, p, 1002, partial_of=b"start masked")

    add("masked continuation frame -> 1002, exit 3", masked_cont)

    def early_frames(t):
        # The 101 and the first frames in one write (§4.1: data after the
        # response's head belongs to the WebSocket stream).
        t.spawn()
        p = t.accept()
        req = t.read_request()
        p.send(accept_response(req.key) + frame(TEXT, b"early one") + frame(BINARY, b"early two"))
        p.expect_message(TEXT, b"early one")
        p.expect_message(BINARY, b"early two")
        server_close(t, p)

    add("frames in the same write as the 101 response are echoed", early_frames)

    def fresh_keys(t):
        p = t.start()
        p.send(b"".join(frame(BINARY, b"%d" % i) for i in range(100)))
        for i in range(100):
            p.expect_message(BINARY, b"%d" % i)
        if len(p.keys) < 100:
            raise Fail(f"only {len(p.keys)} masked frames for 100 echoes")
        server_close(t, p)  # checks the keys: no repeats among these frames

    add("100 echoes: every frame masked with a different key (§5.3)", fresh_keys)

    def fail_mid_big(t):
        p = t.start()
        payload = binary_sample(1 << 20, 7)
        p.send(frame(BINARY, payload))
        p.expect_message(BINARY, payload, timeout=T_BIG)
        p.send(frame(5, b""))
        client_fails(t, p, 1002)

    add("1 MiB binary echoed, then a reserved opcode: 1002, exit 3", fail_mid_big)


# ---- group 11: opening handshake (§4.1) -------------------------------------------------

def group11(s):
    add = s.adder(11)

    def request_ok(t):
        p = t.start()
        problems = request_problems(t.req, HOST, t.port, t.path)
        if problems:
            raise Fail("; ".join(problems) + f"\nrequest: {t.req.raw!r}")
        server_close(t, p)

    add("the upgrade request follows §4.1 (GET, HTTP/1.1, Host with port, Upgrade, "
        "Connection, 16-byte key, version 13)", request_ok)

    def fresh_key(t):
        t.start()
        k1 = t.req.key
        t.proc.kill()
        t.proc.wait(5)
        t.ls.close()
        t.socks[-1].close()
        t.start()
        if t.req.key == k1:
            raise Fail(f"two connections sent the same Sec-WebSocket-Key {k1} (§4.1 item 7: "
                       "randomly selected for each connection)")

    add("each connection sends a new Sec-WebSocket-Key", fresh_key)

    def refused(t, response):
        # §4.1: the client MUST _Fail the WebSocket Connection_ on each of these;
        # before the connection is established that means closing TCP without a
        # close frame (§7.1.7), and echo-client exits 2.
        t.spawn()
        p = t.accept()
        req = t.read_request()
        p.send(response(req.key or "").encode("latin-1"))
        # It may close TCP at once or wait for us to (§7.1.1); we listen 1 s for
        # any byte, then close our side.
        deadline = time.monotonic() + 1.0
        while not p.rbuf and not p.eof and p._read_some(deadline):
            pass
        if p.rbuf:
            raise Fail(f"the client sent {short(p.rbuf)} after a refused handshake")
        p.close_tcp()
        t.expect_exit(2)

    ok_lines = lambda k: ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
                          "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept_for(k)}"]
    resp = lambda lines: "\r\n".join(lines) + "\r\n\r\n"
    add("wrong Sec-WebSocket-Accept -> no frame, exit 2", refused,
        lambda k: resp(ok_lines(k)[:3] + [f"Sec-WebSocket-Accept: {accept_for(k + 'x')}"]))
    add("no Sec-WebSocket-Accept -> no frame, exit 2", refused, lambda k: resp(ok_lines(k)[:3]))
    add("two Sec-WebSocket-Accept fields -> no frame, exit 2", refused,
        lambda k: resp(ok_lines(k) + [ok_lines(k)[3]]))
    add("status 200 instead of 101 -> no frame, exit 2", refused,
        lambda k: resp(["HTTP/1.1 200 OK"] + ok_lines(k)[1:] + ["Content-Length: 0"]))
    add("status 403 -> no frame, exit 2", refused,
        lambda k: resp(["HTTP/1.1 403 Forbidden", "Content-Length: 0"]))
    add("no Upgrade header -> no frame, exit 2", refused,
        lambda k: resp([ok_lines(k)[0]] + ok_lines(k)[2:]))
    add("Upgrade: h2c -> no frame, exit 2", refused,
        lambda k: resp([ok_lines(k)[0], "Upgrade: h2c"] + ok_lines(k)[2:]))
    add("no Connection header -> no frame, exit 2", refused,
        lambda k: resp(ok_lines(k)[:2] + ok_lines(k)[3:]))
    add("Connection: keep-alive (no upgrade token) -> no frame, exit 2", refused,
        lambda k: resp(ok_lines(k)[:2] + ["Connection: keep-alive"] + ok_lines(k)[3:]))
    add("an extension the client did not offer -> no frame, exit 2", refused,
        lambda k: resp(ok_lines(k) + ["Sec-WebSocket-Extensions: x-webkit-deflate-frame"]))
    add("a subprotocol the client did not offer -> no frame, exit 2", refused,
        lambda k: resp(ok_lines(k) + ["Sec-WebSocket-Protocol: chat"]))
    add("garbage instead of an HTTP response -> no frame, exit 2", refused,
        lambda k: "SSH-2.0-OpenSSH_9.2\r\n\r\n")

    def closed_early(t):
        t.spawn()
        p = t.accept()
        t.read_request()
        p.close_tcp()
        t.expect_exit(2)

    add("the server closes TCP before answering -> exit 2", closed_early)

    def refused_conn(t):
        s = socket.socket()
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        t.spawn(f"ws://{HOST}:{port}/case/{t.cid}")
        t.expect_exit(2)

    add("connection refused -> exit 2", refused_conn)

    def accepted(t, lines_fn, chunk=None):
        t.spawn()
        p = t.accept()
        req = t.read_request()
        p.send(resp(lines_fn(req.key)).encode(), chunk=chunk, pause=0.002 if chunk else 0)
        p.send_frame(TEXT, b"after handshake")
        p.expect_message(TEXT, b"after handshake")
        server_close(t, p)

    # §4.1: the checks are ASCII case-insensitive and Connection is a token list.
    add("101 with header names and values in other cases, Connection: keep-alive, Upgrade "
        "-> accepted", accepted,
        lambda k: ["HTTP/1.1 101 Web Socket Protocol Handshake", "upgrade: WebSocket",
                   "connection: keep-alive, UPGRADE", f"SEC-WEBSOCKET-ACCEPT: {accept_for(k)}",
                   "Server: conformance", "Date: Thu, 01 Jan 1970 00:00:00 GMT"])
    add("101 response in 1-byte writes with pauses -> accepted", accepted, ok_lines, 1)


# ---- main -------------------------------------------------------------------------------

def build_suite():
    s = Suite("client_cases")
    for g in (group1, group2, group3, group4, group5, group6, group7, group9, group10, group11):
        g(s)
    return s


def main():
    # run.sh's timeout sends SIGTERM: unwind through the finally blocks, which
    # kill the client by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build, prefixes, verbose = parse_args(sys.argv)
    cmd = os.environ.get("DX_CONF_CLIENT_CMD")
    argv = shlex.split(cmd) if cmd else [os.path.join(build, "bin", "echo-client")]
    suite = build_suite()
    if not os.path.exists(argv[0]) and "/" in argv[0]:
        print(f"FAIL 0.0 {argv[0]} not found")
        print("client_cases: 0 passed, 1 failed")
        sys.exit(1)

    def run_one(cid, fn, args, kw):
        t = Ctx(argv, cid)
        try:
            fn(t, *args, **kw)
            if t.peer is not None:
                check_keys(t.peer)  # for the cases that end without server_close()
        except Fail as e:
            out = t.output()
            raise Fail(str(e) + "".join(f"\nclient: {line}" for line in out))
        finally:
            t.cleanup()

    ok = suite.run(run_one, prefixes, verbose)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
