"""wsraw: a raw-socket WebSocket toolkit for duplex's conformance suites (RFC 6455).

No WebSocket library is used: the suites must control every byte they send and
see every byte they get. What is here:

  - frame(): any frame, valid or not: fin, the three RSV bits, any opcode,
    masked or not (with a chosen key), the length in the minimal form or forced
    into the 16-bit or 64-bit form, or a length field that lies;
  - Peer: one TCP connection. send() writes bytes chopped into chunks of a given
    size while reading what the peer sends (so a peer that echoes while we are
    still sending never deadlocks us); recv_frame() parses one frame with a
    deadline and notes every rule of §5 the peer broke; next_event() turns
    frames into messages, pings, pongs, a close or EOF, and fails the case when
    the peer breaks a rule it must keep (masking, RSV, opcodes, control frame
    limits, fragment order, UTF-8 of text and close reasons, valid close codes,
    nothing but control frames after its close);
  - the opening handshake as a client (client_handshake) and as a server
    (read_request, request_problems, accept_response);
  - Suite: runs cases and prints "ok <id> <what>" / "FAIL <id> <what>: <why>",
    then "<suite>: N passed, M failed" as the last line.

Every wait has a deadline; nothing here blocks forever.
"""

import base64
import codecs
import hashlib
import os
import re
import select
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OPNAMES = {CONT: "continuation", TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping",
           PONG: "pong"}
# The RSV field as the 3-bit number in bits 6..4 of the first byte (§5.2).
RSV1, RSV2, RSV3 = 4, 2, 1

# Timeouts (seconds). Generous enough for sanitizer builds on a busy 2-core box.
T_EVENT = 5.0   # one expected frame or event
T_CLOSE = 2.0   # the peer closes TCP after the closing handshake
T_BIG = 60.0    # one multi-megabyte transfer
T_QUIET = 0.3   # "nothing arrives": how long we listen before we believe it


class Fail(Exception):
    """A case failed; the message says why."""


