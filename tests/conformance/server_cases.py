#!/usr/bin/python3
"""duplex conformance, server side: BUILD/bin/echo-server against raw frames.

Usage: server_cases.py BUILD [-k CASE_PREFIX]... [-v]

Starts `BUILD/bin/echo-server --port 0 --host 127.0.0.1` (or the command in
$DX_CONF_SERVER_CMD, e.g. "build/bin/sansio-echo --port 0"), waits for its
"listening on [ws://]HOST:PORT" line, runs every case over 127.0.0.1 on fresh
connections, and stops it by PID. The groups follow the Autobahn|Testsuite's
(1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8,
7 close, 9 sizes, 10 misc) plus 11, the opening handshake; the cases are ours.

What an echo server must do is RFC 6455 plus echo-server's contract: echo every
message with its type (the echo may be fragmented differently: only whole
messages are compared), answer pings, echo the close code, accept messages up to
16 MiB and refuse bigger ones with 1009, and on SIGTERM close every connection
with 1001 and exit 0.

Each case prints "ok <id> <what>" or "FAIL <id> <what>: <why>"; the last line is
"server_cases: N passed, M failed", and the exit status is 1 on any failure.
"""
import collections
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsraw import (BINARY, CLOSE, CONT, PING, PONG, RSV1, RSV2, RSV3, T_BIG, T_CLOSE,  # noqa: E402
                   T_EVENT, TEXT, UTF8_INVALID, UTF8_SPLIT, UTF8_VALID, Fail, Peer, Suite,
                   binary_sample, check_101, client_handshake, close_payload, frame,
                   header_values, new_key, opname, parse_args, parse_head, pongs_before,
                   read_head, short, text_sample)

HOST = "127.0.0.1"
MAX = 16 << 20  # echo-server's message limit


# ---- the server under test --------------------------------------------------------

class Server:
    def __init__(self, build):
        cmd = os.environ.get("DX_CONF_SERVER_CMD")
        self.argv = (shlex.split(cmd) if cmd else
                     [os.path.join(build, "bin", "echo-server"), "--port", "0", "--host", HOST])
        self.proc = None
        self.port = None
        self.tail = collections.deque(maxlen=20)

    def start(self, timeout=15.0):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        pat = re.compile(rb"listening on (?:ws://)?([0-9.]+|\[[0-9a-fA-F:]+\]|[\w.*-]+):(\d+)[/\s]")
        while True:
            m = pat.search(buf)
            if m:
                break
            left = deadline - time.monotonic()
            r = select.select([fd], [], [], left)[0] if left > 0 else []
            if not r:
                raise Fail(f"{self.argv[0]} printed no 'listening on HOST:PORT' line in "
                           f"{timeout:g} s (it printed {buf[-200:]!r})")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise Fail(f"{self.argv[0]} exited ({self.proc.wait()}) before listening")
            buf += chunk
        self.port = int(m.group(2))
        # Keep reading its stdout so that it never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(fd,), daemon=True).start()

    def _drain(self, fd):
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            for line in chunk.decode("utf-8", "replace").splitlines():
                self.tail.append(line)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()  # by PID: Popen.kill signals exactly this process
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


class Ctx:
    """What a case gets: open() connections (closed after the case) and the server."""

    def __init__(self, server, cid):
        self.server = server
        self.path = f"/conformance/{cid}"
        self.peers = []

    def tcp(self):
        s = socket.create_connection((HOST, self.server.port), timeout=T_EVENT)
        self.peers.append(s)
        return s

    def open(self):
        """A fresh connection after a strict opening handshake (§4.1)."""
        return client_handshake(self.tcp(), HOST, self.server.port, self.path)

    def cleanup(self):
        for s in self.peers:
            try:
                s.close()
            except OSError:
                pass
        self.peers = []


# ---- helpers ----------------------------------------------------------------------

def clean_close(p, code=1000, reason=b""):
    """Close from our side: the server answers with a close frame (§5.5.1) that
    echoes our code (echo-server's contract; the RFC says SHOULD), then closes TCP
    first, within 2 s (§7.1.1)."""
    p.send_frame(CLOSE, close_payload(code, reason))
    p.expect_close(code)
    p.expect_tcp_close()


def fails(p, code, partial_of=None, timeout=T_EVENT):
    """The server fails the connection (§7.1.7): a close frame with @code, then
    TCP closed. We answer its close as a client would (§5.5.1)."""
    codes = code if isinstance(code, tuple) else (code,)
    ev = p.expect_close(codes, timeout, partial_of)
    p.send_frame(CLOSE, close_payload(ev.code))
    p.expect_tcp_close()


def echo_case(t, opcode, payload, chunk=None, pause=0.0, timeout=T_EVENT, **kw):
    p = t.open()
    p.send_frame(opcode, payload, chunk=chunk, pause=pause, **kw)
    p.expect_message(opcode, payload, timeout)
    clean_close(p)


def send_fragments(p, opcode, pieces, chunk=None, **kw):
    """One message in len(pieces) frames: opcode, then continuations; fin on the last."""
    data = b"".join(p.build(opcode if i == 0 else CONT, piece, fin=i == len(pieces) - 1, **kw)
                    for i, piece in enumerate(pieces))
    return p.send(data, chunk=chunk)


# ---- group 1: framing ------------------------------------------------------------------

