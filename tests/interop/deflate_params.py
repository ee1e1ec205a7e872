#!/usr/bin/python3
"""permessage-deflate parameters chosen on the command line (echo-server and echo-client
--deflate-* flags) against Python's websockets (Debian, 10.4) and a raw server.

  deflate_params.py BUILD_DIR

deflate_websockets.py varies the PEER's settings against duplex's defaults; this file
varies DUPLEX's settings (each flag alone, then all together) and checks that they
reach the wire:

1. echo-client --deflate-* against a websockets server (ServerPerMessageDeflateFactory
   with a few settings): the offer echo-client sends (client_max_window_bits without a
   value unless --deflate-client-window gives one) and the answer it prints are
   exactly the expected strings; a series of messages (0 B .. 200 KiB, a random 1500 B
   message twice in a row so that context takeover shows, text and binary) comes back
   equal; and every message echo-client sends is compressed or not by --deflate-min,
   with the compressed payload byte for byte what zlib gives for the agreed window,
   context takeover, --deflate-level and --deflate-mem-level (zlib is deterministic and
   Python uses the same system zlib). A flag that changes nothing on the wire fails this,
   because the expected bytes then differ from those of the defaults (also checked).
   The client window is min(ours, the answered one): a server allowing 15 gets bytes
   compressed with our 11 (RFC 7692 §7.1.2.2).
2. echo-client against a raw server whose answer breaks the offer (server_max_window_bits
   above or without the --deflate-server-window we offered, server_no_context_takeover
   missing when asked, client_max_window_bits without a value or above 15): echo-client
   exits 2,
   says "error: malformed or unacceptable permessage-deflate response (offered: OFFER)"
   (DX_EDEFLATE_BAD_ANSWER), and sends not a single byte after the 101; the same raw
   server answering correctly lets it open and close cleanly (so the failures are not
   the raw server's doing). A client_max_window_bits above the one we offered is such a
   correct answer (§7.1.2.2: we keep our smaller window).
3. echo-server --deflate-* against websockets clients offering (a) client_max_window_bits
   without a value, (b) no client_max_window_bits, (c) server_max_window_bits=10 and
   client_max_window_bits=12: the answer is exactly what RFC 7692 §7.1 and the flags
   give (client_max_window_bits only when offered), messages echo, and echo-server's
   compressed messages match zlib byte for byte as in 1.
4. Bad values (window 7 or 16, level 0 or 10, mem level 10, min 0, "9x", "-1") and
   --no-deflate with a --deflate-* flag: both programs print the flag on stderr and
   exit 2.

Last line: "deflate_params: N passed, M failed".
"""
import asyncio
import base64
import hashlib
import os
import random
import re
import subprocess
import sys
import zlib

import websockets
from websockets.extensions import permessage_deflate as pmd

NAME = "deflate_params"
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SERVER_BIN = os.path.join(BUILD, "bin", "echo-server")
CLIENT_BIN = os.path.join(BUILD, "bin", "echo-client")
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PMD = "permessage-deflate"
T_RUN = 20  # one program run, seconds

passed = failed = 0
procs = []

# Every data frame websockets receives, before inflation: per connection, a list of
# [rsv1, payload] per message (continuations appended).
wire = {}
_decode = pmd.PerMessageDeflate.decode


def recording_decode(self, frame, *, max_size=None):
    log = wire.setdefault(id(self), [])
    if frame.opcode in (websockets.frames.Opcode.TEXT, websockets.frames.Opcode.BINARY):
        log.append([frame.rsv1, bytes(frame.data)])
    elif frame.opcode == websockets.frames.Opcode.CONT and log:
        log[-1][1] += bytes(frame.data)
    return _decode(self, frame, max_size=max_size)


