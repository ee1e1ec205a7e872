#!/usr/bin/python3
"""Prepared-message broadcast (dx_server_broadcast) received by Python's websockets (10.4).

  broadcast_websockets.py BUILD_DIR

BUILD/bin/echo-server --commands; six websockets clients with different
permessage-deflate offers: the defaults (context takeover both ways, server window
11), server_max_window_bits=9 (so the broadcast needs a second compressed form),
server_no_context_takeover, client_no_context_takeover, a client window of 9, and a
client without the extension. Rounds of:
  1. every client sends its own compressible text A and gets it back (the server's
     compressors now remember A);
  2. one client sends "!broadcast P", P a different compressible text: every client
     receives P exactly once, compressed (RSV1) when it agreed the extension, plain
     otherwise; the sender gets it too;
  3. every client sends A again and must get A back: the server's context-takeover
     compressors were reset after the shared form, or their back-references into A
     would land in P on the client's side and websockets would fail or see garbage.
Also a short broadcast (below compress_min: plain for everyone) and a broadcast of
random text (does not compress: plain).

Last line: "broadcast_websockets: N passed, M failed".
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

NAME = "broadcast_websockets"
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"

passed = failed = 0
rsv1_by_ext = {}  # id(extension object) -> frames with RSV1 it inflated

_decode = pmd.PerMessageDeflate.decode


def counting_decode(self, frame, *, max_size=None):
    if frame.rsv1:
        rsv1_by_ext[id(self)] = rsv1_by_ext.get(id(self), 0) + 1
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


def text(seed, n):
    rnd = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "g\u00f6lf", "h\u00f4tel"]
    out = []
    while sum(len(w) + 1 for w in out) < n:
        out.append(rnd.choice(words))
    return " ".join(out)[:n]


CLIENTS = [
    ("defaults", [pmd.ClientPerMessageDeflateFactory(client_max_window_bits=True)]),
    ("server_window_9", [pmd.ClientPerMessageDeflateFactory(server_max_window_bits=9)]),
    ("server_no_context_takeover",
     [pmd.ClientPerMessageDeflateFactory(server_no_context_takeover=True)]),
    ("client_no_context_takeover",
     [pmd.ClientPerMessageDeflateFactory(client_no_context_takeover=True)]),
    ("client_window_9", [pmd.ClientPerMessageDeflateFactory(client_max_window_bits=9)]),
    ("no_deflate", None),  # no header at all (an empty one is malformed: 400)
]


def rsv1_count(ws):
    return rsv1_by_ext.get(id(ws.extensions[0]), 0) if ws.extensions else 0


async def expect(ws, want, what):
    try:
        got = await asyncio.wait_for(ws.recv(), 5)
    except Exception as e:  # noqa: BLE001 - any failure is the check's answer
        return f"{what}: {e!r}"
    if got != want:
        return f"{what}: got {len(got)} chars, not the {len(want)} expected"
    return None


async def scenario(port):
    conns = []
    for name, exts in CLIENTS:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/", extensions=exts,
                                      max_size=None, compression=None)
        conns.append((name, ws))
    check("all_clients_open_with_their_extension",
          all(bool(ws.extensions) == bool(exts) for (_, ws), (_, exts) in zip(conns, CLIENTS)))
    for rnd in range(3):
        a = {name: text(100 * rnd + i, 3000 + 97 * i) for i, (name, _) in enumerate(conns)}
        for name, ws in conns:
            await ws.send(a[name])
        errs = [await expect(ws, a[name], f"{name} echo of A") for name, ws in conns]
        check(f"round{rnd}_echo_before", not any(errs), "; ".join(e for e in errs if e))

        p = text(1000 + rnd, 5000)
        before = {name: rsv1_count(ws) for name, ws in conns}
        await conns[rnd % len(conns)][1].send("!broadcast " + p)
        errs = [await expect(ws, p, f"{name} broadcast") for name, ws in conns]
        check(f"round{rnd}_broadcast_received_by_all", not any(errs),
              "; ".join(e for e in errs if e))
        compressed = {name: rsv1_count(ws) - before[name] for name, ws in conns}
        want = {name: (1 if ws.extensions else 0) for name, ws in conns}
        check(f"round{rnd}_broadcast_compressed_where_agreed", compressed == want,
              f"RSV1 frames {compressed}, expected {want}")

        for name, ws in conns:
            await ws.send(a[name])
        errs = [await expect(ws, a[name], f"{name} echo of A after") for name, ws in conns]
        check(f"round{rnd}_context_takeover_still_in_step", not any(errs),
              "; ".join(e for e in errs if e))

    # short (below 64 B) and incompressible broadcasts go plain to everyone
    rnd = random.Random(7)
    for label, body in (("short", "tiny broadcast"),
                        ("random", "".join(chr(rnd.randrange(0x21, 0x7E)) for _ in range(80)) +
                         "".join(chr(rnd.randrange(0x100, 0xD000)) for _ in range(400)))):
        before = {name: rsv1_count(ws) for name, ws in conns}
        await conns[0][1].send("!broadcast " + body)
        errs = [await expect(ws, body, f"{name} {label}") for name, ws in conns]
        check(f"{label}_broadcast_received_by_all", not any(errs), "; ".join(e for e in errs if e))
        if label == "short":
            compressed = sum(rsv1_count(ws) - before[name] for name, ws in conns)
            check("short_broadcast_is_plain", compressed == 0, f"{compressed} RSV1 frames")

    for _, ws in conns:
        await ws.close()
    check("all_closed_cleanly", all(ws.close_code == 1000 for _, ws in conns),
          repr([ws.close_code for _, ws in conns]))


def main():
    proc = subprocess.Popen([os.path.join(BUILD, "bin", "echo-server"), "--host", "127.0.0.1",
                             "--port", "0", "--commands"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        r, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline().decode() if r else ""
        m = re.search(r":(\d+)", line)
        if not m:
            check("echo_server_started", False, repr(line))
        else:
            asyncio.run(asyncio.wait_for(scenario(int(m.group(1))), 60))
    except Exception as e:  # noqa: BLE001
        check("scenario_finished", False, repr(e))
    finally:
        proc.terminate()
        try:
            check("echo_server_exit_0", proc.wait(10) == 0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            check("echo_server_exit_0", False, "still running")
    print(f"{NAME}: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