def group1(s):
    add = s.adder(1)
    sizes = (0, 125, 126, 127, 128, 65535, 65536)
    for op, sample in ((TEXT, text_sample), (BINARY, binary_sample)):
        for n in sizes:
            for chunk, how in ((None, "whole"), (1, "in 1-byte writes"),
                               (997, "in 997-byte writes")):
                add(f"{opname(op)} of {n} bytes {how}", echo_case, op, sample(n), chunk)

    def length_form(t, op, n, form):
        # §5.2: "the minimal number of bytes MUST be used to encode the length". That
        # binds the sender; the RFC does not say how a receiver treats a longer form,
        # so either the echo or failing with 1002 is right; garbage or silence is not.
        p = t.open()
        payload = binary_sample(n) if op == BINARY else text_sample(n)
        p.send_frame(op, payload, form=form)
        ev = p.next_event()
        if ev.kind == "close":
            if ev.code != 1002:
                raise Fail(f"expected the echo or close 1002, got {ev!r}")
            p.send_frame(CLOSE, close_payload(1002))
            p.expect_tcp_close()
            return
        if ev.kind != "message" or ev.opcode != op or ev.payload != payload:
            raise Fail(f"expected the echo of {short(payload)} or close 1002, got {ev!r}")
        clean_close(p)

    add("text of 5 bytes with a 16-bit length (not minimal): echo or 1002",
        length_form, TEXT, 5, 16)
    add("binary of 5 bytes with a 64-bit length (not minimal): echo or 1002",
        length_form, BINARY, 5, 64)
    add("binary of 300 bytes with a 64-bit length (not minimal): echo or 1002",
        length_form, BINARY, 300, 64)

    def slow_header(t, op, n):
        # Header bytes one per write with pauses, so the server sees a header split
        # at every position; then the payload in one write.
        p = t.open()
        payload = binary_sample(n) if op == BINARY else text_sample(n)
        raw = p.build(op, payload)
        hlen = len(raw) - n
        p.send(raw[:hlen], chunk=1, pause=0.005)
        p.send(raw[hlen:])
        p.expect_message(op, payload)
        clean_close(p)

    add("binary of 200 bytes, 16-bit length, header in 1-byte writes with pauses",
        slow_header, BINARY, 200)
    add("text of 70000 bytes, 64-bit length, header in 1-byte writes with pauses",
        slow_header, TEXT, 70000)

    def msb_set(t):
        # §5.2: in the 64-bit form "the most significant bit MUST be 0". A receiver
        # must not read that as a length; failing with 1002 (protocol error) or 1009
        # (too big) are both right. Only the header is sent.
        p = t.open()
        p.send(frame(BINARY, b"", length=(1 << 63) | 5, form=64, key=b"\1\2\3\4"))
        fails(p, (1002, 1009))

    add("64-bit length with the most significant bit set -> 1002 or 1009", msb_set)

    def several(t):
        p = t.open()
        msgs = [(TEXT, b"one"), (BINARY, b"\x00\xff"), (TEXT, b""), (BINARY, b""),
                (TEXT, text_sample(300))]
        p.send(b"".join(p.build(op, m) for op, m in msgs))
        for op, m in msgs:
            p.expect_message(op, m)
        clean_close(p)

    add("five messages of both types in one write, echoed in order", several)

    def zero_key(t):
        # §5.3: the key is 32 bits from a strong source; all-zero is one of its values.
        p = t.open()
        p.send_frame(TEXT, b"zero key", key=b"\0\0\0\0")
        p.expect_message(TEXT, b"zero key")
        clean_close(p)

    add("masked with the all-zero key: echoed", zero_key)


# ---- group 2: ping / pong --------------------------------------------------------------

def group2(s):
    add = s.adder(2)

    def ping(t, payload, chunk=None, pause=0.0):
        # §5.5.2: a Pong "MUST have identical Application data" to the Ping.
        p = t.open()
        p.send_frame(PING, payload, chunk=chunk, pause=pause)
        p.expect_pong(payload)
        clean_close(p)

    add("ping with no payload -> pong", ping, b"")
    add("ping with 125-byte payload -> pong", ping, text_sample(125))
    add("ping with binary payload (every byte value, invalid UTF-8) -> pong", ping,
        bytes(range(256))[131:])
    add("ping chopped into 1-byte writes with pauses -> pong", ping, b"chopped", 1, 0.003)
    add("ping of 125 bytes in 1-byte writes -> pong", ping, binary_sample(125), 1)

    def too_big(t, op):
        # §5.5: "All control frames MUST have a payload length of 125 bytes or less".
        p = t.open()
        p.send_frame(op, b"x" * 126)
        fails(p, 1002)

    add("ping with 126-byte payload -> 1002", too_big, PING)
    add("pong with 126-byte payload -> 1002", too_big, PONG)

    def unsolicited(t):
        # §5.5.3: "A response to an unsolicited Pong frame is not expected."
        p = t.open()
        p.send(p.build(PONG, b"unsolicited") + p.build(TEXT, b"after pong"))
        p.expect_message(TEXT, b"after pong")
        clean_close(p)

    add("unsolicited pong is ignored, the next message is echoed", unsolicited)

    def burst(t):
        # §5.5.3: only the most recent of several unanswered pings must be answered.
        p = t.open()
        payloads = [b"ping %d" % i for i in range(10)]
        p.send(b"".join(p.build(PING, x) for x in payloads) + p.build(TEXT, b"end"))
        ev = pongs_before(iter(lambda: p.next_event(), None), payloads)
        if ev.opcode != TEXT or ev.payload != b"end":
            raise Fail(f"wrong message {ev!r}")
        clean_close(p)

    add("10 pings in one write -> pongs in order, the last one answered", burst)

    def one_by_one(t):
        p = t.open()
        for i in range(10):
            p.send_frame(PING, b"%d" % i)
            p.expect_pong(b"%d" % i)
        clean_close(p)

    add("10 pings, each after the previous pong -> 10 pongs", one_by_one)

    def ping_then_close(t):
        # §5.5.2: on a Ping "an endpoint MUST send a Pong frame in response, unless
        # it already received a Close frame": here the ping comes first.
        p = t.open()
        p.send(p.build(PING, b"before close") + p.build(CLOSE, close_payload(1000)))
        p.expect_pong(b"before close")
        p.expect_close(1000)
        p.expect_tcp_close()

    add("ping then close in one write -> pong, then close 1000", ping_then_close)

    def close_then_ping(t):
        # §5.5.2: no pong for a ping that follows the peer's close.
        p = t.open()
        p.send(p.build(CLOSE, close_payload(1000)) + p.build(PING, b"after close"))
        p.expect_close(1000)
        ev = p.next_event(T_CLOSE)
        if ev.kind != "eof":
            raise Fail(f"expected TCP close, got {ev!r} (§5.5.2: no pong after a close)")

    add("close then ping in one write -> close 1000, no pong", close_then_ping)