pmd.PerMessageDeflate.decode = recording_decode


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {NAME} {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {NAME} {name}" + (f": {detail}" if detail else ""), flush=True)


# ---- messages and the zlib model ------------------------------------------------------

def messages():
    rnd = random.Random(7692)
    words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz\u00e9\u00f6") for _ in
                     range(rnd.randrange(2, 10))) for _ in range(400)]
    text = " ".join(rnd.choice(words) for _ in range(40000))
    rand = rnd.randbytes(1500)
    ab = bytes(rnd.choice(b"ab") for _ in range(20000))  # long match chains: level 9 != 6
    return [b"", "ten bytes!", text[:100], text[:70000], rand, rand, text[:5000],
            text.encode()[:200 * 1024], "x" * 3000, ab]


def raw(m):
    return m.encode() if isinstance(m, str) else m


def model(msgs, level, mem, bits, reset, minimum):
    """What a conforming duplex sends for @msgs: [rsv1, payload] per message."""
    out, z = [], None
    for m in map(raw, msgs):
        if len(m) < minimum:
            out.append([False, m])
            continue
        if z is None or reset:
            z = zlib.compressobj(level, zlib.DEFLATED, -max(bits, 9), mem)  # 8 -> 9: deflate.h
        d = z.compress(m) + z.flush(zlib.Z_SYNC_FLUSH)
        out.append([True, d[:-4] if d.endswith(b"\x00\x00\xff\xff") else d])
    return out


def describe(log):
    if log is None:
        return "nothing (no connection)"
    return "[" + ", ".join(f"{'z' if r else 'p'}{len(d)}" for r, d in log) + "]"


MODEL_ARGS = ("level", "mem level", "window", "no context takeover", "min")


def check_wire(name, got, msgs, want, default):
    """@want and @default: model() arguments for the flags and for no flags. Each
    argument that differs from its default must change the bytes on its own, or a
    program that ignored its flag would pass."""
    exp = model(msgs, *want)
    ok = got == exp
    detail = f"sent {describe(got)}, expected {describe(exp)}"
    for i, arg in enumerate(MODEL_ARGS):
        if want[i] != default[i] and model(msgs, *want[:i], default[i], *want[i + 1:]) == exp:
            ok, detail = False, f"the messages do not tell {arg} {want[i]} from {default[i]}"
    check(f"{name}: compressed as agreed (z: RSV1 + exact zlib bytes)", ok, detail)


def cfg_of(flags):
    """The --deflate-* flags as a dict (absent: None / False)."""
    c = {"sw": None, "cw": None, "snct": False, "cnct": False, "mem": 4, "level": 6, "min": 64}
    it = iter(flags)
    for f in it:
        key = {"--deflate-server-window": "sw", "--deflate-client-window": "cw",
               "--deflate-mem-level": "mem", "--deflate-level": "level",
               "--deflate-min": "min"}.get(f)
        if key:
            c[key] = int(next(it))
        elif f == "--deflate-server-no-context-takeover":
            c["snct"] = True
        elif f == "--deflate-client-no-context-takeover":
            c["cnct"] = True
    return c


def ext_params(s):
    """'permessage-deflate; a=1; b' -> {'a': '1', 'b': None}."""
    parts = [p.strip() for p in (s or "").split(";")]
    return {k.strip(): (v.strip() if v else None)
            for k, _, v in (p.partition("=") for p in parts[1:])}


# ---- 1. echo-client against a websockets server -----------------------------------------

async def run_client(args, timeout=T_RUN):
    proc = await asyncio.create_subprocess_exec(CLIENT_BIN, *args, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE)
    procs.append(proc)
    try:
        err = await asyncio.wait_for(proc.stderr.read(), timeout)
        rc = await asyncio.wait_for(proc.wait(), 5)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return None, "timed out"
    return rc, err.decode(errors="replace")


def open_line(err):
    m = re.search(r"^open protocol=\S* extensions=(.*)$", err, re.M)
    return m.group(1) if m else None


