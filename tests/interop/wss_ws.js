#!/usr/bin/env node
/*
 * wss:// between Node's ws 8 (npm, node_modules/) over Node's TLS and duplex, both ways.
 *
 *   node wss_ws.js BUILD_DIR
 *
 * Certificates are made fresh by tests/certs/make-certs.sh (openssl CLI) in a temporary
 * directory, removed at the end. Then:
 *
 * 1. ws clients (verifying with the test CA) -> BUILD/bin/echo-server --cert/--key:
 *    text and binary echoes of 0 B .. 16 MiB with permessage-deflate off and on (checked
 *    in ws.extensions), 8 clients at once, TLS 1.2 or 1.3 negotiated; a client limited to
 *    TLS 1.2 opens with TLS 1.2, one limited to TLS 1.1 is refused by the server.
 * 2. a Node https server with a ws WebSocketServer (echo test) <- BUILD/bin/echo-client
 *    wss://localhost:PORT/ --ca ca.pem, with and without permessage-deflate: every
 *    message comes back equal, echo-client exits 0 with "clean=1".
 * 3. echo-client against Node https servers whose certificate is expired, self-signed,
 *    for the wrong name or from another CA: exit 2, the matching dx_strerror text on
 *    stderr, never "open", and the server never sees a WebSocket connection.
 * 4. mTLS: echo-server --client-ca: a ws client with client.pem is served; one without a
 *    certificate, or with one from another CA, never opens.
 * 5. SNI: echo-server with server.pem (localhost) and other.pem (other.test): servername
 *    'other.test' gets CN=other.test, the default and an unknown name get CN=localhost.
 * 6. Plain HTTP and a plain ws:// client sent to the TLS port fail in under a second; a
 *    silent TCP connection does not hold the server up; wss clients are still served;
 *    echo-server exits 0 on SIGTERM.
 *
 * Every wait is bounded; every process started here is stopped by its PID.
 * Last line: "wss_ws: N passed, M failed".
 */