# ---- group 3: reserved bits --------------------------------------------------------

def group3(s):
    add = s.adder(3)
    # §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines
    # meanings for non-zero values. If a nonzero value is received and none of the
    # negotiated extensions defines the meaning of such a nonzero value, the
    # receiving endpoint MUST _Fail the WebSocket Connection_." No extension is
    # negotiated here. A valid message sent before the bad frame is still echoed;
    # nothing after it is. Where the case says "echoed first" we wait for that
    # echo before sending the bad frame, so a server that reads ahead of its
    # application (and may fail the connection before it writes the echo) is not
    # penalised; "in one write" sends both at once and relies on echo-server's
    # contract: it handles what it reads in order.

    def rsv_case(t, bits, kind, before):
        p = t.open()
        data = b""
        if before == "awaited":
            p.send_frame(TEXT, b"valid before")
            p.expect_message(TEXT, b"valid before")
        elif before:
            data = p.build(TEXT, b"valid before")
        partial = None
        if kind == "text":
            data += p.build(TEXT, b"reserved", rsv=bits)
        elif kind == "binary":
            data += p.build(BINARY, b"\x00\x01", rsv=bits)
        elif kind == "ping":
            data += p.build(PING, b"ping", rsv=bits)
        elif kind == "pong":
            data += p.build(PONG, b"pong", rsv=bits)
        elif kind == "close":
            data += p.build(CLOSE, close_payload(1000), rsv=bits)
        elif kind == "continuation":
            data += p.build(TEXT, b"first ", fin=False) + p.build(CONT, b"second", rsv=bits)
            partial = b"first second"
        data += p.build(TEXT, b"valid after") + p.build(PING, b"after")
        p.send(data)
        if before == "one write":
            p.expect_message(TEXT, b"valid before")
        fails(p, 1002, partial_of=partial)

    names = {RSV1: "RSV1", RSV2: "RSV2", RSV3: "RSV3", 7: "RSV1+2+3", RSV1 | RSV3: "RSV1+3"}
    for bits in (RSV1, RSV2, RSV3):
        for i, kind in enumerate(("text", "binary", "ping", "pong", "close", "continuation")):
            before = "awaited" if i % 2 == 0 or kind == "continuation" else None
            add(f"{names[bits]} on {kind}{' after a valid text echoed first' if before else ''}"
                " -> 1002", rsv_case, bits, kind, before)
    add("RSV1+2+3 on text after a valid text echoed first -> 1002", rsv_case, 7, "text",
        "awaited")
    add("RSV1+3 on binary -> 1002", rsv_case, RSV1 | RSV3, "binary", None)
    add("valid text and RSV1 text in one write: the echo, then 1002", rsv_case, RSV1, "text",
        "one write")


# ---- group 4: opcodes ----------------------------------------------------------------

def group4(s):
    add = s.adder(4)
    # §5.2: opcodes 3-7 are reserved for further non-control frames, 0xB-0xF for
    # further control frames; "If an unknown opcode is received, the receiving
    # endpoint MUST _Fail the WebSocket Connection_."

    def opcode_case(t, op, before):
        p = t.open()
        data = b""
        if before == "awaited":  # see group 3
            p.send_frame(TEXT, b"valid before")
            p.expect_message(TEXT, b"valid before")
        elif before:
            data = p.build(TEXT, b"valid before")
        data += p.build(op, b"reserved opcode" if before else b"")
        data += p.build(TEXT, b"valid after") + p.build(PING, b"after")
        p.send(data)
        if before == "one write":
            p.expect_message(TEXT, b"valid before")
        fails(p, 1002)

    for before in (None, "awaited"):
        for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            kind = "data" if op < 8 else "control"
            add(f"reserved {kind} opcode {op}"
                f"{' with payload after a valid text echoed first' if before else ''} -> 1002",
                opcode_case, op, before)
    add("valid text and reserved opcode 5 in one write: the echo, then 1002", opcode_case, 5,
        "one write")