async def client_case(flags, factory, offer, answer):
    name = f"client {' '.join(flags) or '(defaults)'} vs {factory}"
    c = cfg_of(flags)
    msgs = messages()
    seen = {}
    done = asyncio.get_running_loop().create_future()

    async def process_request(path, headers):
        seen["offer"] = headers.get("Sec-WebSocket-Extensions")

    async def handler(ws, path):
        try:
            seen["answer"] = ws.response_headers.get("Sec-WebSocket-Extensions")
            ok = True
            for m in msgs:
                await ws.send(m)
                if await asyncio.wait_for(ws.recv(), 10) != m:
                    ok = False
            seen["echo"] = ok
            seen["wire"] = wire.pop(id(ws.extensions[0]), []) if ws.extensions else []
            await ws.close(1000)
        except Exception as e:  # noqa: BLE001
            seen["error"] = f"{type(e).__name__}: {e}"
        finally:
            if not done.done():
                done.set_result(None)

    fac = pmd.ServerPerMessageDeflateFactory(**factory)
    async with websockets.serve(handler, "127.0.0.1", 0, extensions=[fac], compression=None,
                                max_size=None, process_request=process_request) as srv:
        port = srv.sockets[0].getsockname()[1]
        rc, err = await run_client([f"ws://127.0.0.1:{port}/", *flags])
        try:
            await asyncio.wait_for(done, 5)
        except asyncio.TimeoutError:
            pass
    check(f"{name}: offer {offer!r}", seen.get("offer") == offer, f"got {seen.get('offer')!r}")
    shown = open_line(err or "")
    check(f"{name}: answer {answer!r} sent and shown",
          seen.get("answer") == answer and shown == answer,
          f"server sent {seen.get('answer')!r}, echo-client printed {shown!r}")
    check(f"{name}: {len(msgs)} echoes equal, exit 0", seen.get("echo") is True and rc == 0,
          seen.get("error") or f"echo {seen.get('echo')}, exit {rc}: {(err or '')[-300:]!r}")
    a = ext_params(answer)
    answered = int(a.get("client_max_window_bits") or 15)
    bits = min(c["cw"] or 11, answered)  # our window, unless the server asked for less
    reset = c["cnct"] or "client_no_context_takeover" in a
    want = (c["level"], c["mem"], bits, reset, c["min"])
    check_wire(name, seen.get("wire"), msgs, want, (6, 4, 11, False, 64))
    if answered > bits:
        check(f"{name}: the messages tell our window {bits} from the answered {answered}",
              model(msgs, *want) != model(msgs, *want[:2], answered, *want[3:]))


