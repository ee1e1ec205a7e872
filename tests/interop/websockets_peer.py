#!/usr/bin/python3
"""Python's websockets (Debian, 10.4) against duplex's programs, both directions.

  websockets_peer.py BUILD_DIR

1. websockets as CLIENT of BUILD/bin/echo-server: text and binary echoes from 0 bytes
   to 16 MiB (type kept), multi-byte UTF-8, fragmented messages (a character split
   across fragments, a ping between fragments), pings both ways (echo-server
   --commands "!ping"), every valid close code both ways ("!close CODE REASON"),
   close codes that are invalid on the wire, subprotocol choice (400 when none is in
   common with --protocol; the first offer without it), refusals (401 from
   --require-auth, 403 from --origin), graceful shutdown on SIGTERM (1001, exit 0).
2. websockets as SERVER for BUILD/bin/echo-client: the same messages echoed back,
   the server's pings, every valid close code from the server (echo-client exits 0
   and prints "close code=N clean=1"), echo-client's own close, subprotocol choice
   (a 101 without one after an offer fails, as in a browser, unless
   --protocol-optional), request headers, refused handshakes (exit 2, "HTTP 401").

Every echo-server is stopped with SIGTERM at the end and must exit 0 (so a leak
under LeakSanitizer fails the run). Prints one line per check and, last,
"websockets_peer: N passed, M failed"; exits 1 on any failure.
"""
import asyncio
import http
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

import websockets
from websockets.frames import Opcode
from websockets.legacy.client import WebSocketClientProtocol
from websockets.legacy.server import WebSocketServerProtocol

NAME = "websockets_peer"
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SERVER_BIN = os.path.join(BUILD, "bin", "echo-server")
CLIENT_BIN = os.path.join(BUILD, "bin", "echo-client")

MiB = 1 << 20
SIZES = (0, 1, 125, 126, 127, 65535, 65536, MiB, 16 * MiB)
# 1012-1014 were registered with IANA after RFC 6455; both sides accept them.
VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 4999)
# 1004-1006 and 1015 are reserved or forbidden on the wire (RFC 6455 §7.4.1);
# 1016-2999 are unassigned (documented in src/proto/close.c).
INVALID_WIRE_CODES = (999, 1004, 1005, 1006, 1015, 1016, 2999, 5000)