# ---- group 5: fragmentation --------------------------------------------------------

def group5(s):
    add = s.adder(5)

    def frags(t, op, pieces, chunk=None):
        p = t.open()
        send_fragments(p, op, pieces, chunk)
        p.expect_message(op, b"".join(pieces))
        clean_close(p)

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
        # §5.4: control frames may be injected between fragments, and an endpoint
        # "MUST be capable of handling control frames in the middle of a fragmented
        # message"; §5.5.2: the pong goes "as soon as is practical". The message is
        # not complete before its last fragment, so its echo cannot come before
        # the pongs for pings that preceded that fragment.
        p = t.open()
        if wait_pong:
            for i, piece in enumerate((b"alpha ", b"beta ", b"gamma")):
                last = i == 2
                p.send(p.build(TEXT if i == 0 else CONT, piece, fin=last))
                if not last:
                    p.send(p.build(PING, b"mid %d" % i))
                    ev = p.next_event()
                    if ev.kind != "pong" or ev.payload != b"mid %d" % i:
                        raise Fail(f"expected the pong for a ping between fragments, got {ev!r}")
            p.expect_message(TEXT, b"alpha beta gamma")
        else:
            p.send(p.build(TEXT, b"alpha ", fin=False) + p.build(PING, b"p1") +
                   p.build(CONT, b"beta ", fin=False) + p.build(PING, b"p2") +
                   p.build(CONT, b"gamma", fin=True))
            ev = pongs_before(iter(lambda: p.next_event(), None), [b"p1", b"p2"])
            if ev.opcode != TEXT or ev.payload != b"alpha beta gamma":
                raise Fail(f"wrong message {ev!r}")
        clean_close(p)

    add("text in 3 fragments with pings between, one write: pongs before the message",
        with_pings, False)
    add("text in 3 fragments, each next fragment sent only after the pong", with_pings, True)

    def with_pong(t):
        p = t.open()
        p.send(p.build(BINARY, b"\x01", fin=False) + p.build(PONG, b"unsolicited") +
               p.build(CONT, b"\x02", fin=True))
        p.expect_message(BINARY, b"\x01\x02")
        clean_close(p)

    add("binary in 2 fragments with an unsolicited pong between", with_pong)

    def bad(t, frames, partial=None):
        p = t.open()
        p.send(b"".join(p.build(*f[:2], **f[2]) if len(f) > 2 else p.build(*f) for f in frames))
        fails(p, 1002, partial_of=partial)

    # §5.5: "Control frames themselves MUST NOT be fragmented."
    add("fragmented ping (fin=0 then continuation) -> 1002", bad,
        [(PING, b"frag", {"fin": False}), (CONT, b"ment", {})])
    add("fragmented close (fin=0 then continuation) -> 1002", bad,
        [(CLOSE, close_payload(1000), {"fin": False}), (CONT, b"", {})])
    add("ping with fin=0 inside a fragmented text -> 1002", bad,
        [(TEXT, b"start", {"fin": False}), (PING, b"x", {"fin": False}), (CONT, b"end", {})],
        b"startend")
    # §5.4: a fragmented message is an unfragmented start frame followed by
    # continuation frames; a continuation frame with no message open, or a new
    # data frame while one is open, breaks that.
    add("continuation (fin=1) with nothing to continue -> 1002", bad, [(CONT, b"orphan", {})])
    add("continuation (fin=0) with nothing to continue -> 1002", bad,
        [(CONT, b"orphan", {"fin": False})])
    add("new text while a text is unfinished -> 1002", bad,
        [(TEXT, b"first", {"fin": False}), (TEXT, b"second", {})], b"first")
    add("new binary while a text is unfinished -> 1002", bad,
        [(TEXT, b"first", {"fin": False}), (BINARY, b"second", {})], b"first")
    add("new text (fin=0) while a binary is unfinished -> 1002", bad,
        [(BINARY, b"first", {"fin": False}), (TEXT, b"second", {"fin": False})], b"first")

    def complete_check(t):
        # Continuations of a previous message after its end (the echo of the first
        # is expected, then the failure).
        p = t.open()
        send_fragments(p, TEXT, [b"a", b"b"])
        p.expect_message(TEXT, b"ab")
        p.send_frame(CONT, b"c")
        fails(p, 1002)

    add("continuation after an echoed fragmented message -> 1002", complete_check)

    def after_complete(t):
        p = t.open()
        p.send(p.build(TEXT, b"complete") + p.build(CONT, b"orphan"))
        p.expect_message(TEXT, b"complete")
        fails(p, 1002)

    add("continuation right after a complete message, one write: echo, then 1002",
        after_complete)

    def close_mid(t):
        # §5.4/§5.5: a close may come between fragments; it is answered and the
        # unfinished message is dropped.
        p = t.open()
        p.send(p.build(TEXT, b"never ", fin=False) + p.build(CLOSE, close_payload(1000)))
        p.expect_close(1000, partial_of=b"never ")
        p.expect_tcp_close()

    add("close between fragments -> close 1000, TCP closed", close_mid)


# ---- group 6: UTF-8 ----------------------------------------------------------------

