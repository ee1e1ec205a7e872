'use strict';
/* Start and stop build/bin/echo-server for the Node interop tests (tests/interop/*.js).
 * Not a test itself: tests/run.sh runs only the files directly in tests/interop/. */
const { spawn } = require('child_process');

/* echo-server @bin on 127.0.0.1, a free port, with @args; the process is pushed on
 * @procs (the caller kills what is left at exit). Resolves {proc, port}. */
function startServer(bin, args, procs) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['--host', '127.0.0.1', '--port', '0', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(p);
    let buf = '';
    const t = setTimeout(() => reject(new Error('echo-server did not listen within 5 s')), 5000);
    p.stdout.on('data', (d) => {
      buf += d;
      const m = /listening on [^:]+:(\d+)/.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve({ proc: p, port: Number(m[1]) });
      }
    });
    p.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`echo-server exited (${code})`));
    });
  });
}

/* SIGTERM the server; resolves with its exit status ('timeout' after 8 s, then killed). */
function stopServer(server) {
  server.proc.removeAllListeners('exit');
  if (server.proc.exitCode !== null) return Promise.resolve(server.proc.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      server.proc.kill('SIGKILL');
      resolve('timeout');
    }, 8000);
    server.proc.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    server.proc.kill('SIGTERM');
  });
}

module.exports = { startServer, stopServer };
