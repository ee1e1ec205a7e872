#!/usr/bin/python3
"""Drive build/bin/sansio-echo with a real peer: Python's websockets (Debian).

Starts the example server on a free port, then checks text and binary echoes
(empty to 4 MiB), a fragmented message, ping/pong, a clean close with a code and
reason, and a refused non-WebSocket request. Prints "N passed, M failed".
"""
import asyncio
import os
import subprocess
import sys

import websockets

BIN = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "bin", "sansio-echo")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   example_echo {name}")
    else:
        failed += 1
        print(f"FAIL example_echo {name} {detail}")


async def run(url):
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        for n in (0, 1, 125, 126, 65535, 65536, 4 << 20):
            msg = os.urandom(n)
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 20)
            check(f"binary_{n}", got == msg, f"len {len(got)}")
        text = "h\u00e9llo w\u00f6rld \u4e16\u754c \U0001F600" * 100
        await ws.send(text)
        check("text_utf8", await asyncio.wait_for(ws.recv(), 10) == text)
        await ws.send(iter(["frag", "ment", "ed"]))
        check("fragmented", await asyncio.wait_for(ws.recv(), 10) == "fragmented")
        pong = await ws.ping(b"rtt")
        await asyncio.wait_for(pong, 10)
        check("ping_pong", True)
        await ws.close(code=4001, reason="bye")
        check("close_code_echoed", ws.close_code == 4001,
              f"{ws.close_code} {ws.close_reason!r}")
    # A plain HTTP request is refused with 426 (RFC 6455 §4.2.2).
    host, port = url[5:].rstrip("/").split(":")
    r, w = await asyncio.open_connection(host, int(port))
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    status = await asyncio.wait_for(r.readline(), 10)
    check("plain_http_refused_426", status.startswith(b"HTTP/1.1 426"), repr(status))
    w.close()


def main():
    srv = subprocess.Popen([BIN, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        url = line.split()[-1]
        asyncio.run(asyncio.wait_for(run(url), 60))
    except Exception as e:  # a failure anywhere is one failed test, not a crash
        check("no_exception", False, repr(e))
    finally:
        srv.kill()
        srv.wait()
    print(f"example_echo: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
