#!/usr/bin/python3
"""wss:// with a real peer: Python's websockets (Debian) over Python's ssl, both ways.

Makes test certificates with tests/certs/make-certs.sh (openssl CLI) in a temp dir, then:
  websockets (TLS client, verifying with the test CA) -> echo-server --cert/--key:
      text and binary echoes up to 16 MiB, permessage-deflate agreed on top of TLS;
  plain HTTP sent to the TLS port: dropped without an answer, and the server keeps serving;
  echo-client -> echo-server over wss: --ca CA opens; no CA (system store) fails with the
      unknown-CA error; --insecure opens; a 127.0.0.1 URL is checked as an IP address;
  echo-client -> websockets TLS servers: the good certificate opens; expired, self-signed,
      wrong-name and other-CA certificates each fail with their own message, exit 2.
  SNI: echo-server with two --cert/--key pairs answers "other.test" with the second;
  mTLS: echo-server --client-ca: echo-client with --cert/--key opens, without is refused.
Every process is stopped by its PID. The last line is "wss_peer: N passed, M failed".
"""
import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile

import websockets

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SERVER = os.path.join(BUILD, "bin", "echo-server")
CLIENT = os.path.join(BUILD, "bin", "echo-client")
NAME = "wss_peer"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {NAME} {name}")
    else:
        failed += 1
        print(f"FAIL {NAME} {name} {detail}")


async def run_client(url, *args):
    p = await asyncio.create_subprocess_exec(CLIENT, url, *args,
                                             stdout=asyncio.subprocess.DEVNULL,
                                             stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(p.communicate(), 20)
    except asyncio.TimeoutError:
        p.kill()
        await p.wait()
        return -1, "timeout"
    return p.returncode, err.decode(errors="replace")


async def against_echo_server(certs):
    proc = subprocess.Popen([SERVER, "--host", "127.0.0.1", "--port", "0", "--cert",
                             f"{certs}/server.pem", "--key", f"{certs}/server.key"],
                            stdout=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline().decode().rsplit(":", 1)[1])
        ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")
        async with websockets.connect(f"wss://localhost:{port}/", ssl=ctx, max_size=None) as ws:
            ok = True
            for n in (0, 1, 125, 126, 65536, 1 << 20, 16 << 20):
                for msg in (os.urandom(n), "t" * n):
                    await ws.send(msg)
                    got = await asyncio.wait_for(ws.recv(), 30)
                    ok = ok and got == msg
            check("websockets_client_echo_0_to_16MiB", ok)
            check("deflate_on_top_of_tls", len(ws.extensions) == 1, repr(ws.extensions))
            check("tls_version", ws.transport.get_extra_info("ssl_object").version()
                  in ("TLSv1.2", "TLSv1.3"))
        # Plain HTTP to the TLS port: no answer, the socket closed, others still served.
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await w.drain()
        data = await asyncio.wait_for(r.read(), 5)
        check("plain_http_dropped", data == b"", repr(data[:60]))
        w.close()
        async with websockets.connect(f"wss://localhost:{port}/", ssl=ctx) as ws:
            await ws.send("still")
            check("still_serving", await asyncio.wait_for(ws.recv(), 5) == "still")

        base = ["--send", "hello", "--close-after", "1"]
        rc, err = await run_client(f"wss://localhost:{port}/", "--ca", f"{certs}/ca.pem", *base)
        check("echo_client_with_ca", rc == 0 and "clean=1" in err, f"rc={rc} {err}")
        rc, err = await run_client(f"wss://localhost:{port}/", *base)
        check("echo_client_system_store_unknown_ca", rc == 2 and "error:" in err and
              "CA" in err, f"rc={rc} {err}")
        rc, err = await run_client(f"wss://localhost:{port}/", "--insecure", *base)
        check("echo_client_insecure", rc == 0, f"rc={rc} {err}")
        rc, err = await run_client(f"wss://127.0.0.1:{port}/", "--ca", f"{certs}/ca.pem", *base)
        check("echo_client_ip_literal_verified", rc == 0, f"rc={rc} {err}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            check("echo_server_exit_0", proc.wait(10) == 0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            check("echo_server_exit_0", False, "still running")


async def against_websockets_server(certs):
    async def handler(ws):
        for n in (0, 100, 1 << 20):
            await ws.send("q" * n)
            if await asyncio.wait_for(ws.recv(), 20) != "q" * n:
                return
        await ws.close(1000)

    cases = [("server", None), ("expired", "expired"), ("selfsigned", "self-signed"),
             ("wrongname", "name"), ("otherca", "CA")]
    for cert, want in cases:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{certs}/{cert}.pem", f"{certs}/{cert}.key")
        async with websockets.serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=None) as srv:
            port = srv.sockets[0].getsockname()[1]
            rc, err = await run_client(f"wss://localhost:{port}/", "--ca", f"{certs}/ca.pem")
            if want is None:
                check("echo_client_vs_websockets_wss", rc == 0 and "clean=1" in err,
                      f"rc={rc} {err}")
            else:
                first = err.strip().splitlines()[0] if err.strip() else ""
                check(f"refused_{cert}", rc == 2 and first.startswith("error:") and want in first
                      and "open protocol" not in err, f"rc={rc} {err}")


def start_server(*args):
    proc = subprocess.Popen([SERVER, "--host", "127.0.0.1", "--port", "0", *args],
                            stdout=subprocess.PIPE)
    return proc, int(proc.stdout.readline().decode().rsplit(":", 1)[1])


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def sni_and_mtls(certs):
    proc, port = start_server("--cert", f"{certs}/server.pem", "--key", f"{certs}/server.key",
                              "--cert", f"{certs}/other.pem", "--key", f"{certs}/other.key")
    try:
        for name in ("localhost", "other.test"):
            ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")  # checks the name
            try:
                async with websockets.connect(f"wss://127.0.0.1:{port}/", ssl=ctx,
                                              server_hostname=name) as ws:
                    await ws.send(name)
                    check(f"sni_{name}", await asyncio.wait_for(ws.recv(), 5) == name)
            except Exception as e:
                check(f"sni_{name}", False, repr(e))
    finally:
        stop_server(proc)

    proc, port = start_server("--cert", f"{certs}/server.pem", "--key", f"{certs}/server.key",
                              "--client-ca", f"{certs}/ca.pem")
    try:
        base = [f"wss://localhost:{port}/", "--ca", f"{certs}/ca.pem", "--send", "hi",
                "--close-after", "1"]
        rc, err = await run_client(*base, "--cert", f"{certs}/client.pem", "--key",
                                   f"{certs}/client.key")
        check("mtls_with_client_cert", rc == 0 and "clean=1" in err, f"rc={rc} {err}")
        rc, err = await run_client(*base)
        # the server's alert reaches the client before the socket closes
        check("mtls_without_client_cert_refused", rc == 2 and "TLS alert" in err,
              f"rc={rc} {err}")
        rc, err = await run_client(*base, "--cert", f"{certs}/otherca.pem", "--key",
                                   f"{certs}/otherca.key")
        check("mtls_other_ca_refused", rc != 0 and "clean=1" not in err, f"rc={rc} {err}")
    finally:
        stop_server(proc)


async def main():
    tmp = tempfile.mkdtemp(prefix="duplex-wss-")
    try:
        subprocess.run(["sh", "tests/certs/make-certs.sh", tmp], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await against_echo_server(tmp)
        await against_websockets_server(tmp)
        await sni_and_mtls(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


asyncio.run(main())
print(f"{NAME}: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