def group6(s):
    add = s.adder(6)
    # §5.6: text payloads are UTF-8; §8.1: an endpoint that finds that a byte
    # stream to be interpreted as UTF-8 is not "MUST _Fail the WebSocket
    # Connection_" (close 1007, §7.4.1).

    for what, b in UTF8_VALID:
        add(f"valid text: {what}", echo_case, TEXT, b)
    for what, b in UTF8_INVALID:
        add(f"invalid text: {what} -> 1007", invalid_text, b)

    for what, ok, b in UTF8_SPLIT:
        add(f"{'valid' if ok else 'invalid'} text '{what}' in 2 fragments split at every byte",
            split_every, b, ok)
        add(f"{'valid' if ok else 'invalid'} text '{what}' in 1-byte fragments",
            one_byte_frags, b, ok)
        add(f"{'valid' if ok else 'invalid'} text '{what}', one frame in 1-byte writes",
            one_byte_writes, b, ok)

    def fail_fast_fragment(t, bad):
        # The invalid bytes are in a non-final fragment: the server can tell that
        # no continuation could repair them, and must fail then (duplex fails fast;
        # §8.1 requires failing at the latest when the message ends). The final
        # fragment is never sent.
        p = t.open()
        good = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()
        p.send(p.build(TEXT, good, fin=False) + p.build(CONT, bad, fin=False))
        fails(p, 1007, partial_of=good + bad)

    add("invalid byte in the 2nd of 3 fragments: 1007 before the 3rd is sent",
        fail_fast_fragment, b"\xed\xa0\x80")
    add("U+110000 start (F4 90) in the 2nd fragment: 1007 before the 3rd is sent",
        fail_fast_fragment, b"ok\xf4\x90")

    def fail_fast_frame(t):
        # A frame whose header announces 4096 bytes; only the first 20 are sent and
        # they hold an impossible byte. duplex fails in the read that sees it
        # (proto.h); the RFC only requires failing (§8.1).
        p = t.open()
        key = os.urandom(4)
        payload = b"valid text " + b"\xc0\xaf" + b"x" * 4083
        raw = frame(TEXT, payload, key=key)
        p.send(raw[:8 + 20])
        fails(p, 1007, partial_of=payload)

    add("invalid byte early in a 4 KiB frame: 1007 before the rest is sent", fail_fast_frame)

    def after_valid(t):
        p = t.open()
        p.send_frame(TEXT, "\u20ac ok".encode())
        p.expect_message(TEXT, "\u20ac ok".encode())
        p.send(p.build(TEXT, b"bad \xff") + p.build(TEXT, b"never echoed"))
        fails(p, 1007)

    add("valid text echoed, then invalid text and valid text: 1007", after_valid)

    def binary_not_checked(t):
        echo_case(t, BINARY, b"\xff\xfe\xed\xa0\x80\xc0\x80")

    add("invalid UTF-8 in a binary message is echoed (only text is UTF-8)", binary_not_checked)


def invalid_text(t, b, chunk=None):
    p = t.open()
    p.send_frame(TEXT, b, chunk=chunk)
    fails(p, 1007, partial_of=b)


def split_every(t, b, ok):
    bad = []
    for k in range(1, len(b)):
        try:
            p = t.open()
            send_fragments(p, TEXT, [b[:k], b[k:]])
            if ok:
                p.expect_message(TEXT, b)
                clean_close(p)
            else:
                fails(p, 1007, partial_of=b)
        except Fail as e:
            bad.append(f"split at {k}: {e}")
        finally:
            t.cleanup()
    if bad:
        raise Fail(f"{len(bad)} of {len(b) - 1} splits failed: " + "\n".join(bad))


def one_byte_frags(t, b, ok):
    p = t.open()
    send_fragments(p, TEXT, [bytes([c]) for c in b])
    if ok:
        p.expect_message(TEXT, b)
        clean_close(p)
    else:
        fails(p, 1007, partial_of=b)


def one_byte_writes(t, b, ok):
    p = t.open()
    p.send_frame(TEXT, b, chunk=1, pause=0.001)
    if ok:
        p.expect_message(TEXT, b)
        clean_close(p)
    else:
        fails(p, 1007, partial_of=b)


# ---- group 7: closing ----------------------------------------------------------------

VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
               3999, 4000, 4999)
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)