passed = failed = 0
procs = []  # every process we started, killed in the end by PID


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {NAME} {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {NAME} {name} {detail}", flush=True)
    return cond


def text_of(n):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1- to 4-byte characters."""
    unit = "a\u00e9\u20ac\U0001F600"  # 1 + 2 + 3 + 4 bytes
    s = unit * (n // 10) + "x" * (n % 10)
    assert len(s.encode()) == n
    return s


def payload_of(n):
    return os.urandom(n)


def short(v):
    if isinstance(v, (bytes, str)):
        return f"{type(v).__name__}[{len(v)}]"
    return repr(v)[:80]


def connect_kw(**kw):
    base = dict(max_size=None, ping_interval=None, close_timeout=5, open_timeout=10,
                create_protocol=RecClient)
    base.update(kw)
    return base


class RecClient(WebSocketClientProtocol):
    """Records every control frame it receives (the library answers them itself)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.control = []

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode in (Opcode.PING, Opcode.PONG, Opcode.CLOSE):
            self.control.append((frame.opcode, frame.data))
        return frame


class RecServer(WebSocketServerProtocol):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.control = []

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode in (Opcode.PING, Opcode.PONG, Opcode.CLOSE):
            self.control.append((frame.opcode, frame.data))
        return frame


# ---- echo-server processes ----------------------------------------------------------------


class EchoServer:
    def __init__(self, *args):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.err)
        procs.append(self.proc)
        line = read_line(self.proc.stdout, 10)
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"echo-server printed {line!r}")
        self.port = int(m.group(1))
        self.url = f"ws://127.0.0.1:{self.port}"

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self, name):
        """SIGTERM, then it must exit 0 (LeakSanitizer makes a leak a failing exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        check(f"{name}/server_exit_0", rc == 0, f"rc={rc} stderr={self.stderr()[-3000:]!r}")


def read_line(pipe, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([pipe], [], [], left)[0]:
            raise TimeoutError("no 'listening on' line")
        chunk = os.read(pipe.fileno(), 4096)
        if not chunk:
            raise RuntimeError(f"echo-server exited before listening: {buf!r}")
        buf += chunk
    return buf.split(b"\n")[0].decode()


# ---- 1. websockets as client of echo-server --------------------------------------------------


async def echo_one(ws, msg, timeout=30):
    await ws.send(msg)
    return await asyncio.wait_for(ws.recv(), timeout)


async def client_messages(url):
    p = "echo-server"
    async with websockets.connect(url + "/any/path?q=1", **connect_kw()) as ws:
        # websockets offers permessage-deflate by default; echo-server accepts it, so
        # everything below also crosses the wire compressed (RFC 7692).
        check(f"{p}/deflate_agreed",
              len(ws.extensions) == 1 and "Deflate" in type(ws.extensions[0]).__name__,
              repr(ws.extensions))
        for n in SIZES:
            for kind, msg in (("text", text_of(n)), ("binary", payload_of(n))):
                got = await echo_one(ws, msg)
                check(f"{p}/{kind}_{n}", type(got) is type(msg) and got == msg,
                      f"sent {short(msg)} got {short(got)}")

        text = ("\u0080\u07ff\u0800\uffff\U00010000\U0010ffff h\u00e9llo w\u00f6rld "
                "\u4e16\u754c \U0001F600 \u0627\u0644\u0639\u0631\u0628\u064a\u0629")
        got = await echo_one(ws, text)
        check(f"{p}/text_utf8_multibyte", got == text, short(got))

        # Fragmented messages (websockets sends an iterable as fragments).
        got = await echo_one(ws, iter(["frag", "", "ment", "ed \u00e9"]))
        check(f"{p}/fragmented_text", got == "fragmented \u00e9", short(got))
        got = await echo_one(ws, iter([b"\x00\x01", b"", b"\xff"]))
        check(f"{p}/fragmented_binary", got == b"\x00\x01\xff", short(got))
        parts = [payload_of(65536) for _ in range(16)]
        got = await echo_one(ws, iter(parts))
        check(f"{p}/fragmented_1MiB_in_16", got == b"".join(parts), short(got))
        parts = [bytes([i]) for i in range(256)] * 2
        got = await echo_one(ws, iter(parts))
        check(f"{p}/fragmented_512_frames", got == b"".join(parts), short(got))
        # A 4-byte character split across three fragments, a ping between them.
        await ws.write_frame(False, Opcode.TEXT, b"a\xf0\x9f")
        await ws.write_frame(True, Opcode.PING, b"between")
        await ws.write_frame(False, Opcode.CONT, b"\x98")
        await ws.write_frame(True, Opcode.CONT, b"\x80b")
        got = await asyncio.wait_for(ws.recv(), 10)
        check(f"{p}/fragmented_char_split_with_ping", got == "a\U0001F600b", short(got))
        check(f"{p}/pong_between_fragments", (Opcode.PONG, b"between") in ws.control,
              repr(ws.control))

        # Our pings, answered with the same payload.
        for data in (b"payload-123", b"", bytes(range(125))):
            ws.control.clear()
            pong = await ws.ping(data)
            await asyncio.wait_for(pong, 10)
            check(f"{p}/ping_pong_{len(data)}", ws.control == [(Opcode.PONG, data)],
                  repr(ws.control))

        # The server's pings: "!ping PAYLOAD" (echo-server --commands).
        for payload in ("hello-from-server", ""):
            ws.control.clear()
            await ws.send(f"!ping {payload}".rstrip())
            got = await echo_one(ws, "sync")  # the ping precedes this echo on the wire
            check(f"{p}/server_ping_{payload or 'empty'}",
                  got == "sync" and ws.control == [(Opcode.PING, payload.encode())],
                  f"{got!r} {ws.control!r}")

        # A code dx_conn_close refuses (not valid on the wire): the connection stays open.
        await ws.send("!close 1005 nope")
        got = await echo_one(ws, "still open")
        check(f"{p}/server_close_1005_refused", got == "still open", short(got))
        await ws.close(1000)
        check(f"{p}/close_1000_after_messages", ws.close_code == 1000, repr(ws.close_code))


async def client_close_codes(url):
    p = "echo-server"
    for code in VALID_CODES:
        # The peer closes: the server's answer echoes the code (§5.5.1).
        async with websockets.connect(url, **connect_kw()) as ws:
            await echo_one(ws, "hi")
            t0 = time.monotonic()
            await ws.close(code, f"peer says {code}")
            took = time.monotonic() - t0
            # close() returns when the server closed TCP; a server that kept it open
            # would make it wait for close_timeout (5 s).
            check(f"{p}/peer_close_{code}_echoed",
                  ws.close_code == code and took < 3 and ws.control == [(Opcode.CLOSE,
                                                                        code.to_bytes(2, "big"))],
                  f"code={ws.close_code} took={took:.2f}s control={ws.control!r}")
        # The server closes: "!close CODE REASON".
        async with websockets.connect(url, **connect_kw()) as ws:
            await ws.send(f"!close {code} server says {code}")
            await asyncio.wait_for(ws.wait_closed(), 10)
            check(f"{p}/server_close_{code}",
                  ws.close_code == code and ws.close_reason == f"server says {code}",
                  f"{ws.close_code} {ws.close_reason!r}")

    # Close frames a peer must not send: duplex fails the connection with 1002
    # (1007 for a reason that is not UTF-8); an empty close is answered empty (1005).
    cases = [(f"invalid_code_{c}", c.to_bytes(2, "big"), 1002) for c in INVALID_WIRE_CODES]
    cases += [("one_byte_payload", b"\x03", 1002),
              ("reason_not_utf8", b"\x03\xe8\xc3\x28", 1007),
              ("empty_close", b"", 1005)]
    for name, raw, want in cases:
        async with websockets.connect(url, **connect_kw()) as ws:
            await echo_one(ws, "hi")
            await ws.write_close_frame(websockets.frames.Close(1000, ""), raw)
            await asyncio.wait_for(ws.wait_closed(), 10)
            check(f"{p}/peer_{name}_answered_{want}", ws.close_code == want,
                  repr(ws.close_code))


async def client_subprotocols(url, any_url):
    p = "echo-server"
    # echo-server --protocol chat --protocol superchat: the client's order wins.
    for offer, want in ((["superchat", "chat"], "superchat"), (["chat", "superchat"], "chat"),
                        (["other", "chat"], "chat"), (None, None)):
        kw = {"subprotocols": offer} if offer else {}
        async with websockets.connect(url, **connect_kw(**kw)) as ws:
            got = await echo_one(ws, "p")
            check(f"{p}/subprotocol_{'_'.join(offer or ['none'])}",
                  ws.subprotocol == want and got == "p", repr(ws.subprotocol))
    # None in common: refused with 400 (a 101 without one fails in browsers).
    await expect_refused(f"{p}/subprotocol_other_refused_400", url, 400,
                         subprotocols=["other"])
    # Without --protocol an echo speaks whatever the client speaks: its first offer.
    for offer in (["x-first", "x-second"], ["only"]):
        async with websockets.connect(any_url, **connect_kw(subprotocols=offer)) as ws:
            got = await echo_one(ws, "q")
            check(f"{p}/no_protocol_flag_takes_first_{offer[0]}",
                  ws.subprotocol == offer[0] and got == "q", repr(ws.subprotocol))


async def expect_refused(name, url, status, **kw):
    try:
        async with websockets.connect(url, **connect_kw(**kw)) as ws:
            check(name, False, f"opened (protocol {ws.subprotocol!r})")
    except websockets.exceptions.InvalidStatusCode as e:
        check(name, e.status_code == status, f"HTTP {e.status_code}")


async def expect_opens(name, url, **kw):
    async with websockets.connect(url, **connect_kw(**kw)) as ws:
        check(name, await echo_one(ws, "in") == "in")


async def client_refusals(auth_url, origin_url):
    p = "echo-server"
    await expect_refused(f"{p}/auth_missing_401", auth_url, 401)
    await expect_refused(f"{p}/auth_wrong_401", auth_url, 401,
                         extra_headers={"Authorization": "Bearer WRONG"})
    await expect_refused(f"{p}/auth_not_bearer_401", auth_url, 401,
                         extra_headers={"Authorization": "Basic TOKEN"})
    await expect_opens(f"{p}/auth_bearer_opens", auth_url,
                       extra_headers={"Authorization": "Bearer TOKEN"})
    await expect_refused(f"{p}/origin_evil_403", origin_url, 403, origin="http://evil")
    await expect_refused(f"{p}/origin_prefix_403", origin_url, 403, origin="http://good.evil")
    await expect_opens(f"{p}/origin_good_opens", origin_url, origin="http://good")
    await expect_opens(f"{p}/origin_absent_opens", origin_url)


async def client_graceful_shutdown(srv):
    p = "echo-server"
    a = await websockets.connect(srv.url, **connect_kw())
    b = await websockets.connect(srv.url, **connect_kw())
    try:
        await echo_one(a, "a")
        await echo_one(b, "b")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(a.wait_closed(), b.wait_closed()), 10)
        check(f"{p}/sigterm_peers_see_1001", a.close_code == 1001 and b.close_code == 1001,
              f"{a.close_code} {b.close_code}")
        rc = await asyncio.get_running_loop().run_in_executor(None, srv.proc.wait, 10)
        took = time.monotonic() - t0
        # Both peers answered at once, so the shutdown must not wait its 5 s bound.
        check(f"{p}/sigterm_exit_0_promptly", rc == 0 and took < 3,
              f"rc={rc} took={took:.2f}s {srv.stderr()[-2000:]!r}")
    finally:
        await a.close()
        await b.close()


# ---- 2. websockets as server for echo-client -------------------------------------------------


class PeerServer:
    """A websockets server whose path picks the scenario; results go to self.results."""

    def __init__(self):
        self.results = {}  # path -> list of (name, ok, detail)
        self.done = {}  # path -> Future set when the handler ends
        self.requests = {}  # path -> request headers

    def expect(self, path):
        self.results[path] = []
        self.done[path] = asyncio.get_running_loop().create_future()

    def note(self, path, name, ok, detail=""):
        self.results[path].append((name, ok, detail))

    async def process_request(self, path, headers):
        self.requests[path] = headers
        m = re.fullmatch(r"/refuse/(\d+)", path)
        if m:
            return (http.HTTPStatus(int(m.group(1))), [("Content-Type", "text/plain")],
                    b"refused\n")
        return None

    async def handler(self, ws):
        path = ws.path
        try:
            if path == "/echo":
                await self.echo(ws, path)
            elif path.startswith("/close/"):
                code = int(path[7:])
                await ws.close(code, f"bye {code}")
            elif path == "/client-close":
                got = await echo_one(ws, "one")
                await asyncio.wait_for(ws.wait_closed(), 10)
                self.note(path, "client_close_1000", got == "one" and ws.close_code == 1000,
                          f"{got!r} {ws.close_code}")
            elif path == "/no-protocol":
                self.note(path, "server_side_no_subprotocol", ws.subprotocol is None,
                          repr(ws.subprotocol))
                await ws.close(1000)
            elif path == "/protocol":
                self.note(path, "server_side_subprotocol_b", ws.subprotocol == "b",
                          repr(ws.subprotocol))
                await ws.close(1000)
            else:
                await ws.close(1011, "unknown scenario")
        except Exception as e:  # reported as a failed check, never a crash
            if path in self.results:
                self.note(path, "handler_no_exception", False, repr(e))
        finally:
            fut = self.done.get(path)
            if fut and not fut.done():
                fut.set_result(None)

    async def echo(self, ws, path):
        for n in SIZES:
            for kind, msg in (("text", text_of(n)), ("binary", payload_of(n))):
                got = await echo_one(ws, msg)
                self.note(path, f"{kind}_{n}", type(got) is type(msg) and got == msg,
                          f"sent {short(msg)} got {short(got)}")
        text = "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff \u4e16\u754c \U0001F600"
        got = await echo_one(ws, text)
        self.note(path, "text_utf8_multibyte", got == text, short(got))
        got = await echo_one(ws, iter(["frag", "", "ment", "ed \u00e9"]))
        self.note(path, "fragmented_text", got == "fragmented \u00e9", short(got))
        parts = [payload_of(65536) for _ in range(16)]
        got = await echo_one(ws, iter(parts))
        self.note(path, "fragmented_1MiB_in_16", got == b"".join(parts), short(got))
        await ws.write_frame(False, Opcode.TEXT, b"a\xf0\x9f")
        await ws.write_frame(True, Opcode.PING, b"between")
        await ws.write_frame(False, Opcode.CONT, b"\x98")
        await ws.write_frame(True, Opcode.CONT, b"\x80b")
        got = await asyncio.wait_for(ws.recv(), 10)
        self.note(path, "fragmented_char_split_with_ping", got == "a\U0001F600b", short(got))
        self.note(path, "pong_between_fragments", (Opcode.PONG, b"between") in ws.control,
                  repr(ws.control))
        for data in (b"srv-ping", b"", bytes(range(125))):
            ws.control.clear()
            pong = await ws.ping(data)
            await asyncio.wait_for(pong, 10)
            self.note(path, f"ping_pong_{len(data)}", ws.control == [(Opcode.PONG, data)],
                      repr(ws.control))
        await ws.close(1000, "done")


async def run_client(url, *args, timeout=30):
    proc = await asyncio.create_subprocess_exec(CLIENT_BIN, url, *args,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE)
    procs.append(proc)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, err.decode(errors="replace")


async def client_scenario(peer, base, path, *args):
    """Run echo-client on base+path; report the handler's notes; return (rc, stderr)."""
    peer.expect(path)
    rc, err = await run_client(base + path, *args)
    try:
        await asyncio.wait_for(peer.done[path], 5)
    except asyncio.TimeoutError:
        check(f"echo-client{path}/handler_finished", False, f"rc={rc} {err[-2000:]!r}")
    for name, ok, detail in peer.results[path]:
        check(f"echo-client/{name}", ok, detail)
    return rc, err