CLIENT_CASES = [
    # flags, websockets server settings, the offer, the answer (websockets does not
    # answer a client_max_window_bits offered without a value unless it has one)
    ([], {}, f"{PMD}; client_max_window_bits", PMD),
    ([], {"client_max_window_bits": 15}, f"{PMD}; client_max_window_bits",
     f"{PMD}; client_max_window_bits=15"),
    ([], {"client_max_window_bits": 8}, f"{PMD}; client_max_window_bits",
     f"{PMD}; client_max_window_bits=8"),
    (["--deflate-server-window", "10"], {},
     f"{PMD}; server_max_window_bits=10; client_max_window_bits",
     f"{PMD}; server_max_window_bits=10"),
    (["--deflate-server-window", "12"], {"server_max_window_bits": 9},
     f"{PMD}; server_max_window_bits=12; client_max_window_bits",
     f"{PMD}; server_max_window_bits=9"),
    (["--deflate-server-window", "15"], {},  # 15 restricts nothing: not offered
     f"{PMD}; client_max_window_bits", PMD),
    (["--deflate-server-no-context-takeover"], {},
     f"{PMD}; server_no_context_takeover; client_max_window_bits",
     f"{PMD}; server_no_context_takeover"),
    (["--deflate-client-window", "9"], {},
     f"{PMD}; client_max_window_bits=9", f"{PMD}; client_max_window_bits=9"),
    (["--deflate-client-window", "9"], {"client_max_window_bits": 15},
     f"{PMD}; client_max_window_bits=9", f"{PMD}; client_max_window_bits=9"),
    (["--deflate-client-window", "8"], {},  # zlib compresses with 9 (see deflate.h)
     f"{PMD}; client_max_window_bits=8", f"{PMD}; client_max_window_bits=8"),
    (["--deflate-client-window", "15"], {"client_max_window_bits": 12},
     f"{PMD}; client_max_window_bits=15", f"{PMD}; client_max_window_bits=12"),
    (["--deflate-client-no-context-takeover"], {},
     f"{PMD}; client_no_context_takeover; client_max_window_bits",
     f"{PMD}; client_no_context_takeover"),
    (["--deflate-mem-level", "9"], {}, f"{PMD}; client_max_window_bits", PMD),
    (["--deflate-level", "1"], {}, f"{PMD}; client_max_window_bits", PMD),
    (["--deflate-level", "9", "--deflate-mem-level", "1"], {},
     f"{PMD}; client_max_window_bits", PMD),
    (["--deflate-min", "1"], {}, f"{PMD}; client_max_window_bits", PMD),
    (["--deflate-min", "4000"], {}, f"{PMD}; client_max_window_bits", PMD),
    (["--deflate-server-window", "12", "--deflate-client-window", "13",
      "--deflate-server-no-context-takeover", "--deflate-client-no-context-takeover",
      "--deflate-mem-level", "7", "--deflate-level", "3", "--deflate-min", "200"],
     {"server_max_window_bits": 10, "client_max_window_bits": 10},
     f"{PMD}; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=12; client_max_window_bits=13",
     f"{PMD}; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=10; client_max_window_bits=10"),
]


# ---- 2. echo-client against a raw server that breaks the offer ------------------------------

async def raw_case(flags, answer, good):
    name = f"client {' '.join(flags)}, answer {answer!r}"
    seen = {}
    done = asyncio.get_running_loop().create_future()

    async def conn(reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            hdrs = dict((k.strip().lower(), v.strip()) for k, _, v in
                        (ln.partition(":") for ln in head.decode().split("\r\n")[1:] if ln))
            seen["offer"] = hdrs.get("sec-websocket-extensions")
            acc = base64.b64encode(hashlib.sha1(
                (hdrs["sec-websocket-key"] + GUID).encode()).digest()).decode()
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {acc}\r\n"
                          f"Sec-WebSocket-Extensions: {answer}\r\n\r\n").encode())
            if good:
                writer.write(b"\x88\x02\x03\xe8")  # close 1000: the client answers it
            await writer.drain()
            got = b""
            while not good or len(got) < 8:  # good: the client's close frame, then we close
                chunk = await asyncio.wait_for(reader.read(65536), 5)
                if not chunk:
                    break
                got += chunk
            seen["after_101"] = got
        except Exception as e:  # noqa: BLE001
            seen["error"] = f"{type(e).__name__}: {e}"
        finally:
            writer.close()
            if not done.done():
                done.set_result(None)

    srv = await asyncio.start_server(conn, "127.0.0.1", 0)
    async with srv:
        port = srv.sockets[0].getsockname()[1]
        rc, err = await run_client([f"ws://127.0.0.1:{port}/", *flags])
        try:
            await asyncio.wait_for(done, 5)
        except asyncio.TimeoutError:
            pass
    err = err or ""
    after = seen.get("after_101")
    if good:
        shown = open_line(err)
        # the client's masked close frame: 0x88, 0x82, 4-byte key, 2 bytes of code
        check(f"{name}: accepted, clean close",
              rc == 0 and shown == answer and after is not None and len(after) == 8
              and after[:2] == b"\x88\x82",
              f"exit {rc}, open {shown!r}, after the 101 {after!r}, {err[-200:]!r}")
        return
    want_msg = "error: malformed or unacceptable permessage-deflate response (offered: " \
        f"{seen.get('offer')})"
    check(f"{name}: handshake fails, exit 2, stderr names it",
          rc == 2 and want_msg in err and open_line(err) is None,
          f"exit {rc}, stderr {err[-300:]!r}")
    check(f"{name}: nothing sent after the 101", after == b"",
          seen.get("error") or f"got {after!r}")


