#!/usr/bin/python3
"""Drive build/bin/autobahn-client through the Autobahn|Testsuite fuzzingserver protocol.

A stand-in fuzzingserver on Python's websockets (Debian) answers /getCaseCount,
/runCase?case=N&agent=A (sending text, binary, fragmented and empty messages and a
ping, expecting each echoed) and /updateReports?agent=A. Checks that every case ran
in order with the agent name, that every echo matched, and the exit status; then
that --case N runs only that case, and that an unreachable server gives exit 1.
Prints "autobahn_flow: N passed, M failed" last.
"""
import asyncio
import os
import sys
from urllib.parse import urlparse, parse_qs

import websockets

BIN = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "bin", "autobahn-client")
NAME = "autobahn_flow"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {NAME} {name}")
    else:
        failed += 1
        print(f"FAIL {NAME} {name} {detail}")


CASES = 4


def messages(case):
    return ["", "x" * case, "h\u00e9llo \U0001F600" * case, os.urandom(1000 * case),
            bytes(70000)]


async def serve_and_run(args):
    log = {"cases": [], "mismatch": [], "reports": []}

    async def handler(ws):
        url = urlparse(ws.path)
        q = parse_qs(url.query)
        if url.path == "/getCaseCount":
            await ws.send(str(CASES))
            await ws.close()
        elif url.path == "/runCase":
            case = int(q["case"][0])
            log["cases"].append((case, q["agent"][0]))
            for m in messages(case):
                await ws.send(m)
                got = await asyncio.wait_for(ws.recv(), 10)
                if got != m:
                    log["mismatch"].append(case)
            await ws.send(iter(["frag", "ment"]))
            if await asyncio.wait_for(ws.recv(), 10) != "fragment":
                log["mismatch"].append(case)
            await asyncio.wait_for(await ws.ping(b"p"), 10)
            await ws.close(1000)
        elif url.path == "/updateReports":
            log["reports"].append(q["agent"][0])
            await ws.close()

    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None,
                                compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        p = await asyncio.create_subprocess_exec(
            BIN, "--url", f"ws://127.0.0.1:{port}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(p.communicate(), 60)
        except asyncio.TimeoutError:
            p.kill()
            await p.wait()
            out, err = b"", b"timeout"
        return p.returncode, out.decode(), err.decode(), log


async def main():
    rc, out, err, log = await serve_and_run(["--agent", "duplex-test"])
    check("exit_0", rc == 0, f"rc={rc} {err}")
    check("case_count", f"{CASES} cases" in out, out)
    check("all_cases_in_order", log["cases"] == [(i, "duplex-test") for i in range(1, CASES + 1)],
          str(log["cases"]))
    check("every_echo_matched", not log["mismatch"], str(log["mismatch"]))
    check("reports_updated", log["reports"] == ["duplex-test"], str(log["reports"]))

    rc, out, err, log = await serve_and_run(["--agent", "one", "--case", "3"])
    check("single_case", rc == 0 and log["cases"] == [(3, "one")] and log["reports"] == ["one"],
          f"rc={rc} {log}")

    # nothing listens there: the first step fails, exit 1
    p = await asyncio.create_subprocess_exec(BIN, "--url", "ws://127.0.0.1:1",
                                             stdout=asyncio.subprocess.DEVNULL,
                                             stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(p.communicate(), 30)
    check("unreachable_exit_1", p.returncode == 1 and b"could not connect" in err,
          f"rc={p.returncode} {err!r}")

    p = await asyncio.create_subprocess_exec(BIN, "--agent", "bad agent",
                                             stdout=asyncio.subprocess.DEVNULL,
                                             stderr=asyncio.subprocess.DEVNULL)
    check("bad_agent_usage_exit_2", await asyncio.wait_for(p.wait(), 10) == 2)


asyncio.run(main())
print(f"{NAME}: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