async def server_side(peer, base):
    p = "echo-client"
    rc, err = await client_scenario(peer, base, "/echo")
    check(f"{p}/echo_scenario_clean_exit_0",
          rc == 0 and "close code=1000 clean=1 remote=1 reason=done" in err,
          f"rc={rc} {err[-2000:]!r}")
    check(f"{p}/echo_scenario_all_checked", len(peer.results["/echo"]) == 2 * len(SIZES) + 8,
          f"{len(peer.results['/echo'])} results")

    for code in VALID_CODES:
        rc, err = await client_scenario(peer, base, f"/close/{code}")
        check(f"{p}/peer_close_{code}",
              rc == 0 and f"close code={code} clean=1 remote=1 reason=bye {code}\n" in err,
              f"rc={rc} {err[-2000:]!r}")

    rc, err = await client_scenario(peer, base, "/client-close", "--close-after", "1")
    check(f"{p}/own_close_clean_exit_0", rc == 0 and "close code=1000 clean=1 remote=0" in err,
          f"rc={rc} {err[-2000:]!r}")

    rc, err = await client_scenario(peer, base, "/protocol", "--protocol", "a", "--protocol",
                                    "b", "--header", "Authorization: Bearer T0K",
                                    "--origin", "http://here")
    check(f"{p}/subprotocol_b", rc == 0 and "open protocol=b extensions=" in err,
          f"rc={rc} {err[-2000:]!r}")
    h = peer.requests.get("/protocol", {})
    check(f"{p}/offered_a_b", h.get("Sec-WebSocket-Protocol", "").replace(" ", "") == "a,b",
          repr(h.get("Sec-WebSocket-Protocol")))
    check(f"{p}/sent_header_and_origin",
          h.get("Authorization") == "Bearer T0K" and h.get("Origin") == "http://here",
          repr(dict(h.raw_items()) if h else h))

    rc, err = await client_scenario(peer, base, "/no-protocol")
    check(f"{p}/no_subprotocol", "open protocol= extensions=" in err, repr(err[-500:]))

    # websockets (subprotocols=["b"]) answers an offer of "zzz" with a 101 naming none:
    # the browser's rule fails the handshake, --protocol-optional takes the RFC's.
    peer.results["/no-protocol"] = []
    rc, err = await run_client(f"{base}/no-protocol", "--protocol", "zzz")
    check(f"{p}/offered_zzz_answer_without_protocol_fails_exit_2",
          rc == 2 and "no subprotocol in common" in err and "open protocol" not in err,
          f"rc={rc} {err[-2000:]!r}")
    rc, err = await client_scenario(peer, base, "/no-protocol", "--protocol", "zzz",
                                    "--protocol-optional")
    check(f"{p}/offered_zzz_protocol_optional_opens",
          rc == 0 and "open protocol= extensions=" in err, f"rc={rc} {err[-2000:]!r}")

    for status in (401, 403):
        peer.results[f"/refuse/{status}"] = []
        rc, err = await run_client(f"{base}/refuse/{status}")
        check(f"{p}/refused_{status}_exit_2", rc == 2 and f"HTTP {status}" in err,
              f"rc={rc} {err[-2000:]!r}")
        check(f"{p}/refused_{status}_never_opened", "open protocol" not in err, repr(err))