def group7(s):
    add = s.adder(7)

    def empty_close(t):
        # §5.5.1: an endpoint that gets a Close "MUST send a Close frame in
        # response ... It SHOULD do so with the status code it received": there was
        # none, so an empty close (or 1000, normal closure) is the answer.
        p = t.open()
        p.send_frame(CLOSE, b"")
        p.expect_close((None, 1000))
        p.expect_tcp_close()

    add("close with no payload -> empty close (or 1000), then TCP closed", empty_close)
    add("close 1000 with a reason -> close 1000", lambda t: clean_close(t.open(), 1000, b"bye"))
    for code in VALID_CODES:
        add(f"close {code} -> close {code} echoed", lambda t, c=code: clean_close(t.open(), c))

    def bad_close(t, body, code):
        p = t.open()
        p.send_frame(CLOSE, body)
        fails(p, code)

    # §7.4.1/§7.4.2: 0-999 unused, 1004 reserved, 1005/1006/1015 never on the wire,
    # 1016-2999 reserved for this protocol's future revisions and extensions, and
    # above 4999 undefined. (1012-1014, registered with IANA since, are valid: see
    # VALID_CODES and wsraw.close_code_valid.)
    for code in INVALID_CODES:
        add(f"close with invalid code {code} -> 1002", bad_close, close_payload(code), 1002)
    # §5.5.1: a body, if any, starts with a 2-byte code.
    add("close with a 1-byte payload -> 1002", bad_close, b"\x03", 1002)
    # §5.5.1: the reason is UTF-8 (and §8.1 applies).
    add("close 1000 with an invalid UTF-8 reason -> 1007", bad_close,
        close_payload(1000, b"bad \xed\xa0\x80"), 1007)
    add("close 1000 with a truncated UTF-8 reason -> 1007", bad_close,
        close_payload(1000, b"cut \xe2\x82"), 1007)
    add("close 1000 with a 123-byte reason -> close 1000",
        lambda t: clean_close(t.open(), 1000, b"r" * 123))
    add("close 1000 with a multi-byte UTF-8 reason -> close 1000",
        lambda t: clean_close(t.open(), 1000, "\u03ba\u1f79\u03c3\u03bc\u03b5 \U0001F600".encode()))
    # §5.5: control frames carry at most 125 bytes: a 124-byte reason is too long.
    add("close 1000 with a 124-byte reason (payload 126) -> 1002", bad_close,
        close_payload(1000, b"r" * 124), 1002)

    def data_after_close(t):
        # §5.5.1: after its close the server sends no data frame, and it has no
        # reason to echo what follows ours (§1.4: the close is the last frame).
        p = t.open()
        p.send(p.build(CLOSE, close_payload(1000)) + p.build(TEXT, b"after close") +
               p.build(BINARY, b"\x00"))
        p.expect_close(1000)
        ev = p.next_event(T_CLOSE)
        if ev.kind != "eof":
            raise Fail(f"expected TCP close, got {ev!r}")

    add("text and binary after our close are not echoed", data_after_close)

    def server_closes_tcp(t):
        # §7.1.1: after the closing handshake the server SHOULD close TCP first
        # (echo-server must); we keep ours open and wait at most 2 s.
        p = t.open()
        p.send_frame(TEXT, b"x")
        p.expect_message(TEXT, b"x")
        p.send_frame(CLOSE, close_payload(1000))
        p.expect_close(1000)
        t0 = time.monotonic()
        p.expect_tcp_close(T_CLOSE)
        if p.eof != "eof":
            raise Fail(f"TCP ended by {p.eof}, not by an orderly close")
        if time.monotonic() - t0 > T_CLOSE:
            raise Fail("TCP closed too late")

    add("after the closing handshake the server closes TCP (FIN) within 2 s", server_closes_tcp)

    def close_chopped(t):
        p = t.open()
        p.send_frame(CLOSE, close_payload(1000, b"chopped"), chunk=1, pause=0.002)
        p.expect_close(1000)
        p.expect_tcp_close()

    add("close with reason in 1-byte writes with pauses -> close 1000", close_chopped)

    def close_after_messages(t):
        p = t.open()
        p.send(b"".join(p.build(TEXT, b"m%d" % i) for i in range(5)) +
               p.build(CLOSE, close_payload(3000)))
        for i in range(5):
            p.expect_message(TEXT, b"m%d" % i)
        p.expect_close(3000)
        p.expect_tcp_close()

    # echo-server's contract: it echoes every message it read before the close
    # (the RFC would also let it answer the close first and drop them).
    add("5 messages then close 3000 in one write: 5 echoes, then close 3000", close_after_messages)

    def tcp_half_close(t):
        # The client closes TCP without a close frame: nothing to answer; the
        # server just ends the connection (§7.1.5: code 1006 locally).
        p = t.open()
        p.send_frame(TEXT, b"bye")
        p.expect_message(TEXT, b"bye")
        p.sock.shutdown(socket.SHUT_WR)
        ev = p.next_event(T_CLOSE)
        if ev.kind == "close":  # not required, not forbidden: then TCP closes
            ev = p.next_event(T_CLOSE)
        if ev.kind != "eof":
            raise Fail(f"expected TCP close, got {ev!r}")

    add("client shuts down TCP without a close frame: the server closes too", tcp_half_close)


# ---- group 9: sizes ------------------------------------------------------------------------

def group9(s):
    add = s.adder(9)
    for n in (64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20):
        for op in (TEXT, BINARY):
            label = f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
            add(f"{opname(op)} of {label} in one frame", big, op, n, None)
            add(f"{opname(op)} of {label} in 64 KiB fragments", big, op, n, 64 << 10)

    def many_small(t):
        p = t.open()
        msgs = [b"msg %04d ..........." % i for i in range(1000)]  # 20 bytes each
        p.send(b"".join(p.build(TEXT if i % 2 else BINARY, m) for i, m in enumerate(msgs)))
        for i, m in enumerate(msgs):
            p.expect_message(TEXT if i % 2 else BINARY, m)
        clean_close(p)

    add("1000 messages of 20 bytes in one write, echoed in order", many_small)

    def over_limit(t, op, fragmented):
        # echo-server's limit is 16 MiB; one byte more -> 1009 (§7.4.1 "message too
        # big to process"). The server may refuse at the header (duplex does) or
        # after reading; we stop sending when the close arrives.
        p = t.open()
        n = MAX + 1
        payload = binary_sample(n) if op == BINARY else text_sample(n)
        if fragmented:
            data = b"".join(p.build(op if i == 0 else CONT, payload[i:i + (4 << 20)],
                                    fin=i + (4 << 20) >= n)
                            for i in range(0, n, 4 << 20))
        else:
            data = p.build(op, payload)
        p.send(data, chunk=256 << 10)
        fails(p, 1009, partial_of=payload, timeout=T_BIG)

    add("binary of 16 MiB + 1 byte in one frame -> 1009", over_limit, BINARY, False)
    add("text of 16 MiB + 1 byte in 4 MiB fragments -> 1009", over_limit, TEXT, True)