def opname(op):
    return OPNAMES.get(op, f"opcode {op}")


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (§4.2.2 step 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key():
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64 (§4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def mask(data, key):
    """XOR @data with the 4-byte @key repeated (§5.3); fast for megabytes."""
    n = len(data)
    if n == 0:
        return b""
    k = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", *, fin=True, rsv=0, key=None, length=None, form=None):
    """Encode one frame.

    key     None: unmasked; 4 bytes: masked with them (the mask bit is set)
    length  the value written in the length field (default: len(payload)); a lie
            lets a case send a header and only part of the payload
    form    None: the minimal length encoding (§5.2); 7, 16 or 64: force the
            7-bit, 16-bit (126) or 64-bit (127) form, minimal or not
    """
    n = len(payload) if length is None else length
    if form is None:
        form = 7 if n <= 125 else 16 if n <= 0xFFFF else 64
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)
    mbit = 0x80 if key is not None else 0
    if form == 7:
        assert n <= 125, "the 7-bit form holds at most 125"
        head = bytes([b0, mbit | n])
    elif form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if key is not None:
        assert len(key) == 4
        return head + bytes(key) + mask(payload, key)
    return head + bytes(payload)


def close_payload(code=None, reason=b""):
    """The body of a close frame: nothing, or the 2-byte code then the reason."""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    if code is None:
        return bytes(reason)
    return struct.pack("!H", code) + bytes(reason)


def close_code_valid(code):
    """Codes a peer may put on the wire, as duplex reads them: 1000-1003 and
    1007-1011 (§7.4.1; 1004 is reserved, 1005 and 1006 must not be sent), 1012-1014
    (registered with IANA since, §11.7: service restart, try again later, bad
    gateway), 3000-4999 (§7.4.2: registered and private use). 0-999, 1015 (for
    reports only, like 1005 and 1006), 1016-2999 and above 4999 are invalid."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def utf8_ok(b):
    try:
        bytes(b).decode("utf-8")  # Python's decoder is strict: RFC 3629 exactly
        return True
    except UnicodeDecodeError:
        return False


def short(b, n=24):
    b = bytes(b)
    return repr(b[:n]) + ("..." if len(b) > n else "") + f" ({len(b)} B)"


class Frame:
    """One frame as received: payload unmasked; problems lists broken §5 rules."""

    __slots__ = ("fin", "rsv", "opcode", "masked", "key", "payload", "form", "problems")

    def __repr__(self):
        return (f"<{opname(self.opcode)} fin={int(self.fin)} rsv={self.rsv} "
                f"masked={int(self.masked)} {short(self.payload)}>")


class Event:
    """What next_event() returns.

    kind     "message", "ping", "pong", "close" or "eof"
    opcode   of a message; payload: its bytes, or the ping/pong payload
    frames   the data frames a message came in
    code     of a close (None: empty close body); reason: str
    partial  at a close or EOF, an unfinished message (opcode, bytes) or None
    """

    def __init__(self, kind, **kw):
        self.kind = kind
        self.opcode = kw.get("opcode")
        self.payload = kw.get("payload", b"")
        self.frames = kw.get("frames", 0)
        self.code = kw.get("code")
        self.reason = kw.get("reason", "")
        self.partial = kw.get("partial")
        self.how = kw.get("how")  # eof: "eof" or "reset"
        self.compressed = kw.get("compressed", False)  # a message that had RSV1
        self.wire = kw.get("wire", 0)  # its payload bytes on the wire

    def __repr__(self):
        if self.kind == "message":
            return f"{opname(self.opcode)} message {short(self.payload)} in {self.frames} frame(s)"
        if self.kind in ("ping", "pong"):
            return f"{self.kind} {short(self.payload)}"
        if self.kind == "close":
            return f"close {self.code} {self.reason!r}"
        return f"TCP {self.how}"


class Peer:
    """One connection, from our side. @we: "client" (we mask, the peer must not)
    or "server" (the peer must mask every frame, §5.1)."""

    def __init__(self, sock, we="client"):
        self.sock = sock
        self.we = we
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.rbuf = bytearray()
        self.eof = None           # None, "eof" or "reset"
        self.send_failed = False  # the peer closed or reset while we wrote
        self.partial = None       # [opcode, bytearray, frames, utf8 decoder]
        self.peer_closed = False  # the peer sent a close frame
        self.keys = []            # masking keys the peer used (server side)
        self.frames_in = 0
        self.pmd = None           # an Inflater once permessage-deflate is agreed

    # ---- bytes ---------------------------------------------------------------

    def _recv_now(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            self.eof = "reset"
            return
        if not data:
            self.eof = "eof"
        else:
            self.rbuf += data

    def _read_some(self, deadline):
        """Wait for bytes until @deadline; False on timeout."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        self._recv_now()
        return True

    def send(self, data, chunk=None, pause=0.0, timeout=T_BIG):
        """Write @data in writes of at most @chunk bytes (None: as large as the
        kernel takes), sleeping @pause after each write, while reading whatever
        the peer sends. Returns False if the peer closed or reset the connection
        before all was written (that is not an error by itself: a peer that
        fails the connection may close before reading everything)."""
        view = memoryview(bytes(data))
        pos = 0
        step = chunk or (1 << 20)
        deadline = time.monotonic() + timeout
        writes = 0
        while pos < len(view):
            if self.send_failed:
                return False
            try:
                n = self.sock.send(view[pos:pos + step])
            except BlockingIOError:
                n = 0
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                self.send_failed = True
                return False
            pos += n
            writes += 1
            if pause and n:
                time.sleep(pause)
            # Read what the peer sent: when the kernel takes no more (the peer may
            # be blocked writing its echo to us), and now and then anyway.
            if n == 0 or writes % 256 == 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail(f"timed out writing ({pos} of {len(view)} bytes written)")
                rl = [] if self.eof else [self.sock]
                r, _, _ = select.select(rl, [self.sock] if n == 0 else [], [],
                                        left if n == 0 else 0)
                if r:
                    self._recv_now()
        return True

    def send_frame(self, opcode, payload=b"", *, fin=True, rsv=0, masked=None, key=None,
                   length=None, form=None, chunk=None, pause=0.0):
        """Build and send one frame. By default a client masks with a fresh random
        key and a server does not mask (§5.1); @masked/@key override that."""
        if masked is None:
            masked = self.we == "client"
        if masked and key is None:
            key = os.urandom(4)
        return self.send(frame(opcode, payload, fin=fin, rsv=rsv, key=key if masked else None,
                               length=length, form=form), chunk=chunk, pause=pause)

    def build(self, opcode, payload=b"", **kw):
        """frame() with this side's masking (client: a random key; server: none)."""
        if "key" not in kw and self.we == "client":
            kw["key"] = os.urandom(4)
        return frame(opcode, payload, **kw)

    def close_tcp(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- frames --------------------------------------------------------------

    def _parse(self):
        b = self.rbuf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        len7 = b1 & 0x7F
        masked = bool(b1 & 0x80)
        ext = 2 if len7 == 126 else 8 if len7 == 127 else 0
        need = 2 + ext + (4 if masked else 0)
        if len(b) < need:
            return None
        if ext == 0:
            n = len7
        elif ext == 2:
            n = struct.unpack_from("!H", b, 2)[0]
        else:
            n = struct.unpack_from("!Q", b, 2)[0]
        problems = []
        if ext == 8 and n >> 63:
            problems.append("64-bit length with the top bit set (§5.2)")
            n &= (1 << 63) - 1
        if len(b) < need + n:
            if n > (1 << 26):
                raise Fail(f"peer announced a frame of {n} bytes")
            return None
        f = Frame()
        f.fin = bool(b0 & 0x80)
        f.rsv = (b0 >> 4) & 7
        f.opcode = b0 & 0xF
        f.masked = masked
        f.key = bytes(b[2 + ext:need]) if masked else None
        body = bytes(b[need:need + n])
        f.payload = mask(body, f.key) if masked else body
        f.form = {0: 7, 2: 16, 8: 64}[ext]
        del b[:need + n]
        # The rules a sender must keep (§5.1-§5.5), checked on every frame.
        if self.we == "client" and masked:
            problems.append("masked frame from the server (§5.1)")
        if self.we == "server" and not masked:
            problems.append("unmasked frame from the client (§5.1)")
        if f.rsv and self.pmd is None:
            problems.append(f"RSV bits {f.rsv:03b} set without an extension (§5.2)")
        elif f.rsv & ~RSV1:
            problems.append(f"RSV bits {f.rsv:03b} set: only RSV1 has a meaning (§5.2)")
        elif f.rsv and f.opcode not in (TEXT, BINARY):
            problems.append(f"RSV1 on a {opname(f.opcode)} frame (RFC 7692 §6: only on "
                            "the first frame of a data message)")
        if f.opcode not in OPNAMES:
            problems.append(f"reserved opcode {f.opcode} (§5.2)")
        if (ext == 2 and n <= 125) or (ext == 8 and n <= 0xFFFF):
            problems.append(f"length {n} not in the minimal encoding (§5.2)")
        if f.opcode >= 8 and not f.fin:
            problems.append("fragmented control frame (§5.5)")
        if f.opcode >= 8 and n > 125:
            problems.append(f"control frame of {n} bytes (§5.5)")
        f.problems = problems
        self.frames_in += 1
        if masked:
            self.keys.append(f.key)
        return f

    def recv_frame(self, timeout=T_EVENT):
        """The next frame, or None when the peer closed TCP between frames."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                return f
            if self.eof:
                if self.rbuf:
                    raise Fail(f"TCP {self.eof} inside a frame ({len(self.rbuf)} bytes of it)")
                return None
            if not self._read_some(deadline):
                if self.eof:
                    continue
                raise Fail(f"timed out after {timeout:g} s waiting for a frame")

    # ---- events ----------------------------------------------------------------

    def next_event(self, timeout=T_EVENT):
        """The next message, ping, pong, close or EOF. Fails the case when the peer
        breaks a rule it must keep."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                part = self._partial_info()
                return Event("eof", how=self.eof, partial=part)
            if f.problems:
                raise Fail(f"peer sent an invalid frame {f!r}: " + "; ".join(f.problems))
            if self.peer_closed and f.opcode in (TEXT, BINARY, CONT, CLOSE):
                # §5.5.1: after sending a Close frame, no more data frames; one close.
                raise Fail(f"peer sent {f!r} after its close frame (§5.5.1)")
            if f.opcode in (TEXT, BINARY):
                if self.partial is not None:
                    raise Fail(f"peer started a new {opname(f.opcode)} message inside an "
                               "unfinished one (§5.4)")
                dec = codecs.getincrementaldecoder("utf-8")() if f.opcode == TEXT else None
                comp = bool(f.rsv & RSV1)
                self.partial = [f.opcode, bytearray(), 0, None if comp else dec, comp]
            elif f.opcode == CONT and self.partial is None:
                raise Fail("peer sent a continuation frame with no message to continue (§5.4)")
            if f.opcode in (TEXT, BINARY, CONT):
                p = self.partial
                p[1] += f.payload
                p[2] += 1
                if p[3] is not None:
                    try:  # §5.6, §8.1: text is UTF-8, checked as it streams
                        p[3].decode(f.payload, final=f.fin)
                    except UnicodeDecodeError as e:
                        raise Fail(f"peer sent invalid UTF-8 in a text message: {e}")
                if f.fin:
                    self.partial = None
                    body = bytes(p[1])
                    if p[4]:
                        body = self.pmd.inflate(body)
                        if p[0] == TEXT and not utf8_ok(body):
                            raise Fail("peer sent a compressed text message that inflates "
                                       f"to invalid UTF-8 {short(body)}")
                    return Event("message", opcode=p[0], payload=body, frames=p[2],
                                 compressed=p[4], wire=len(p[1]))
                continue
            if f.opcode in (PING, PONG):
                return Event("ping" if f.opcode == PING else "pong", payload=f.payload)
            # CLOSE (§5.5.1)
            self.peer_closed = True
            body = f.payload
            if len(body) == 0:
                return Event("close", code=None, reason="", partial=self._partial_info())
            if len(body) == 1:
                raise Fail("peer sent a close frame with a 1-byte body (§5.5.1)")
            code = struct.unpack_from("!H", body)[0]
            if not close_code_valid(code):
                raise Fail(f"peer sent close code {code}, not valid on the wire (§7.4)")
            try:
                reason = body[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise Fail(f"peer sent a close reason that is not UTF-8: {body[2:]!r} (§5.5.1)")
            return Event("close", code=code, reason=reason, partial=self._partial_info())

    def _partial_info(self):
        if self.partial is None:
            return None
        return (self.partial[0], bytes(self.partial[1]))

    # ---- expectations ------------------------------------------------------------

    def expect_message(self, opcode, payload, timeout=T_EVENT, what="echo"):
        ev = self.next_event(timeout)
        if ev.kind != "message":
            raise Fail(f"expected the {what} ({opname(opcode)}, {len(payload)} B), got {ev!r}")
        if ev.opcode != opcode:
            raise Fail(f"{what} came back as {opname(ev.opcode)}, sent as {opname(opcode)}")
        if ev.payload != payload:
            raise Fail(f"{what} differs: sent {short(payload)}, got {short(ev.payload)}")
        return ev

    def expect_pong(self, payload, timeout=T_EVENT):
        ev = self.next_event(timeout)
        if ev.kind != "pong":
            raise Fail(f"expected a pong {short(payload)}, got {ev!r}")
        if ev.payload != payload:
            raise Fail(f"pong payload {short(ev.payload)} differs from the ping's {short(payload)}")
        return ev

    def expect_close(self, codes, timeout=T_EVENT, partial_of=None):
        """The next event must be a close frame with a code in @codes (None in @codes
        allows an empty body). Non-final data frames before it are allowed only when
        @partial_of is given: they must then be a prefix of it (a peer that echoes
        as it receives may have passed on part of a message before failing it)."""
        if isinstance(codes, int) or codes is None:
            codes = (codes,)
        ev = self.next_event(timeout)
        if ev.kind != "close":
            want = " or ".join("an empty close" if c is None else str(c) for c in codes)
            raise Fail(f"expected close {want}, got {ev!r}")
        if ev.code not in codes:
            raise Fail(f"expected close code {' or '.join(map(str, codes))}, got {ev!r}")
        if ev.partial is not None:
            op, got = ev.partial
            if partial_of is None or not bytes(partial_of).startswith(got):
                raise Fail(f"unfinished {opname(op)} message {short(got)} before the close")
        return ev

    def expect_quiet(self, wait=T_QUIET):
        """Nothing arrives within @wait (TCP may stay open)."""
        deadline = time.monotonic() + wait
        while True:
            if self.rbuf:
                raise Fail(f"expected nothing, got {self.recv_frame(T_EVENT)!r}")
            if self.eof:
                raise Fail(f"expected nothing, got TCP {self.eof}")
            if time.monotonic() >= deadline:
                return
            self._read_some(deadline)

    def expect_tcp_close(self, timeout=T_CLOSE, why="§7.1.1"):
        """The peer closes TCP within @timeout and sends no frame before that: not
        after its close (§5.5.1: no data frames; §5.5.2: no pong once it received
        our close; §7.1.7: no more processing once it failed the connection), and
        not after it answered ours."""
        deadline = time.monotonic() + timeout
        try:
            ev = self.next_event(max(deadline - time.monotonic(), 0.0))
        except Fail as e:
            if "timed out" in str(e):
                raise Fail(f"peer did not close TCP within {timeout:g} s ({why})")
            raise
        if ev.kind != "eof":
            raise Fail(f"expected TCP close, got {ev!r}")
        return ev


def pongs_before(events, pings):
    """Check a run of events that must be pongs for @pings and then one message.
    §5.5.3: an endpoint that has not yet answered earlier pings "MAY elect to send
    a Pong frame for only the most recently processed Ping frame": so the pongs
    are the pings' payloads in order, some possibly skipped, the last one
    present. Returns the message event."""
    got = []
    for ev in events:
        if ev.kind == "message":
            it = iter(pings)
            if not got or not all(g in it for g in got) or got[-1] != pings[-1]:
                raise Fail(f"pongs {got} before the message are not an in-order answer to "
                           f"{pings} ending with the last ping (§5.5.2, §5.5.3)")
            return ev
        if ev.kind != "pong":
            raise Fail(f"expected pongs then the message, got {ev!r}")
        got.append(ev.payload)
    raise Fail("no message after the pongs")


# ---- opening handshake ----------------------------------------------------------

def read_head(peer, timeout=T_EVENT, limit=16384):
    """Read an HTTP head (through the blank line); the bytes after it stay in
    peer.rbuf. Returns the head as bytes, or None on EOF before it."""
    deadline = time.monotonic() + timeout
    while True:
        i = peer.rbuf.find(b"\r\n\r\n")
        if i >= 0:
            head = bytes(peer.rbuf[:i + 4])
            del peer.rbuf[:i + 4]
            return head
        if len(peer.rbuf) > limit:
            raise Fail(f"HTTP head longer than {limit} bytes")
        if peer.eof:
            return None
        if not peer._read_some(deadline) and not peer.eof:
            raise Fail(f"timed out after {timeout:g} s waiting for an HTTP head")


def parse_head(head):
    """Split a head into its first line and a list of (lowercased name, value)."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise Fail(f"malformed header line {line!r}")
        name, value = line.split(":", 1)
        headers.append((name.strip().lower(), value.strip(" \t")))
    return first, headers


def header_values(headers, name):
    return [v for n, v in headers if n == name]


def has_token(headers, name, token):
    """@token is an element of the comma-separated list header @name (any case)."""
    for v in header_values(headers, name):
        if token.lower() in (e.strip().lower() for e in v.split(",")):
            return True
    return False


def client_handshake(sock, host, port, path="/", extra=""):
    """Open a WebSocket as a client on the connected @sock (§4.1) and check the
    server's answer strictly. Returns a Peer whose rbuf holds any bytes that came
    after the head."""
    peer = Peer(sock, "client")
    key = new_key()
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
           f"Sec-WebSocket-Version: 13\r\n{extra}\r\n")
    peer.send(req.encode("ascii"))
    head = read_head(peer)
    if head is None:
        raise Fail(f"server closed TCP ({peer.eof}) during the handshake")
    check_101(head, key)
    return peer


def check_101(head, key, allow_ext=False):
    """The client's checks of a server's answer (§4.1, items 1-6 of 'the client
    MUST validate the server's response'), nothing offered (@allow_ext: extensions
    were offered; the caller checks the answer)."""
    first, headers = parse_head(head)
    m = re.match(r"HTTP/1\.1 (\d{3})", first)
    if not m or m.group(1) != "101":
        raise Fail(f"handshake answered {first!r}, not 101")
    if not has_token(headers, "upgrade", "websocket"):
        raise Fail(f"101 without Upgrade: websocket: {header_values(headers, 'upgrade')}")
    if not has_token(headers, "connection", "upgrade"):
        raise Fail(f"101 without Connection: Upgrade: {header_values(headers, 'connection')}")
    acc = header_values(headers, "sec-websocket-accept")
    if acc != [accept_for(key)]:
        raise Fail(f"Sec-WebSocket-Accept {acc} is not [{accept_for(key)!r}]")
    if header_values(headers, "sec-websocket-extensions") and not allow_ext:
        raise Fail("101 names an extension we did not offer (§4.1)")
    if header_values(headers, "sec-websocket-protocol"):
        raise Fail("101 names a subprotocol we did not offer (§4.1)")


class Request:
    def __init__(self, head):
        self.raw = head
        self.first, self.headers = parse_head(head)
        parts = self.first.split(" ")
        self.method, self.target, self.version = (parts + ["", "", ""])[:3]
        keys = header_values(self.headers, "sec-websocket-key")
        self.key = keys[0] if len(keys) == 1 else None


def read_request(peer, timeout=T_EVENT):
    head = read_head(peer, timeout)
    return None if head is None else Request(head)


def request_problems(req, host, port, target):
    """What a strict server finds wrong in a client's opening handshake (§4.1,
    the client's requirements 1-9, and §4.2.1)."""
    p = []
    if len(req.first.split(" ")) != 3:
        p.append(f"malformed request line {req.first!r}")
    if req.method != "GET":
        p.append(f"method {req.method!r} is not GET (§4.1 item 2)")
    if req.version != "HTTP/1.1":
        p.append(f"version {req.version!r} is not HTTP/1.1 (§4.1 item 2)")
    if req.target != target:
        p.append(f"request-target {req.target!r} is not {target!r} (§4.1 item 3)")
    hosts = header_values(req.headers, "host")
    if hosts != [f"{host}:{port}"]:
        p.append(f"Host {hosts} is not [{host}:{port!s}] (§4.1 item 4: the port when "
                 "it is not the default)")
    if not has_token(req.headers, "upgrade", "websocket"):
        p.append(f"Upgrade {header_values(req.headers, 'upgrade')} lacks websocket (item 5)")
    if not has_token(req.headers, "connection", "upgrade"):
        p.append(f"Connection {header_values(req.headers, 'connection')} lacks Upgrade "
                 "(item 6)")
    keys = header_values(req.headers, "sec-websocket-key")
    if len(keys) != 1:
        p.append(f"{len(keys)} Sec-WebSocket-Key fields (item 7: exactly one)")
    else:
        try:
            raw = base64.b64decode(keys[0], validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 16:
            p.append(f"Sec-WebSocket-Key {keys[0]!r} is not 16 bytes in base64 (item 7)")
    if header_values(req.headers, "sec-websocket-version") != ["13"]:
        p.append(f"Sec-WebSocket-Version {header_values(req.headers, 'sec-websocket-version')} "
                 "is not [13] (item 9)")
    return p


def accept_response(key, extra=""):
    """A 101 answer for @key (§4.2.2 step 5)."""
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_for(key)}\r\n{extra}\r\n").encode("ascii")


# ---- cases -------------------------------------------------------------------------

class Suite:
    """Cases, run in the order added. Command line: [BUILD] [-k PREFIX]... [-v]."""

    def __init__(self, name):
        self.name = name
        self.cases = []
        self.ids = set()

    def add(self, cid, what, fn, *args, **kw):
        assert cid not in self.ids, cid
        self.ids.add(cid)
        self.cases.append((cid, what, fn, args, kw))

    def adder(self, group):
        """add(what, fn, *args) numbering the cases of @group 1, 2, 3..."""
        count = [0]

        def add(what, fn, *args, **kw):
            count[0] += 1
            self.add(f"{group}.{count[0]}", what, fn, *args, **kw)
        return add

    def selected(self, prefixes):
        if not prefixes:
            return list(self.cases)
        return [c for c in self.cases
                if any(c[0] == p or c[0].startswith(p.rstrip(".") + ".") for p in prefixes)]

    def run(self, run_one, prefixes=(), verbose=False, before_summary=None):
        """run_one(cid, fn, args, kw) runs one case; it raises Fail (or anything)
        on failure and may return extra lines to print after a FAIL line."""
        passed = failed = 0
        t_all = time.monotonic()
        for cid, what, fn, args, kw in self.selected(prefixes):
            t0 = time.monotonic()
            why = None
            try:
                run_one(cid, fn, args, kw)
            except Fail as e:
                why = str(e)
            except Exception as e:  # a harness error fails the case, not the suite
                why = f"harness error {type(e).__name__}: {e}"
            dt = time.monotonic() - t0
            timing = f" [{dt:.2f}s]" if verbose else ""
            if why is None:
                passed += 1
                print(f"ok {cid} {what}{timing}", flush=True)
            else:
                failed += 1
                lines = why.split("\n")
                print(f"FAIL {cid} {what}: {lines[0]}{timing}", flush=True)
                for extra in lines[1:]:
                    print(f"    | {extra}", flush=True)
        if before_summary is not None:
            before_summary(failed)
        if verbose:
            print(f"# {self.name}: {time.monotonic() - t_all:.1f} s", flush=True)
        print(f"{self.name}: {passed} passed, {failed} failed", flush=True)
        return failed == 0


def parse_args(argv):
    """BUILD [-k PREFIX]... [-v]: the build dir, case-id prefixes to run, timings."""
    build = "build"
    prefixes = []
    verbose = False
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-k" and i + 1 < len(argv):
            prefixes.append(argv[i + 1])
            i += 1
        elif a == "-v":
            verbose = True
        else:
            build = a
        i += 1
    return build, prefixes, verbose


def text_sample(n):
    """@n bytes of valid UTF-8 with 1-, 2-, 3- and 4-byte characters."""
    unit = "h\u00e9llo w\u00f6rld \u4e16\u754c \U0001F600 \uFFFD ".encode("utf-8")
    k = n // len(unit)
    body = unit * k
    return body + b"x" * (n - len(body))


def binary_sample(n, seed=0):
    """@n bytes covering every byte value (and invalid UTF-8)."""
    unit = bytes(range(256))[seed % 256:] + bytes(range(256))[:seed % 256]
    return (unit * (n // 256 + 1))[:n]


# ---- UTF-8 vectors (RFC 3629; Python's strict decoder is the reference) ---------------

UTF8_VALID = [
    ("ASCII", b"Hello, World!"),
    ("Latin-1 range (2-byte)",
     "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode()),
    ("Greek kosme (2-byte)", "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()),
    ("U+0000 inside", b"a\x00b"),
    ("U+007F, U+0080, U+07FF, U+0800 boundaries", "\x7f\x80\u07ff\u0800".encode()),
    ("CJK (3-byte)", "\u4e16\u754c".encode()),
    ("U+D7FF and U+E000 around the surrogates", "\ud7ff\ue000".encode()),
    ("U+FFFD, U+FFFE, U+FFFF, U+FDD0 (noncharacters are valid)",
     "\ufffd\ufffe\uffff\ufdd0".encode()),
    ("BOM U+FEFF first", "\ufeffhello".encode()),
    ("U+10000 and U+1F600 (4-byte)", "\U00010000\U0001F600".encode()),
    ("U+10FFFF, the last code point", "\U0010ffff".encode()),
    ("1-, 2-, 3- and 4-byte mixed", "a\u00e9\u4e16\U0001F600z".encode()),
]

UTF8_INVALID = [
    ("overlong NUL C0 80", b"a\xc0\x80"),
    ("overlong '/' C0 AF", b"\xc0\xaf"),
    ("overlong C1 BF", b"\xc1\xbf"),
    ("overlong 3-byte E0 80 80", b"\xe0\x80\x80"),
    ("overlong 3-byte U+07FF E0 9F BF", b"\xe0\x9f\xbf"),
    ("overlong 4-byte F0 80 80 80", b"\xf0\x80\x80\x80"),
    ("overlong 4-byte U+FFFF F0 8F BF BF", b"\xf0\x8f\xbf\xbf"),
    ("old 5-byte form F8 88 80 80 80", b"\xf8\x88\x80\x80\x80"),
    ("old 6-byte form FC 84 80 80 80 80", b"\xfc\x84\x80\x80\x80\x80"),
    ("surrogate U+D800", b"\xed\xa0\x80"),
    ("surrogate U+DB7F", b"ok\xed\xad\xbf"),
    ("surrogate U+DC00", b"\xed\xb0\x80"),
    ("surrogate U+DFFF", b"\xed\xbf\xbf"),
    ("surrogate pair U+D83D U+DE00 (CESU-8)", b"\xed\xa0\xbd\xed\xb8\x80"),
    ("U+110000 F4 90 80 80", b"\xf4\x90\x80\x80"),
    ("U+1FFFFF F7 BF BF BF", b"\xf7\xbf\xbf\xbf"),
    ("stray continuation 80", b"\x80"),
    ("stray continuation BF inside text", b"ab\xbfcd"),
    ("continuation run 80 BF 80", b"\x80\xbf\x80"),
    ("2-byte start cut by ASCII C2 41", b"\xc2A"),
    ("3-byte start cut by ASCII E2 82 41", b"\xe2\x82A"),
    ("truncated 2-byte at the end (C2)", b"ab\xc2"),
    ("truncated 3-byte at the end (E2 82)", b"ab\xe2\x82"),
    ("truncated 4-byte at the end (F0 9F 98)",
     "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xf0\x9f\x98"),
    ("byte C0", b"a\xc0b"),
    ("byte C1", b"a\xc1"),
] + [
    # F5-FF never appear in UTF-8 (RFC 3629 §3), whatever follows them.
    (f"byte {b:02X} with continuations after it", b"a" + bytes([b]) + b"\x80\x80\x80")
    for b in range(0xF5, 0x100)
] + [
    ("byte FF alone", b"\xff"),
    ("invalid in the middle: kosme ED A0 80 edited",
     "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80edited"),
]

# Split at every byte position (§5.4: a character may straddle fragments).
UTF8_SPLIT = [
    ("valid 2/3/4-byte mix", True, "\u03ba\u1f79\u03c3\u03bc\u03b5\U0001F600\uffff\u20ac".encode()),
    ("surrogate in the middle", False, "\u03ba\u1f79".encode() + b"\xed\xa0\x80edited"),
    ("above U+10FFFF", False, b"ab\xf4\x90\x80\x80cd"),
    ("truncated at the end", False, b"ab\xf0\x9f\x98"),
]

for _what, _b in UTF8_VALID:
    assert utf8_ok(_b), _what
for _what, _b in UTF8_INVALID:
    assert not utf8_ok(_b), _what
for _what, _ok, _b in UTF8_SPLIT:
    assert utf8_ok(_b) == _ok, _what


# ---- permessage-deflate (RFC 7692) ---------------------------------------------------
#
# A Peer inflates compressed messages once its `pmd` is set to an Inflater: RSV1 is
# then allowed on the first frame of a data message (and nowhere else, §6), and
# next_event() returns the inflated message with ev.compressed set. Deflater builds
# what we send: the DEFLATE stream of one message with the 00 00 FF FF tail of the
# sync flush removed (§7.2.1).

import zlib  # noqa: E402

PMD = "permessage-deflate"
PMD_TAIL = b"\x00\x00\xff\xff"


def pmd_offer(*params):
    """The value of one permessage-deflate offer: params are strings such as
    "server_no_context_takeover" or "client_max_window_bits=10"."""
    return "; ".join((PMD,) + tuple(params))


def parse_extensions(value):
    """A Sec-WebSocket-Extensions value as [(name, [(param, value or None)])], names
    and params lowercased, quoted values unquoted (a simple reader for answers we
    check; duplex's own parser is tested elsewhere)."""
    out = []
    for ext in value.split(","):
        parts = [p.strip() for p in ext.split(";")]
        if not parts[0]:
            continue
        params = []
        for p in parts[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                v = v.strip()
                if len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1]
                params.append((k.strip().lower(), v))
            else:
                params.append((p.lower(), None))
        out.append((parts[0].lower(), params))
    return out


def pmd_agreed(values):
    """The agreed parameters from the answer's Sec-WebSocket-Extensions values (a
    list of header values): None when permessage-deflate is absent, else a dict
    server_no_context_takeover, client_no_context_takeover (bools),
    server_max_window_bits, client_max_window_bits (ints, None when absent).
    Raises Fail when the answer is malformed (§7.1)."""
    exts = [e for v in values for e in parse_extensions(v)]
    if not exts:
        return None
    if len(exts) != 1 or exts[0][0] != PMD:
        raise Fail(f"answer names extensions {values!r}: only one permessage-deflate "
                   "was offered")
    got = {"server_no_context_takeover": False, "client_no_context_takeover": False,
           "server_max_window_bits": None, "client_max_window_bits": None}
    seen = set()
    for k, v in exts[0][1]:
        if k in seen or k not in got:
            raise Fail(f"answer {values!r}: repeated or unknown parameter {k!r} (§7.1)")
        seen.add(k)
        if k.endswith("takeover"):
            if v is not None:
                raise Fail(f"answer {values!r}: {k} with a value (§7.1.1)")
            got[k] = True
        else:
            if v is None or not re.fullmatch(r"[1-9][0-9]*", v) or not 8 <= int(v) <= 15:
                raise Fail(f"answer {values!r}: {k}={v!r} is not 8..15 (§7.1.2)")
            got[k] = int(v)
    return got


class Deflater:
    """Compresses the messages of one direction with a @wbits window; resets after
    each message when @no_context (§7.2.1). zlib refuses a raw 8-bit window for
    compression; 9 is used instead (its distances stay within 256, see deflate.h)."""

    def __init__(self, wbits=15, no_context=False, level=6):
        self.wbits, self.no_context, self.level = wbits, no_context, level
        self._new()

    def _new(self):
        self.z = zlib.compressobj(self.level, zlib.DEFLATED, -max(self.wbits, 9), 8)

    def compress(self, data, final_block=False):
        """The frame payload of one message. @final_block: end with a BFINAL block
        (§7.2.3.3 allows it; the peer must then start a new stream)."""
        if final_block:
            out = self.z.compress(bytes(data)) + self.z.flush(zlib.Z_FINISH)
            self._new()
            return out
        out = self.z.compress(bytes(data)) + self.z.flush(zlib.Z_SYNC_FLUSH)
        if not out.endswith(PMD_TAIL):
            raise Fail("harness: the sync flush did not end with 00 00 FF FF")
        if self.no_context:
            self._new()
        return out[:-4]


class Inflater:
    """Inflates the messages of one direction as the agreement says: a @wbits window,
    the context reset after each message when @no_context. To check the window (zlib
    reads a distance from its output buffer when it can), output is taken in pieces
    of 256 bytes: a distance beyond the window plus 256 fails."""

    STEP = 256

    def __init__(self, wbits=15, no_context=False):
        self.wbits, self.no_context = wbits, no_context
        self.z = zlib.decompressobj(-wbits)
        self.messages = 0

    def inflate(self, payload, limit=64 << 20):
        data = bytes(payload) + PMD_TAIL
        out = bytearray()
        try:
            for i in range(0, len(data), 4096):
                piece = data[i:i + 4096]
                while piece:
                    out += self.z.decompress(piece, self.STEP)
                    piece = self.z.unconsumed_tail
                    if len(out) > limit:
                        raise Fail(f"compressed message inflates past {limit} bytes")
            while True:  # output still held back by the piece limit
                more = self.z.decompress(b"", self.STEP)
                if not more:
                    break
                out += more
        except zlib.error as e:
            raise Fail(f"peer's compressed message does not inflate with window "
                       f"{self.wbits}{' and no context takeover' if self.no_context else ''}"
                       f": {e} (§7.2.2)")
        if self.z.eof:  # a BFINAL block ended the stream: the next message starts anew
            self.z = zlib.decompressobj(-self.wbits)
        elif self.no_context:
            self.z = zlib.decompressobj(-self.wbits)
        self.messages += 1
        return bytes(out)


def pmd_message(peer, opcode, payload, deflater, pieces=1, rsv_cont=0, rsv_first=RSV1,
                final_block=False, chunk=None):
    """Send one compressed message: its payload split into @pieces frames, RSV1 on the
    first (@rsv_first), @rsv_cont on the continuations. Returns the payload sent."""
    data = deflater.compress(payload, final_block) if deflater is not None else bytes(payload)
    n = max(1, pieces)
    cuts = [len(data) * i // n for i in range(n + 1)]
    frames = b"".join(peer.build(opcode if i == 0 else CONT, data[cuts[i]:cuts[i + 1]],
                                 fin=i == n - 1, rsv=rsv_first if i == 0 else rsv_cont)
                      for i in range(n))
    peer.send(frames, chunk=chunk)
    return data


def client_handshake_ext(sock, host, port, path="/", offer=None, extra=""):
    """client_handshake offering @offer (a Sec-WebSocket-Extensions value, or None).
    Returns (peer, the answer's Sec-WebSocket-Extensions values)."""
    peer = Peer(sock, "client")
    key = new_key()
    ext = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer is not None else ""
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
           f"Sec-WebSocket-Version: 13\r\n{ext}{extra}\r\n")
    peer.send(req.encode("ascii"))
    head = read_head(peer)
    if head is None:
        raise Fail(f"server closed TCP ({peer.eof}) during the handshake")
    check_101(head, key, allow_ext=offer is not None)
    return peer, header_values(parse_head(head)[1], "sec-websocket-extensions")