'use strict';
const echoServer = require('./lib/echo_server');
const { spawn, spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const net = require('net');
const os = require('os');
const path = require('path');

const NAME = 'wss_ws';
const BUILD = process.argv[2] || 'build';
const SERVER_BIN = path.join(BUILD, 'bin', 'echo-server');
const CLIENT_BIN = path.join(BUILD, 'bin', 'echo-client');
const MAKE_CERTS = path.join(__dirname, '..', 'certs', 'make-certs.sh');
const MiB = 1 << 20;

let passed = 0;
let failed = 0;
const procs = [];
let certDir = null;

function check(name, cond, detail) {
  if (cond) {
    passed++;
    console.log(`ok   ${NAME} ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${NAME} ${name}${detail ? ': ' + detail : ''}`);
  }
}

function finish() {
  for (const p of procs) {
    if (p.exitCode === null && p.signalCode === null) {
      try {
        p.kill('SIGKILL'); /* by PID */
      } catch (e) {
        /* gone */
      }
    }
  }
  if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
  console.log(`${NAME}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

let WebSocket;
let WebSocketServer;
try {
  ({ WebSocket, WebSocketServer } = require('ws'));
} catch (e) {
  check('ws_module_installed', false, e.message.split('\n')[0]);
  finish();
}

setTimeout(() => {
  check('whole run within 90 s', false, 'timed out');
  finish();
}, 90000).unref();

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* Resolve with the first of @p and a value @v after @ms. */
function within(p, ms, v) {
  let t;
  return Promise.race([p, new Promise((resolve) => {
    t = setTimeout(() => resolve(v), ms);
  })]).finally(() => clearTimeout(t));
}

function cert(name) {
  return fs.readFileSync(path.join(certDir, name));
}

function certPath(name) {
  return path.join(certDir, name);
}

/* echo-server on 127.0.0.1, a free port; resolves {proc, port}. */
function startServer(args) {
  return echoServer.startServer(SERVER_BIN, args, procs);
}

const stopServer = echoServer.stopServer;

/* echo-client with @args; resolves {rc, err} ('timeout' after @ms, then killed). */
function runClient(args, ms = 20000) {
  return new Promise((resolve) => {
    const p = spawn(CLIENT_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(p);
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
    });
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      resolve({ rc: 'timeout', err });
    }, ms);
    p.on('error', (e) => {
      clearTimeout(t);
      resolve({ rc: 'spawn', err: String(e) });
    });
    p.on('exit', (code) => {
      clearTimeout(t);
      /* stderr may still hold the last line: let it drain */
      p.stderr.on('end', () => resolve({ rc: code, err }));
      if (p.stderr.readableEnded) resolve({ rc: code, err });
    });
  });
}

/*
 * Open a ws client; resolves {ws, opened: true} or {ws, opened: false, error} within
 * @ms. A client that opens after the deadline is closed and counted as not opened.
 */
function openClient(url, options, ms = 5000) {
  const ws = new WebSocket(url, { family: 4, maxPayload: 64 * MiB, ...options });
  return within(new Promise((resolve) => {
    ws.on('open', () => resolve({ ws, opened: true }));
    ws.on('error', (e) => resolve({ ws, opened: false, error: e }));
    ws.on('close', (code) => resolve({ ws, opened: false, error: new Error(`close ${code}`) }));
  }), ms, { ws, opened: false, error: new Error(`no open or error within ${ms} ms`) });
}

function closeClient(ws, ms = 5000) {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(true);
  return within(new Promise((resolve) => {
    ws.on('close', (code) => resolve(code === 1000));
    ws.close(1000);
  }), ms, false).then((ok) => {
    if (!ok) ws.terminate();
    return ok;
  });
}

function textOf(n, seed) {
  const unit = `wss ${seed} h\u00e9llo \u4e16\u754c \uD83D\uDE00 `;
  let s = unit.repeat(Math.ceil(n / Buffer.byteLength(unit)) + 1);
  let b = Buffer.from(s).subarray(0, n);
  while (b.length && (b[b.length - 1] & 0xc0) === 0x80) b = b.subarray(0, b.length - 1);
  /* ended inside a character: cut its lead byte too */
  if (b.length && b[b.length - 1] >= 0xc0) b = b.subarray(0, b.length - 1);
  s = b.toString('utf8');
  return s;
}

/* Echo @msgs ({data, binary}) one after the other on @ws; resolves {ok, why}. */
function echoAll(ws, msgs, ms = 30000) {
  return new Promise((resolve) => {
    let i = 0;
    const timer = setTimeout(() => {
      ws.removeListener('message', onMessage);
      resolve({ ok: false, why: `timeout at message ${i}` });
    }, ms);
    function onMessage(data, isBinary) {
      const m = msgs[i];
      const same = isBinary === m.binary &&
        (m.binary ? Buffer.compare(m.data, data) === 0 : data.toString('utf8') === m.data);
      if (!same) {
        clearTimeout(timer);
        ws.removeListener('message', onMessage);
        resolve({ ok: false, why: `message ${i} (${m.binary ? 'binary' : 'text'}) differs` });
        return;
      }
      if (++i === msgs.length) {
        clearTimeout(timer);
        ws.removeListener('message', onMessage);
        resolve({ ok: true });
      } else {
        ws.send(msgs[i].data, { binary: msgs[i].binary });
      }
    }
    ws.on('message', onMessage);
    ws.send(msgs[0].data, { binary: msgs[0].binary });
  });
}

/* ---- 1. ws clients -> echo-server over wss ------------------------------------------------ */

async function wsClients() {
  const server = await startServer(['--cert', certPath('server.pem'), '--key',
    certPath('server.key')]);
  const url = `wss://localhost:${server.port}/`;
  const ca = cert('ca.pem');
  const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 * MiB];

  for (const deflate of [false, true]) {
    const tag = deflate ? 'deflate' : 'plain';
    const c = await openClient(url, { ca, perMessageDeflate: deflate });
    if (!c.opened) {
      check(`client_${tag}_open`, false, String(c.error));
      continue;
    }
    const ext = c.ws.extensions;
    check(`client_${tag}_extensions`, deflate ? /^permessage-deflate/.test(ext) : ext === '',
      `extensions '${ext}'`);
    const proto = c.ws._socket.getProtocol();
    check(`client_${tag}_tls_version_1.2_or_1.3`, proto === 'TLSv1.2' || proto === 'TLSv1.3',
      proto);
    check(`client_${tag}_authorized_by_test_ca`, c.ws._socket.authorized === true,
      String(c.ws._socket.authorizationError));
    const msgs = [];
    for (const n of sizes) {
      msgs.push({ data: textOf(n, tag), binary: false });
      msgs.push({ data: crypto.randomBytes(n), binary: true });
    }
    const r = await echoAll(c.ws, msgs, 40000);
    check(`client_${tag}_echo_text_binary_0B_to_16MiB (${msgs.length})`, r.ok, r.why);
    check(`client_${tag}_close_1000`, await closeClient(c.ws));
  }

  /* several at once, half of them compressing */
  const N = 8;
  const results = await Promise.all(Array.from({ length: N }, async (_, k) => {
    const c = await openClient(url, { ca, perMessageDeflate: k % 2 === 1 });
    if (!c.opened) return { ok: false, why: `client ${k}: ${c.error}` };
    const msgs = [];
    for (let j = 0; j < 20; j++) {
      const n = (j * 7919 + k * 104729) % 70000;
      msgs.push(j % 2 ? { data: crypto.randomBytes(n), binary: true }
        : { data: textOf(n, `c${k}m${j}`), binary: false });
    }
    const r = await echoAll(c.ws, msgs, 30000);
    const closed = await closeClient(c.ws);
    return { ok: r.ok && closed, why: `client ${k}: ${r.why || ''} closed=${closed}` };
  }));
  const bad = results.filter((r) => !r.ok);
  check(`concurrent_${N}_clients_20_echoes_each`, bad.length === 0,
    bad.map((r) => r.why).join('; '));

  /* TLS 1.2 only */
  const c12 = await openClient(url, { ca, maxVersion: 'TLSv1.2', perMessageDeflate: false });
  if (c12.opened) {
    check('client_tls12_only_negotiates_tls12', c12.ws._socket.getProtocol() === 'TLSv1.2',
      c12.ws._socket.getProtocol());
    const r = await echoAll(c12.ws, [{ data: 'over TLS 1.2', binary: false },
      { data: crypto.randomBytes(200000), binary: true }]);
    check('client_tls12_only_echo', r.ok, r.why);
    await closeClient(c12.ws);
  } else {
    check('client_tls12_only_opens', false, String(c12.error));
  }

  /* TLS 1.1 only: the client is allowed to offer it (security level 0), the server
     refuses: a protocol_version alert from the server, not a local refusal */
  const c11 = await openClient(url, {
    ca, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0',
    perMessageDeflate: false,
  });
  check('client_tls11_only_refused_by_server_alert', !c11.opened && c11.error &&
    /ALERT_PROTOCOL_VERSION|protocol version/i.test(`${c11.error.code} ${c11.error.message}`),
  `opened=${c11.opened} ${c11.error && c11.error.code} ${c11.error}`);
  if (c11.opened) c11.ws.terminate();

  const rc = await stopServer(server);
  check('echo_server_exit_0_on_sigterm', rc === 0, `status ${rc}`);
}

/* ---- 2. echo-client -> Node https + ws server --------------------------------------------- */

/* A Node https server (127.0.0.1, free port) with @certName; a WebSocketServer on it when
   @wsOptions is not null. Resolves {https, wss, port, connections}. */
function nodeServer(certName, wsOptions) {
  return new Promise((resolve) => {
    const srv = https.createServer({ cert: cert(`${certName}.pem`), key: cert(`${certName}.key`) });
    const out = { https: srv, wss: null, port: 0, connections: 0, answer: null };
    if (wsOptions) {
      out.wss = new WebSocketServer({ server: srv, maxPayload: 64 * MiB, ...wsOptions });
      out.wss.on('headers', (headers) => {
        for (const h of headers) {
          const m = /^Sec-WebSocket-Extensions: (.*)$/i.exec(h);
          if (m) out.answer = m[1];
        }
      });
      out.wss.on('connection', () => {
        out.connections++;
      });
    }
    srv.on('request', (req, res) => {
      out.connections++;
      res.end('not a websocket');
    });
    srv.listen(0, '127.0.0.1', () => {
      out.port = srv.address().port;
      resolve(out);
    });
  });
}

function closeNodeServer(s) {
  return within(new Promise((resolve) => {
    if (s.wss) {
      for (const ws of s.wss.clients) ws.terminate();
      s.wss.close();
    }
    s.https.close(() => resolve(true));
    if (s.https.closeAllConnections) s.https.closeAllConnections();
  }), 3000, false);
}

async function echoClientAgainstNode() {
  for (const deflate of [false, true]) {
    const tag = deflate ? 'deflate' : 'plain';
    const s = await nodeServer('server', { perMessageDeflate: deflate ? { threshold: 0 } : false });
    const msgs = [];
    for (const n of [0, 1, 126, 5000, 65536, 1 << 20, 4 * MiB]) {
      msgs.push({ data: textOf(n, `ec-${tag}`), binary: false });
      msgs.push({ data: crypto.randomBytes(n), binary: true });
    }
    const result = new Promise((resolve) => {
      s.wss.on('connection', async (ws) => {
        const r = await echoAll(ws, msgs, 30000);
        r.extensions = ws.extensions;
        r.protocol = ws._socket.getProtocol();
        ws.close(1000, 'done');
        resolve(r);
      });
    });
    const cl = await runClient([`wss://localhost:${s.port}/`, '--ca', certPath('ca.pem')]);
    const r = await within(result, 2000, null);
    check(`echo_client_${tag}_echoes_${msgs.length}_up_to_4MiB`, r !== null && r.ok,
      r ? r.why : 'no connection');
    if (deflate) {
      check('echo_client_deflate_agreed', s.answer !== null &&
        /^permessage-deflate/.test(s.answer) && r !== null && r.extensions !== '' &&
        cl.err.includes(`extensions=${s.answer}`), `answer '${s.answer}' ${cl.err.slice(0, 200)}`);
    } else {
      check('echo_client_no_deflate_when_refused', s.answer === null && r !== null &&
        r.extensions === '', `answer '${s.answer}'`);
    }
    check(`echo_client_${tag}_tls_version`, r !== null &&
      (r.protocol === 'TLSv1.2' || r.protocol === 'TLSv1.3'), r && r.protocol);
    check(`echo_client_${tag}_exit_0_clean`, cl.rc === 0 && /close code=1000 clean=1/.test(cl.err),
      `rc=${cl.rc} ${cl.err.slice(-300)}`);
    await closeNodeServer(s);
  }
}

/* ---- 3. echo-client refuses bad certificates -------------------------------------------- */

async function badCertificates() {
  /* the dx_strerror texts of DX_ETLS_CERT_EXPIRED, SELF_SIGNED, HOSTNAME, UNKNOWN_CA */
  const cases = [
    ['expired', 'peer certificate has expired'],
    ['selfsigned', 'peer certificate is self-signed and not trusted'],
    ['wrongname', 'peer certificate does not match the host name'],
    ['otherca', 'peer certificate is not signed by a trusted CA'],
  ];
  const echo = (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b }));
  for (const [name, text] of cases) {
    const s = await nodeServer(name, {});
    s.wss.on('connection', echo); /* a client that wrongly opens ends quickly */
    const cl = await runClient([`wss://localhost:${s.port}/`, '--ca', certPath('ca.pem'),
      '--send', 'x', '--close-after', '1'], 10000);
    const first = cl.err.trim().split('\n')[0] || '';
    check(`refused_${name}_exit_2_with_its_error`, cl.rc === 2 && first === `error: ${text}` &&
      !cl.err.includes('open protocol') && s.connections === 0,
    `rc=${cl.rc} connections=${s.connections} stderr: ${cl.err.slice(0, 300)}`);
    await closeNodeServer(s);
  }
  /* the control: the same server code with the good certificate opens */
  const s = await nodeServer('server', {});
  s.wss.on('connection', echo);
  const cl = await runClient([`wss://localhost:${s.port}/`, '--ca', certPath('ca.pem'),
    '--send', 'x', '--close-after', '1'], 10000);
  check('control_good_certificate_opens', cl.rc === 0 && s.connections === 1,
    `rc=${cl.rc} ${cl.err.slice(0, 300)}`);
  await closeNodeServer(s);
}