def big(t, op, n, frag):
    p = t.open()
    payload = text_sample(n) if op == TEXT else binary_sample(n, n)
    if frag:
        send_fragments(p, op, [payload[i:i + frag] for i in range(0, n, frag)])
    else:
        p.send_frame(op, payload)
    p.expect_message(op, payload, timeout=T_BIG)
    clean_close(p)


# ---- group 10: miscellaneous ----------------------------------------------------------

def group10(s):
    add = s.adder(10)

    def many_frags(t):
        p = t.open()
        payload = text_sample(65536)
        send_fragments(p, TEXT, [payload[i:i + 1] for i in range(len(payload))])
        p.expect_message(TEXT, payload, timeout=T_BIG)
        clean_close(p)

    add("64 KiB text in 65536 fragments of 1 byte", many_frags)

    def unmasked(t, op, payload):
        # §5.1: "a client MUST mask all frames that it sends to the server"; "The
        # server MUST close the connection upon receiving a frame that is not
        # masked" (we check it sends 1002 first, §7.4.1).
        p = t.open()
        p.send_frame(TEXT, b"masked first")
        p.expect_message(TEXT, b"masked first")
        p.send(frame(op, payload))
        fails(p, 1002)

    add("unmasked text frame from the client -> 1002", unmasked, TEXT, b"unmasked")
    add("unmasked binary frame of 0 bytes -> 1002", unmasked, BINARY, b"")
    add("unmasked ping -> 1002", unmasked, PING, b"unmasked")
    add("unmasked close 1000 -> 1002", unmasked, CLOSE, close_payload(1000))

    def unmasked_cont(t):
        p = t.open()
        p.send(p.build(TEXT, b"start ", fin=False) + frame(CONT, b"unmasked"))
        fails(p, 1002, partial_of=b"start unmasked")

    add("unmasked continuation frame -> 1002", unmasked_cont)

    def early_frames(t):
        # Frames in the same write as the handshake request: the server must keep
        # the bytes after the head (§4.2.1 does not forbid the client to send
        # early; what follows the head belongs to the WebSocket stream).
        s = t.tcp()
        p = Peer(s, "client")
        key = new_key()
        req = (f"GET /early HTTP/1.1\r\nHost: {HOST}:{t.server.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        p.send(req + p.build(TEXT, b"early one") + p.build(BINARY, b"early two"))
        head = read_head(p)
        if head is None:
            raise Fail("server closed during the handshake")
        check_101(head, key)
        p.expect_message(TEXT, b"early one")
        p.expect_message(BINARY, b"early two")
        clean_close(p)

    add("frames in the same write as the upgrade request are echoed", early_frames)

    def two_conns(t):
        a, b = t.open(), t.open()
        b.send_frame(TEXT, b"to b")
        a.send_frame(TEXT, b"to a")
        a.expect_message(TEXT, b"to a")
        b.expect_message(TEXT, b"to b")
        clean_close(a)
        b.send_frame(BINARY, b"b still open")
        b.expect_message(BINARY, b"b still open")
        clean_close(b)

    add("two connections at once are independent", two_conns)

    def fail_mid_big(t):
        # A protocol error right after a 1 MiB message: its echo, then 1002.
        p = t.open()
        payload = binary_sample(1 << 20, 7)
        p.send_frame(BINARY, payload)
        p.expect_message(BINARY, payload, timeout=T_BIG)
        p.send_frame(5, b"")
        fails(p, 1002)

    add("1 MiB binary echoed, then a reserved opcode: 1002", fail_mid_big)


def sigterm_case(t):
    # echo-server's contract: on SIGTERM, close every connection with 1001 (going
    # away, §7.4.1), finish the closing handshakes, exit 0.
    a, b = t.open(), t.open()
    a.send_frame(TEXT, b"before")
    a.expect_message(TEXT, b"before")
    b.send_frame(TEXT, b"unfinished ", fin=False)
    time.sleep(0.1)
    t.server.proc.send_signal(signal.SIGTERM)
    for p, partial in ((a, None), (b, b"unfinished ")):
        ev = p.expect_close(1001, partial_of=partial)
        p.send_frame(CLOSE, close_payload(ev.code))
        p.expect_tcp_close()
    try:
        rc = t.server.proc.wait(5)
    except subprocess.TimeoutExpired:
        raise Fail("echo-server still running 5 s after SIGTERM")
    if rc != 0:
        raise Fail(f"echo-server exited with {rc} after SIGTERM")


# ---- group 11: opening handshake (§4.2) ----------------------------------------------

def group11(s):
    add = s.adder(11)

    def variant(t, extra_lines, path="/path?query=1"):
        sock = t.tcp()
        p = Peer(sock, "client")
        key = new_key()
        lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{t.server.port}"] + extra_lines(key)
        p.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = read_head(p)
        if head is None:
            raise Fail("server closed during the handshake")
        return p, key, head

    def accepted(t, extra):
        p, key, head = variant(t, extra)
        check_101(head, key)
        p.send_frame(TEXT, b"after handshake")
        p.expect_message(TEXT, b"after handshake")
        clean_close(p)

    add("header names in any case, Connection: keep-alive, Upgrade, an Origin -> 101",
        accepted, lambda k: ["upgrade: WebSocket", "connection: keep-alive, Upgrade",
                             f"sec-websocket-key: {k}", "SEC-WEBSOCKET-VERSION: 13",
                             "Origin: http://example.com", "User-Agent: conformance"])

    def refused(t, extra, statuses, version_header=False, what=""):
        # §4.2.1: a handshake that does not follow the rules is answered with an
        # HTTP error (e.g. 400) and processing stops; no 101.
        p, key, head = variant(t, extra)
        first, headers = parse_head(head)
        parts = first.split(" ")
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status not in statuses:
            raise Fail(f"expected status {'/'.join(map(str, statuses))}, got {first!r}")
        if version_header:
            # §4.4: "send an appropriate HTTP error code (such as 426 Upgrade
            # Required) and a |Sec-WebSocket-Version| header field indicating the
            # version(s) the server is capable of understanding"
            vals = ",".join(header_values(headers, "sec-websocket-version"))
            if "13" not in [v.strip() for v in vals.split(",")]:
                raise Fail(f"no Sec-WebSocket-Version: 13 in the refusal (§4.4): {vals!r}")

    std = lambda k: ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {k}",
                     "Sec-WebSocket-Version: 13"]
    fourxx = tuple(range(400, 500))
    add("Sec-WebSocket-Version: 8 -> 426 with Sec-WebSocket-Version: 13", refused,
        lambda k: std(k)[:3] + ["Sec-WebSocket-Version: 8"], (400, 426), True)
    add("no Sec-WebSocket-Key -> 4xx", refused, lambda k: std(k)[:2] + std(k)[3:], fourxx)
    add("Sec-WebSocket-Key of 8 bytes -> 4xx", refused,
        lambda k: std(k)[:2] + ["Sec-WebSocket-Key: AAAAAAAAAAA="] + std(k)[3:], fourxx)
    add("no Upgrade header -> 4xx", refused, lambda k: std(k)[1:], fourxx)
    add("Upgrade: h2c -> 4xx", refused, lambda k: ["Upgrade: h2c"] + std(k)[1:], fourxx)
    add("Connection without Upgrade -> 4xx", refused,
        lambda k: [std(k)[0], "Connection: keep-alive"] + std(k)[2:], fourxx)

    def post(t):
        sock = t.tcp()
        p = Peer(sock, "client")
        key = new_key()
        p.send((f"POST / HTTP/1.1\r\nHost: {HOST}:{t.server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n").encode())
        head = read_head(p)
        if head is None:
            raise Fail("server closed without an answer")
        first = head.split(b"\r\n")[0].decode()
        # §4.1 item 2: "The method of the request MUST be GET"; §4.2.1 item 1.
        if not re.match(r"HTTP/1\.1 4\d\d", first):
            raise Fail(f"POST upgrade answered {first!r}, expected 4xx")

    add("POST with upgrade headers -> 4xx", post)

    def http10(t):
        sock = t.tcp()
        p = Peer(sock, "client")
        key = new_key()
        p.send((f"GET / HTTP/1.0\r\nHost: {HOST}:{t.server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = read_head(p)
        if head is not None and b" 101 " in head.split(b"\r\n")[0]:
            # §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
            raise Fail("HTTP/1.0 upgrade request answered 101")

    add("HTTP/1.0 upgrade request -> not 101", http10)

    def no_host(t):
        sock = t.tcp()
        p = Peer(sock, "client")
        key = new_key()
        p.send((f"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = read_head(p)
        if head is not None and b" 101 " in head.split(b"\r\n")[0]:
            # §4.2.1 item 2: "A |Host| header field"; RFC 7230 §5.4: 400 without it.
            raise Fail("request without Host answered 101")

    add("no Host header -> not 101", no_host)


# ---- main --------------------------------------------------------------------------

def build_suite():
    s = Suite("server_cases")
    for g in (group1, group2, group3, group4, group5, group6, group7, group9, group10, group11):
        g(s)
    # Last: it stops the server.
    s.add("10.99", "SIGTERM: every connection closed with 1001, exit status 0", sigterm_case)
    return s


def main():
    # run.sh's timeout sends SIGTERM: unwind through the finally blocks, which
    # stop the server by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build, prefixes, verbose = parse_args(sys.argv)
    suite = build_suite()
    server = Server(build)

    def run_one(cid, fn, args, kw):
        if not server.alive():  # a crash was reported by the case it happened in
            server.stop()
            server.start()
        ctx = Ctx(server, cid)
        try:
            fn(ctx, *args, **kw)
        finally:
            ctx.cleanup()
        if cid != "10.99" and not server.alive():
            raise Fail(f"the server died during the case (status {server.proc.poll()})")

    try:
        try:
            server.start()
        except (Fail, OSError) as e:
            print(f"FAIL 0.0 start {' '.join(server.argv)}: {e}")
            print("server_cases: 0 passed, 1 failed")
            sys.exit(1)
        ok = suite.run(run_one, prefixes, verbose, before_summary=lambda failed: (
            failed and server.tail and print("# last lines of the server's stdout:\n" + "\n".join(
                f"#   {line}" for line in server.tail), flush=True)))
    finally:
        server.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