RAW_CASES = [
    # flags, the raw server's answer, whether echo-client must accept it
    (["--deflate-server-window", "10"], f"{PMD}; server_max_window_bits=15", False),
    (["--deflate-server-window", "10"], f"{PMD}; server_max_window_bits=11", False),
    (["--deflate-server-window", "10"], f"{PMD}", False),
    (["--deflate-server-window", "10"], f"{PMD}; server_max_window_bits=10", True),
    (["--deflate-server-window", "10"], f"{PMD}; server_max_window_bits=8", True),
    (["--deflate-server-no-context-takeover"], f"{PMD}", False),
    (["--deflate-server-no-context-takeover"], f"{PMD}; client_max_window_bits=11", False),
    (["--deflate-server-no-context-takeover"], f"{PMD}; server_no_context_takeover", True),
    (["--deflate-client-window", "9"], f"{PMD}; client_max_window_bits=10", True),
    (["--deflate-client-window", "9"], f"{PMD}; client_max_window_bits=15", True),
    (["--deflate-client-window", "9"], f"{PMD}; client_max_window_bits=9", True),
    ([], f"{PMD}; client_max_window_bits=15", True),
    ([], f"{PMD}; client_max_window_bits", False),
    ([], f"{PMD}; client_max_window_bits=16", False),
    (["--deflate-client-no-context-takeover"], f"{PMD}", True),  # ours to keep, not asked
]


# ---- 3. echo-server against websockets clients -----------------------------------------

OFFERS = {
    "bare": {},  # websockets' default: client_max_window_bits without a value
    "none": {"client_max_window_bits": None},
    "s10c12": {"server_max_window_bits": 10, "client_max_window_bits": 12},
}


def offer_text(o):
    p = [PMD]
    if o.get("server_max_window_bits"):
        p.append(f"server_max_window_bits={o['server_max_window_bits']}")
    cm = o.get("client_max_window_bits", True)
    if cm is True:
        p.append("client_max_window_bits")
    elif cm:
        p.append(f"client_max_window_bits={cm}")
    return "; ".join(p)


def expected_answer(c, o):
    """RFC 7692 §7.1 with duplex's server rules (deflate.h, dx_deflate_accept)."""
    p = [PMD]
    if c["snct"] or o.get("server_no_context_takeover"):
        p.append("server_no_context_takeover")
    if c["cnct"]:
        p.append("client_no_context_takeover")
    offered_s = o.get("server_max_window_bits")
    sbits = min(c["sw"] or 11, offered_s or 15)
    if sbits < 15 or offered_s:
        p.append(f"server_max_window_bits={sbits}")
    cm = o.get("client_max_window_bits", True)
    if cm is not None:  # offered, with or without a value: only then may it be stated
        cbits = min(c["cw"] or 15, 15 if cm is True else cm)
        if cbits < 15:
            p.append(f"client_max_window_bits={cbits}")
    return "; ".join(p)