/* ---- 4. mTLS ------------------------------------------------------------------------------- */

async function mutualTls() {
  const server = await startServer(['--cert', certPath('server.pem'), '--key',
    certPath('server.key'), '--client-ca', certPath('ca.pem')]);
  const url = `wss://localhost:${server.port}/`;
  const ca = cert('ca.pem');

  const good = await openClient(url, { ca, cert: cert('client.pem'), key: cert('client.key') });
  if (good.opened) {
    const r = await echoAll(good.ws, [{ data: 'mtls', binary: false },
      { data: crypto.randomBytes(100000), binary: true }]);
    check('mtls_client_certificate_accepted_and_served', r.ok, r.why);
    await closeClient(good.ws);
  } else {
    check('mtls_client_certificate_accepted_and_served', false, String(good.error));
  }

  for (const [tag, extra] of [['no_certificate', {}],
    ['other_ca_certificate', { cert: cert('otherca.pem'), key: cert('otherca.key') }]]) {
    let opened = false;
    const c = await openClient(url, { ca, ...extra });
    c.ws.on('open', () => {
      opened = true;
    });
    /* give a late open (if the refusal were not enforced) the time to show */
    await delay(300);
    const code = c.error ? `${c.error.code || ''} ${c.error.message}` : '';
    check(`mtls_${tag}_refused_never_opens`, !c.opened && !opened && c.error !== undefined,
      `opened=${c.opened || opened} ${code}`);
    if (tag === 'no_certificate') {
      /* TLS 1.3: the refusal is the server's certificate_required alert (116) */
      check('mtls_no_certificate_sees_certificate_required_alert',
        /CERTIFICATE_REQUIRED|certificate required/i.test(code), code);
    }
    c.ws.terminate();
  }

  /* still serving after the refusals */
  const again = await openClient(url, { ca, cert: cert('client.pem'), key: cert('client.key') });
  const r = again.opened ? await echoAll(again.ws, [{ data: 'again', binary: false }])
    : { ok: false, why: String(again.error) };
  check('mtls_still_serving_after_refusals', r.ok, r.why);
  if (again.opened) await closeClient(again.ws);
  const rc = await stopServer(server);
  check('mtls_echo_server_exit_0', rc === 0, `status ${rc}`);
}

