#!/usr/bin/python3
"""The client through a real HTTP CONNECT proxy: Debian's tinyproxy.

Starts BUILD/bin/echo-server on a free port and two tinyproxy instances in the
foreground (-d) with generated configurations: one open, one with BasicAuth. Each
allows CONNECT only to the echo server's port. Then runs BUILD/bin/echo-client
("--send hello --close-after 1": it opens, sends, echoes the echo, closes cleanly,
exit 0) through them:

  --proxy http://127.0.0.1:P        opens; tinyproxy's log shows the CONNECT
  http_proxy=... in the environment opens through the proxy too
  ... and no_proxy=127.0.0.1        bypasses it (no new CONNECT in the log)
  HTTP_PROXY=... (upper case)       ignored (httpoxy): direct
  user:pass@ on the auth instance   opens
  no credentials                    exit 2, "HTTP 407"
  a wrong password                  exit 2, "HTTP 401" (tinyproxy 1.11's answer; 407
                                    is accepted too)
  a port the proxy does not allow   exit 2, "HTTP 403"
  wss:// to a TLS echo-server       --proxy and https_proxy: TLS inside the tunnel,
                                    verified with the test CA (make-certs.sh)

Usage: proxy_tinyproxy.py BUILD_DIR. Every process is stopped by its PID. The last
line is "proxy_tinyproxy: N passed, M failed".
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SERVER = os.path.join(BUILD, "bin", "echo-server")
CLIENT = os.path.join(BUILD, "bin", "echo-client")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   proxy_tinyproxy {name}")
    else:
        failed += 1
        print(f"FAIL proxy_tinyproxy {name} {detail}")
    sys.stdout.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(extra)
    return env


class Tinyproxy:
    def __init__(self, workdir, name, connect_ports, auth=None):
        self.port = free_port()
        self.log = os.path.join(workdir, f"{name}.log")
        conf = os.path.join(workdir, f"{name}.conf")
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 20",
            "LogLevel Info",
            f'LogFile "{self.log}"',
            "MaxClients 16",
            "Allow 127.0.0.1",
            "DisableViaHeader Yes",
        ] + [f"ConnectPort {p}" for p in connect_ports]
        if auth:
            lines.append(f"BasicAuth {auth[0]} {auth[1]}")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.out = open(os.path.join(workdir, f"{name}.out"), "w")
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf], stdout=self.out,
                                     stderr=subprocess.STDOUT)
        self.ok = wait_listening(self.port, self.proc)

    def connects(self, port, host="127.0.0.1"):
        """How many CONNECTs to host:port the log shows so far."""
        try:
            with open(self.log, errors="replace") as f:
                return f.read().count(f"CONNECT {host}:{port} ")
        except OSError:
            return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def client(url, *args, env=None):
    """Run echo-client; returns (exit status, stderr)."""
    try:
        r = subprocess.run([CLIENT, url, "--send", "hello", "--close-after", "1", *args],
                           env=env if env is not None else clean_env(), capture_output=True,
                           text=True, timeout=20)
        return r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        return -1, "timeout"


def main():
    if not shutil.which("tinyproxy"):
        check("tinyproxy_installed", False, "(apt-get install -y tinyproxy; see "
              "scripts/install-deps.sh)")
        return
    workdir = tempfile.mkdtemp(prefix="dx-tinyproxy-")
    srv = subprocess.Popen([SERVER, "--port", "0", "--host", "127.0.0.1"],
                           stdout=subprocess.PIPE, text=True)
    subprocess.run(["sh", "tests/certs/make-certs.sh", workdir], check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tls_srv = subprocess.Popen([SERVER, "--port", "0", "--host", "127.0.0.1", "--cert",
                                f"{workdir}/server.pem", "--key", f"{workdir}/server.key"],
                               stdout=subprocess.PIPE, text=True)
    proxies = []
    try:
        line = srv.stdout.readline()  # "listening on 127.0.0.1:PORT"
        eport = int(line.rsplit(":", 1)[-1])
        tport = int(tls_srv.stdout.readline().rsplit(":", 1)[-1])
        url = f"ws://127.0.0.1:{eport}/"
        open_p = Tinyproxy(workdir, "open", [eport, tport])
        auth_p = Tinyproxy(workdir, "auth", [eport], auth=("user", "s3cret"))
        proxies = [open_p, auth_p]
        check("proxies_started", open_p.ok and auth_p.ok)
        if not (open_p.ok and auth_p.ok):
            return
        purl = f"http://127.0.0.1:{open_p.port}"

        # direct, for reference: no CONNECT
        rc, err = client(url)
        check("direct_exit_0", rc == 0, f"rc={rc} {err!r}")

        # --proxy
        before = open_p.connects(eport)
        rc, err = client(url, "--proxy", purl)
        check("option_proxy_exit_0", rc == 0, f"rc={rc} {err!r}")
        check("option_proxy_opened", "open protocol=" in err, repr(err))
        check("option_proxy_connect_logged", open_p.connects(eport) == before + 1,
              f"{before} -> {open_p.connects(eport)}")

        # http_proxy in the environment
        before = open_p.connects(eport)
        rc, err = client(url, env=clean_env(http_proxy=purl))
        check("env_http_proxy_exit_0", rc == 0, f"rc={rc} {err!r}")
        check("env_http_proxy_connect_logged", open_p.connects(eport) == before + 1,
              f"{before} -> {open_p.connects(eport)}")

        # no_proxy bypasses it
        before = open_p.connects(eport)
        rc, err = client(url, env=clean_env(http_proxy=purl, no_proxy="127.0.0.1"))
        check("no_proxy_exit_0", rc == 0, f"rc={rc} {err!r}")
        check("no_proxy_bypasses", open_p.connects(eport) == before,
              f"{before} -> {open_p.connects(eport)}")

        # HTTP_PROXY (upper case) is never used
        before = open_p.connects(eport)
        rc, err = client(url, env=clean_env(HTTP_PROXY=purl))
        check("upper_http_proxy_ignored", rc == 0 and open_p.connects(eport) == before,
              f"rc={rc} {before} -> {open_p.connects(eport)}")

        # all_proxy as the fallback
        before = open_p.connects(eport)
        rc, err = client(url, env=clean_env(all_proxy=purl))
        check("env_all_proxy", rc == 0 and open_p.connects(eport) == before + 1,
              f"rc={rc} {before} -> {open_p.connects(eport)}")

        # credentials
        aurl = f"http://user:s3cret@127.0.0.1:{auth_p.port}"
        before = auth_p.connects(eport)
        rc, err = client(url, "--proxy", aurl)
        check("auth_proxy_exit_0", rc == 0, f"rc={rc} {err!r}")
        check("auth_proxy_connect_logged", auth_p.connects(eport) == before + 1,
              f"{before} -> {auth_p.connects(eport)}")
        rc, err = client(url, "--proxy", f"http://user:wrong@127.0.0.1:{auth_p.port}")
        check("auth_wrong_password_exit_2", rc == 2, f"rc={rc}")
        # tinyproxy 1.11 answers wrong credentials with 401 (and missing ones with 407)
        check("auth_wrong_password_refused", "HTTP 407" in err or "HTTP 401" in err, repr(err))
        rc, err = client(url, "--proxy", f"http://127.0.0.1:{auth_p.port}")
        check("auth_missing_407", rc == 2 and "HTTP 407" in err, f"rc={rc} {err!r}")

        # a port the proxy does not CONNECT to
        other = free_port()
        rc, err = client(f"ws://127.0.0.1:{other}/", "--proxy", purl)
        check("connect_port_refused_403", rc == 2 and "HTTP 403" in err, f"rc={rc} {err!r}")

        # wss:// through the tunnel: CONNECT first, then TLS to the server inside it
        wurl = f"wss://localhost:{tport}/"
        ca = f"{workdir}/ca.pem"
        before = open_p.connects(tport, 'localhost')
        rc, err = client(wurl, "--proxy", purl, "--ca", ca)
        check("wss_option_proxy_exit_0", rc == 0 and "clean=1" in err, f"rc={rc} {err!r}")
        check("wss_connect_logged", open_p.connects(tport, 'localhost') == before + 1,
              f"{before} -> {open_p.connects(tport, 'localhost')}")
        before = open_p.connects(tport, 'localhost')
        rc, err = client(wurl, "--ca", ca, env=clean_env(https_proxy=purl, http_proxy="x"))
        check("wss_env_https_proxy", rc == 0 and open_p.connects(tport, 'localhost') == before + 1,
              f"rc={rc} {err!r}")
    except Exception as e:  # a failure anywhere is one failed check, not a crash
        check("no_exception", False, repr(e))
    finally:
        for p in proxies:
            p.stop()
        if srv.poll() is None:
            srv.terminate()
            try:
                srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
        if tls_srv.poll() is None:
            tls_srv.terminate()
            try:
                tls_srv.wait(10)
            except subprocess.TimeoutExpired:
                tls_srv.kill()
                tls_srv.wait()
        shutil.rmtree(workdir, ignore_errors=True)


main()
print(f"proxy_tinyproxy: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