async def server_case(flags):
    c = cfg_of(flags)
    proc = await asyncio.create_subprocess_exec(
        SERVER_BIN, "--host", "127.0.0.1", "--port", "0", *flags, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE)
    procs.append(proc)
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    m = re.search(r":(\d+)$", line.strip())
    if not m:
        check(f"server {' '.join(flags)}: starts", False, repr(line))
        return
    port = int(m.group(1))
    msgs = messages()
    for oname, o in OFFERS.items():
        name = f"server {' '.join(flags) or '(defaults)'}, offer {offer_text(o)!r}"
        want = expected_answer(c, o)
        fac = pmd.ClientPerMessageDeflateFactory(**o)
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/", extensions=[fac],
                                          compression=None, max_size=None, open_timeout=10,
                                          close_timeout=10) as ws:
                got = ws.response_headers.get("Sec-WebSocket-Extensions")
                check(f"{name}: answer {want!r}", got == want, f"got {got!r}")
                ok = True
                for msg in msgs:
                    await ws.send(msg)
                    if await asyncio.wait_for(ws.recv(), 10) != msg:
                        ok = False
                check(f"{name}: {len(msgs)} echoes equal", ok)
                log = wire.pop(id(ws.extensions[0]), []) if ws.extensions else []
            a = ext_params(got)
            bits = int(a.get("server_max_window_bits") or 15)
            default_bits = min(11, o.get("server_max_window_bits") or 15)
            check_wire(name, log, msgs, (c["level"], c["mem"], bits,
                                         "server_no_context_takeover" in a, c["min"]),
                       (6, 4, default_bits, False, 64))
        except Exception as e:  # noqa: BLE001
            check(f"{name}: connection", False, f"{type(e).__name__}: {e}")
    proc.terminate()
    try:
        rc = await asyncio.wait_for(proc.wait(), 10)
    except asyncio.TimeoutError:
        proc.kill()
        rc = await proc.wait()
    check(f"server {' '.join(flags) or '(defaults)'}: exits 0 on SIGTERM", rc == 0,
          f"status {rc}")


SERVER_CASES = [
    [],
    ["--deflate-server-window", "13"],
    ["--deflate-server-window", "8"],
    ["--deflate-client-window", "9"],
    ["--deflate-server-no-context-takeover"],
    ["--deflate-client-no-context-takeover"],
    ["--deflate-mem-level", "9", "--deflate-level", "9"],
    ["--deflate-level", "1", "--deflate-mem-level", "1"],
    ["--deflate-min", "1000"],
    ["--deflate-server-window", "12", "--deflate-client-window", "10",
     "--deflate-server-no-context-takeover", "--deflate-client-no-context-takeover",
     "--deflate-mem-level", "6", "--deflate-level", "2", "--deflate-min", "150"],
]


# ---- 4. bad values --------------------------------------------------------------------

BAD = [  # flags, what stderr must name
    (["--deflate-server-window", "16"], "--deflate-server-window '16'"),
    (["--deflate-server-window", "7"], "--deflate-server-window '7'"),
    (["--deflate-client-window", "9x"], "--deflate-client-window '9x'"),
    (["--deflate-client-window", "-1"], "--deflate-client-window '-1'"),
    (["--deflate-level", "0"], "--deflate-level '0'"),
    (["--deflate-level", "10"], "--deflate-level '10'"),
    (["--deflate-mem-level", "10"], "--deflate-mem-level '10'"),
    (["--deflate-min", "0"], "--deflate-min '0'"),
    (["--no-deflate", "--deflate-server-no-context-takeover"], "--no-deflate contradicts"),
]


def bad_values():
    for prog, pre in ((SERVER_BIN, ["--host", "127.0.0.1", "--port", "0"]),
                      (CLIENT_BIN, ["ws://127.0.0.1:9/"])):
        for flags, named in BAD:
            p = subprocess.run([prog, *pre, *flags], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=10)
            err = p.stderr.decode(errors="replace")
            check(f"{os.path.basename(prog)} {' '.join(flags)}: exit 2, stderr says {named!r}",
                  p.returncode == 2 and named in err and not p.stdout,
                  f"exit {p.returncode}, stderr {err!r}, stdout {p.stdout!r}")


async def main():
    for flags, factory, offer, answer in CLIENT_CASES:
        await client_case(flags, factory, offer, answer)
    for flags, answer, good in RAW_CASES:
        await raw_case(flags, answer, good)
    for flags in SERVER_CASES:
        await server_case(flags)


try:
    bad_values()
    asyncio.run(asyncio.wait_for(main(), 120))
except Exception as e:  # noqa: BLE001
    check("run", False, f"{type(e).__name__}: {e}")
finally:
    for p in procs:
        if p.returncode is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
print(f"{NAME}: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