/* ---- 5. SNI -------------------------------------------------------------------------------- */

async function sni() {
  const server = await startServer(['--cert', certPath('server.pem'), '--key',
    certPath('server.key'), '--cert', certPath('other.pem'), '--key', certPath('other.key')]);
  const ca = cert('ca.pem');
  const cases = [
    ['default', `wss://localhost:${server.port}/`, {}, 'localhost'],
    ['other.test', `wss://localhost:${server.port}/`, { servername: 'other.test' }, 'other.test'],
    /* a name no certificate has: the default, which then fails the name check (we accept) */
    ['unknown.test', `wss://localhost:${server.port}/`,
      { servername: 'unknown.test', checkServerIdentity: () => undefined }, 'localhost'],
  ];
  for (const [tag, url, extra, cn] of cases) {
    const c = await openClient(url, { ca, ...extra });
    if (!c.opened) {
      check(`sni_${tag}_gets_${cn}`, false, String(c.error));
      continue;
    }
    const peer = c.ws._socket.getPeerCertificate();
    const got = peer && peer.subject ? peer.subject.CN : undefined;
    const r = await echoAll(c.ws, [{ data: tag, binary: false }]);
    check(`sni_${tag}_gets_${cn}`, got === cn && r.ok && c.ws._socket.authorized,
      `CN=${got} echo=${r.ok} authorized=${c.ws._socket.authorized}`);
    await closeClient(c.ws);
  }
  const rc = await stopServer(server);
  check('sni_echo_server_exit_0', rc === 0, `status ${rc}`);
}

