#!/usr/bin/python3
"""permessage-deflate (RFC 7692) between Python's websockets (Debian, 10.4) and duplex.

  deflate_websockets.py BUILD_DIR

1. websockets as CLIENT of BUILD/bin/echo-server, ClientPerMessageDeflateFactory with
   every combination of server_no_context_takeover, client_no_context_takeover (on,
   off), server_max_window_bits (absent, 9, 12, 15) and client_max_window_bits
   (absent, without a value, 9, 12, 15): the agreed Sec-WebSocket-Extensions string
   must be exactly what echo-server's defaults give (server window min(11, offer)),
   and texts and binaries of 0 B, 100 B, 5000 B and 1 MiB (compressible and random)
   come back equal; echoes of 64 B or more must arrive compressed (RSV1).
2. websockets as SERVER for BUILD/bin/echo-client, ServerPerMessageDeflateFactory with
   every combination of the same four settings (client window absent, 8, 11, 15).
   echo-client offers client_max_window_bits without a value (duplex's default), so
   websockets answers client_max_window_bits=N (8, 11 or 15; none when absent): the
   answer must be exactly that, the client must print "open ... extensions=E" with E
   that answer, echo every message (compressed within min(11, N) while websockets
   inflates with N, RFC 7692 §7.1.2.2), and exit 0 after websockets closes.
3. The same with echo-client --deflate-client-window 9 and 12 (offered with the value)
   against servers with client window absent, 8, 11, 15, with and without
   client_no_context_takeover: websockets answers the smaller of the two (the offered
   value when it has none) and inflates with it, so a client compressing beyond its
   window would fail here.

DX_PMD_NODEFLATE=1 runs both duplex programs with --no-deflate (every check that the
extension is in use must then fail). Last line: "deflate_websockets: N passed, M failed".
"""
import asyncio
import os
import random
import re
import select
import subprocess
import sys

import websockets
from websockets.extensions import permessage_deflate as pmd

NAME = "deflate_websockets"
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
NODEFLATE = ["--no-deflate"] if os.environ.get("DX_PMD_NODEFLATE") else []
MiB = 1 << 20

passed = failed = 0
procs = []
rsv1_in = [0]  # frames with RSV1 that websockets inflated

_decode = pmd.PerMessageDeflate.decode


def counting_decode(self, frame, *, max_size=None):
    if frame.rsv1:
        rsv1_in[0] += 1
    return _decode(self, frame, max_size=max_size)