# ---- main ----------------------------------------------------------------------------------


async def section(name, coro, timeout):
    try:
        await asyncio.wait_for(coro, timeout)
    except Exception as e:  # one failed check, then go on with the next section
        check(f"{name}/no_exception", False, repr(e))


async def main():
    servers = []
    try:
        main_srv = EchoServer("--commands", "--protocol", "chat", "--protocol", "superchat")
        auth_srv = EchoServer("--require-auth", "TOKEN")
        origin_srv = EchoServer("--origin", "http://good")
        down_srv = EchoServer()
        any_srv = EchoServer()
        servers = [("main", main_srv), ("auth", auth_srv), ("origin", origin_srv),
                   ("any", any_srv)]

        await section("echo-server/messages", client_messages(main_srv.url), 40)
        await section("echo-server/close", client_close_codes(main_srv.url), 30)
        await section("echo-server/subprotocols", client_subprotocols(main_srv.url, any_srv.url), 10)
        await section("echo-server/refusals", client_refusals(auth_srv.url, origin_srv.url), 10)
        await section("echo-server/shutdown", client_graceful_shutdown(down_srv), 15)

        peer = PeerServer()
        async with websockets.serve(peer.handler, "127.0.0.1", 0, subprotocols=["b"],
                                    process_request=peer.process_request, max_size=None,
                                    ping_interval=None, close_timeout=5,
                                    create_protocol=RecServer) as wss:
            port = wss.sockets[0].getsockname()[1]
            await section("echo-client", server_side(peer, f"ws://127.0.0.1:{port}"), 60)
    finally:
        for name, srv in servers:
            srv.stop(name)


def run():
    t0 = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(main(), 110))
    except Exception as e:
        check("no_exception", False, repr(e))
    finally:
        for p in procs:
            alive = p.poll() is None if isinstance(p, subprocess.Popen) else p.returncode is None
            if alive:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if isinstance(p, subprocess.Popen):
                    p.wait(5)
    print(f"{NAME}: {time.monotonic() - t0:.1f} s")
    print(f"{NAME}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


run()