/* ---- 6. plain HTTP and plain ws:// to the TLS port ----------------------------------------- */

/* Connect raw TCP, send @bytes, resolve {ms, data, how} when the server ends it. */
function rawExchange(port, bytes, ms = 3000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let data = Buffer.alloc(0);
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    const t = setTimeout(() => {
      sock.destroy();
      resolve({ ms: Date.now() - t0, data, how: 'timeout' });
    }, ms);
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
    });
    sock.on('error', (e) => {
      clearTimeout(t);
      resolve({ ms: Date.now() - t0, data, how: e.code });
    });
    sock.on('close', () => {
      clearTimeout(t);
      resolve({ ms: Date.now() - t0, data, how: 'closed' });
    });
  });
}

async function plainToTlsPort() {
  const server = await startServer(['--cert', certPath('server.pem'), '--key',
    certPath('server.key')]);
  const ca = cert('ca.pem');
  const url = `wss://localhost:${server.port}/`;

  /* a silent TCP connection (no ClientHello) stays open meanwhile */
  const silent = net.connect(server.port, '127.0.0.1');
  silent.on('error', () => {});

  const h = await rawExchange(server.port, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  check('plain_http_dropped_within_1s_no_answer', h.how !== 'timeout' && h.ms < 1000 &&
    !h.data.toString('latin1').startsWith('HTTP/'),
  `${h.how} after ${h.ms} ms, ${h.data.length} bytes: ${h.data.toString('latin1', 0, 40)}`);

  const t0 = Date.now();
  const p = await openClient(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false }, 3000);
  const ms = Date.now() - t0;
  check('plain_ws_client_fails_within_1s', !p.opened && ms < 1000,
    `opened=${p.opened} after ${ms} ms: ${p.error}`);
  if (p.opened) p.ws.terminate();

  /* random non-TLS bytes (not ASCII) fail too, and as quickly */
  const g = await rawExchange(server.port, Buffer.from([0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  check('garbage_dropped_within_1s', g.how !== 'timeout' && g.ms < 1000,
    `${g.how} after ${g.ms} ms`);

  const c = await openClient(url, { ca });
  const r = c.opened ? await echoAll(c.ws, [{ data: 'still serving', binary: false },
    { data: crypto.randomBytes(1 << 20), binary: true }])
    : { ok: false, why: String(c.error) };
  check('wss_still_served_after_plain_clients_with_a_silent_one_open', r.ok, r.why);
  if (c.opened) await closeClient(c.ws);
  silent.destroy();
  const rc = await stopServer(server);
  check('plain_echo_server_exit_0', rc === 0, `status ${rc}`);
}

/* echo-server --threads 2: two loops on one port (SO_REUSEPORT) share one TLS
 * context; 16 clients at once, half compressing, each reconnecting twice. */
async function threadedServer() {
  const server = await startServer(['--threads', '2', '--cert', certPath('server.pem'), '--key',
    certPath('server.key')]);
  const url = `wss://localhost:${server.port}/`;
  const ca = cert('ca.pem');
  const N = 16;
  const results = await Promise.all(Array.from({ length: N }, async (_, k) => {
    for (let round = 0; round < 3; round++) {
      const c = await openClient(url, { ca, perMessageDeflate: k % 2 === 1 });
      if (!c.opened) return { ok: false, why: `client ${k} round ${round}: ${c.error}` };
      const msgs = [];
      for (let j = 0; j < 10; j++) {
        const n = (j * 7919 + k * 104729 + round * 31) % 40000;
        msgs.push(j % 2 ? { data: crypto.randomBytes(n), binary: true }
          : { data: textOf(n, `t${k}r${round}m${j}`), binary: false });
      }
      const r = await echoAll(c.ws, msgs, 30000);
      const closed = await closeClient(c.ws);
      if (!r.ok || !closed) return { ok: false, why: `client ${k} round ${round}: ${r.why || ''} closed=${closed}` };
    }
    return { ok: true };
  }));
  const bad = results.filter((r) => !r.ok);
  check(`threads_2_${N}_clients_3_connections_each_echo`, bad.length === 0,
    bad.map((r) => r.why).join('; '));
  const rc = await stopServer(server);
  check('threads_2_echo_server_exit_0', rc === 0, `status ${rc}`);
}

async function main() {
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-wss-ws-'));
  const mk = spawnSync('sh', [MAKE_CERTS, certDir], { timeout: 60000, encoding: 'utf8' });
  if (mk.status !== 0) {
    check('make_certs', false, `${mk.status} ${mk.stderr}`);
    return;
  }
  for (const [name, fn] of [['ws_clients', wsClients], ['echo_client', echoClientAgainstNode],
    ['bad_certificates', badCertificates], ['mtls', mutualTls], ['sni', sni],
    ['plain_to_tls_port', plainToTlsPort], ['threaded_server', threadedServer]]) {
    try {
      await fn();
    } catch (e) {
      check(`${name}_ran`, false, e.stack || String(e));
    }
  }
}

main().then(finish, (e) => {
  check('main', false, e.stack || String(e));
  finish();
});