pmd.PerMessageDeflate.decode = counting_decode


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {NAME} {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {NAME} {name}" + (f": {detail}" if detail else ""), flush=True)


def messages(seed):
    rnd = random.Random(seed)
    unit = "h\u00e9llo w\u00f6rld \u4e16\u754c \U0001F600 "
    out = []
    for n in (0, 100, 5000, MiB):
        out.append((unit * (n // len(unit) + 1))[:n])              # compressible text
        out.append(rnd.randbytes(n))                               # random binary
    out.append("".join(chr(rnd.randrange(0x20, 0xD000)) for _ in range(3000)))  # random text
    return out


def wire_size(m):
    return len(m.encode()) if isinstance(m, str) else len(m)


# ---- 1. websockets as client ------------------------------------------------------------

def start_server():
    p = subprocess.Popen([os.path.join(BUILD, "bin", "echo-server"), "--host", "127.0.0.1",
                          "--port", "0"] + NODEFLATE, stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    r, _, _ = select.select([p.stdout], [], [], 15)
    line = p.stdout.readline().decode() if r else ""
    m = re.search(r":(\d+)", line)
    if not m:
        raise SystemExit(f"echo-server did not start: {line!r}")
    return p, int(m.group(1))


def expected_answer(snct, smwb, cmwb):
    parts = ["permessage-deflate"]
    if snct:
        parts.append("server_no_context_takeover")
    parts.append(f"server_max_window_bits={min(11, smwb or 15)}")
    if isinstance(cmwb, int) and not isinstance(cmwb, bool) and cmwb < 15:
        parts.append(f"client_max_window_bits={cmwb}")
    return "; ".join(parts)


async def client_combo(port, snct, cnct, smwb, cmwb, seed):
    name = f"client snct={int(snct)} cnct={int(cnct)} smwb={smwb} cmwb={cmwb}"
    fac = pmd.ClientPerMessageDeflateFactory(server_no_context_takeover=snct,
                                             client_no_context_takeover=cnct,
                                             server_max_window_bits=smwb,
                                             client_max_window_bits=cmwb)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/", extensions=[fac],
                                      compression=None, max_size=4 * MiB,
                                      open_timeout=10, close_timeout=10) as ws:
            got = ws.response_headers.get("Sec-WebSocket-Extensions")
            want = expected_answer(snct, smwb, cmwb)
            check(f"{name}: agreed {want!r}", got == want, f"got {got!r}")
            before = rsv1_in[0]
            msgs = messages(seed)
            ok = True
            for m in msgs:
                await ws.send(m)
                e = await asyncio.wait_for(ws.recv(), 20)
                if e != m:
                    ok = False
                    check(f"{name}: echo of {wire_size(m)} B", False, "differs")
            compressible = sum(1 for m in msgs if wire_size(m) >= 64)
            check(f"{name}: {len(msgs)} echoes equal, {compressible} compressed",
                  ok and rsv1_in[0] - before == compressible,
                  f"{rsv1_in[0] - before} compressed echoes")
    except Exception as e:  # noqa: BLE001
        check(f"{name}: connection", False, f"{type(e).__name__}: {e}")


# ---- 2. websockets as server ------------------------------------------------------------

def server_answer(snct, cnct, smwb, cmwb, window):
    """What websockets answers echo-client's offer (client_max_window_bits bare, or
    =@window with --deflate-client-window) with these server settings."""
    parts = ["permessage-deflate"]
    if snct:
        parts.append("server_no_context_takeover")
    if cnct:
        parts.append("client_no_context_takeover")
    if smwb:
        parts.append(f"server_max_window_bits={smwb}")
    if cmwb is None:
        client = window  # a bare offer is not answered; a value is echoed
    else:
        client = cmwb if window is None else min(cmwb, window)
    if client:
        parts.append(f"client_max_window_bits={client}")
    return "; ".join(parts)


async def server_combo(snct, cnct, smwb, cmwb, seed, window=None):
    name = f"server snct={int(snct)} cnct={int(cnct)} smwb={smwb} cmwb={cmwb}"
    flags = []
    if window is not None:
        name = f"echo-client --deflate-client-window {window} vs {name}"
        flags = ["--deflate-client-window", str(window)]
    fac = pmd.ServerPerMessageDeflateFactory(server_no_context_takeover=snct,
                                             client_no_context_takeover=cnct,
                                             server_max_window_bits=smwb,
                                             client_max_window_bits=cmwb)
    result = {}
    done = asyncio.get_running_loop().create_future()

    async def handler(ws, path):
        try:
            result["answer"] = ws.response_headers.get("Sec-WebSocket-Extensions")
            msgs = messages(seed)
            before = rsv1_in[0]
            ok = True
            for m in msgs:
                await ws.send(m)
                if await asyncio.wait_for(ws.recv(), 20) != m:
                    ok = False
            result["ok"] = ok
            result["rsv1"] = rsv1_in[0] - before
            result["want_rsv1"] = sum(1 for m in msgs if wire_size(m) >= 64)
            await ws.close(1000)
        except Exception as e:  # noqa: BLE001
            result["error"] = f"{type(e).__name__}: {e}"
        finally:
            if not done.done():
                done.set_result(None)

    async with websockets.serve(handler, "127.0.0.1", 0, extensions=[fac], compression=None,
                                max_size=4 * MiB) as srv:
        port = srv.sockets[0].getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            os.path.join(BUILD, "bin", "echo-client"), f"ws://127.0.0.1:{port}/", *NODEFLATE,
            *flags, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            err = await asyncio.wait_for(proc.stderr.read(), 60)
            rc = await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            check(f"{name}: echo-client finished", False, "timed out")
            return
        await asyncio.wait_for(done, 10)
    err = err.decode(errors="replace")
    ans = result.get("answer")
    want = server_answer(snct, cnct, smwb, cmwb, window)
    opened = re.search(r"open protocol=\S* extensions=(.*)", err)
    check(f"{name}: agreed {want!r}, echo-client shows it",
          ans == want and opened is not None and opened.group(1) == ans,
          f"answer {ans!r}, client printed {opened.group(0) if opened else err[-200:]!r}")
    check(f"{name}: echoes equal, {result.get('want_rsv1')} compressed",
          result.get("ok") and result.get("rsv1") == result.get("want_rsv1"),
          result.get("error") or f"compressed echoes {result.get('rsv1')}")
    check(f"{name}: echo-client exit 0", rc == 0, f"exit {rc}: {err[-200:]!r}")


async def main():
    server, port = start_server()
    seed = 0
    try:
        for snct in (False, True):
            for cnct in (False, True):
                for smwb in (None, 9, 12, 15):
                    for cmwb in (None, True, 9, 12, 15):
                        seed += 1
                        await client_combo(port, snct, cnct, smwb, cmwb, seed)
        for snct in (False, True):
            for cnct in (False, True):
                for smwb in (None, 9, 12, 15):
                    for cmwb in (None, 8, 11, 15):
                        seed += 1
                        await server_combo(snct, cnct, smwb, cmwb, seed)
        for window in (9, 12):
            for cnct in (False, True):
                for cmwb in (None, 8, 11, 15):
                    seed += 1
                    await server_combo(False, cnct, None, cmwb, seed, window)
    finally:
        server.terminate()
        try:
            rc = server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            rc = None
        check("echo-server exits 0 on SIGTERM", rc == 0, f"status {rc}")


try:
    asyncio.run(main())
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
print(f"{NAME}: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
