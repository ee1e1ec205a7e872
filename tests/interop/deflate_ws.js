#!/usr/bin/env node
/*
 * permessage-deflate (RFC 7692) between Node's ws (npm, node_modules/) and duplex.
 *
 *   node deflate_ws.js BUILD_DIR
 *
 * 1. ws as CLIENT of BUILD/bin/echo-server with perMessageDeflate {serverNoContextTakeover,
 *    clientNoContextTakeover (true, false), serverMaxWindowBits (unset, 9, 12, 15),
 *    clientMaxWindowBits (unset = offered without a value, 9, 12, 15), threshold: 0}: the
 *    agreed Sec-WebSocket-Extensions must be exactly what echo-server's defaults give,
 *    texts and binaries of 0 B, 100 B, 5000 B and 1 MiB come back equal, and the echoes
 *    of 64 B or more arrive compressed (ws's receiver saw RSV1).
 * 2. ws as SERVER for BUILD/bin/echo-client with the same options (client window unset,
 *    8, 11, 15): echo-client offers client_max_window_bits without a value (duplex's
 *    default), so ws answers client_max_window_bits=N (none when unset); the answer must
 *    have exactly the expected parameters, echo-client prints "open ... extensions=E"
 *    with E that answer, echoes everything (compressed from 64 B, within min(11, N) while
 *    ws inflates with N: RFC 7692 §7.1.2.2), and exits 0 after ws closes.
 *
 * 3. echo-client with --deflate-* flags (duplex's own settings; tests/interop/deflate_params.py
 *    covers them byte for byte against Python's websockets) against ws servers: the answer
 *    ws sent is exactly the expected string and echo-client prints it; texts of 0 B to
 *    200 KiB (one of 70 KB twice in a row) come back equal; ws inflated exactly the
 *    messages of --deflate-min bytes or more (RSV1), in under a quarter of their size.
 *    Among them: --deflate-client-window 9 (offered as client_max_window_bits=9) against
 *    a server answering client_max_window_bits=15, above the offer, as Autobahn's
 *    fuzzingserver does (ws 8 itself refuses such an offer with 400 when its
 *    clientMaxWindowBits is larger, so its acceptAsServer is wrapped for these cases to
 *    answer 15; ws then inflates with 15), and the default offer against
 *    clientMaxWindowBits 15 and 8.
 * 4. echo-server with --deflate-* flags against ws clients: the answer is exactly what the
 *    flags and RFC 7692 §7.1 give (client_max_window_bits only when the client offered it),
 *    the texts echo, compressed from --deflate-min bytes.
 *
 * DX_PMD_NODEFLATE=1 runs both duplex programs with --no-deflate (the checks must fail;
 * sections 3 and 4 then stop at the usage error).
 * Last line: "deflate_ws: N passed, M failed".
 */
'use strict';
const { spawn } = require('child_process');
const crypto = require('crypto');
const path = require('path');

const NAME = 'deflate_ws';
const BUILD = process.argv[2] || 'build';
const SERVER_BIN = path.join(BUILD, 'bin', 'echo-server');
const CLIENT_BIN = path.join(BUILD, 'bin', 'echo-client');
const NODEFLATE = process.env.DX_PMD_NODEFLATE ? ['--no-deflate'] : [];
const MiB = 1 << 20;

let passed = 0;
let failed = 0;
const procs = [];

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

/* Sections 3 and 4: what ws inflates, per PerMessageDeflate instance (one per connection). */
/* (by file: the package exports no subpaths; ws's own require resolves to the same module) */
const PerMessageDeflate = require(
  path.join(path.dirname(require.resolve('ws')), 'lib', 'permessage-deflate.js'));
const wsDecompress = PerMessageDeflate.prototype.decompress;
PerMessageDeflate.prototype.decompress = function (data, fin, callback) {
  this.dxMessages = (this.dxMessages || 0) + (fin ? 1 : 0);
  this.dxBytes = (this.dxBytes || 0) + data.length;
  return wsDecompress.call(this, data, fin, callback);
};

setTimeout(() => {
  check('whole run within 240 s', false, 'timed out');
  finish();
}, 240000).unref();

function messages(seed) {
  const unit = Buffer.from('h\u00e9llo w\u00f6rld \u4e16\u754c \uD83D\uDE00 ');
  const out = [];
  for (const n of [0, 100, 5000, MiB]) {
    let s = Buffer.alloc(0);
    const parts = [];
    for (let k = 0; k < Math.ceil(n / unit.length) + 1; k++) parts.push(unit);
    s = Buffer.concat(parts).subarray(0, n);
    while (s.length && (s[s.length - 1] & 0xc0) === 0x80) s = s.subarray(0, s.length - 1);
    out.push({ data: s.toString('utf8'), binary: false });
    out.push({ data: crypto.randomBytes(n), binary: true });
  }
  out.push({ data: crypto.randomBytes(3000).toString('base64'), binary: false });
  void seed;
  return out;
}

function bytesOf(m) {
  return m.binary ? m.data.length : Buffer.byteLength(m.data);
}

function same(m, data, isBinary) {
  if (isBinary !== m.binary) return false;
  return m.binary ? Buffer.compare(m.data, data) === 0 : data.toString('utf8') === m.data;
}

/* Echo every message in turn over ws; resolves with {ok, rsv1}. */
function echoAll(ws, msgs) {
  return new Promise((resolve) => {
    let i = 0;
    let ok = true;
    let rsv1 = 0;
    const timer = setTimeout(() => resolve({ ok: false, rsv1, why: `timeout at ${i}` }), 30000);
    ws.on('message', (data, isBinary) => {
      if (ws._receiver && ws._receiver._compressed) rsv1++;
      if (!same(msgs[i], data, isBinary)) ok = false;
      i++;
      if (i === msgs.length) {
        clearTimeout(timer);
        resolve({ ok, rsv1 });
      } else {
        ws.send(msgs[i].data, { binary: msgs[i].binary });
      }
    });
    ws.send(msgs[0].data, { binary: msgs[0].binary });
  });
}

function expectedAnswer(snct, smwb, cmwb) {
  const parts = ['permessage-deflate'];
  if (snct) parts.push('server_no_context_takeover');
  parts.push(`server_max_window_bits=${Math.min(11, smwb || 15)}`);
  if (typeof cmwb === 'number' && cmwb < 15) parts.push(`client_max_window_bits=${cmwb}`);
  return parts.join('; ');
}

/* The parameters of one extension answer, sorted (ws orders them as they come). */
function paramsOf(answer) {
  return answer === null || answer === undefined ? null
    : answer.split(';').map((p) => p.trim()).sort().join('; ');
}

/* What ws answers echo-client's default offer (client_max_window_bits without a value). */
function expectedServerAnswer(snct, cnct, smwb, cmwb) {
  const parts = ['permessage-deflate'];
  if (snct) parts.push('server_no_context_takeover');
  if (cnct) parts.push('client_no_context_takeover');
  if (smwb !== undefined) parts.push(`server_max_window_bits=${smwb}`);
  if (cmwb !== undefined) parts.push(`client_max_window_bits=${cmwb}`);
  return parts.join('; ');
}

function pmdOptions(snct, cnct, smwb, cmwb) {
  const o = { serverNoContextTakeover: snct, clientNoContextTakeover: cnct, threshold: 0 };
  if (smwb !== undefined) o.serverMaxWindowBits = smwb;
  if (cmwb !== undefined) o.clientMaxWindowBits = cmwb;
  return o;
}

function startServer(flags = []) {
  return new Promise((resolve, reject) => {
    const p = spawn(SERVER_BIN, ['--host', '127.0.0.1', '--port', '0', ...NODEFLATE, ...flags], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(p);
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      const m = /listening on [^:]+:(\d+)/.exec(buf);
      if (m) resolve({ proc: p, port: Number(m[1]) });
    });
    p.on('exit', () => reject(new Error('echo-server exited')));
  });
}

async function clientCombo(port, snct, cnct, smwb, cmwb) {
  const name = `client snct=${+snct} cnct=${+cnct} smwb=${smwb} cmwb=${cmwb}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, {
    perMessageDeflate: pmdOptions(snct, cnct, smwb, cmwb),
    maxPayload: 4 * MiB,
  });
  let answer;
  ws.on('upgrade', (res) => {
    answer = res.headers['sec-websocket-extensions'];
  });
  const opened = await new Promise((resolve) => {
    ws.on('open', () => resolve(true));
    ws.on('error', (e) => resolve(e));
  });
  if (opened !== true) {
    check(`${name}: open`, false, String(opened));
    return;
  }
  const want = expectedAnswer(snct, smwb, cmwb);
  check(`${name}: agreed '${want}'`, answer === want, `got '${answer}'`);
  const msgs = messages();
  const r = await echoAll(ws, msgs);
  const wantRsv1 = msgs.filter((m) => bytesOf(m) >= 64).length;
  check(`${name}: ${msgs.length} echoes equal, ${wantRsv1} compressed`,
    r.ok && r.rsv1 === wantRsv1, `ok=${r.ok} compressed=${r.rsv1} ${r.why || ''}`);
  await new Promise((resolve) => {
    ws.on('close', resolve);
    ws.close(1000);
  });
}

async function serverCombo(snct, cnct, smwb, cmwb) {
  const name = `server snct=${+snct} cnct=${+cnct} smwb=${smwb} cmwb=${cmwb}`;
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: pmdOptions(snct, cnct, smwb, cmwb),
    maxPayload: 4 * MiB,
  });
  await new Promise((resolve) => wss.on('listening', resolve));
  let answer = null;
  wss.on('headers', (headers) => {
    for (const h of headers) {
      const m = /^Sec-WebSocket-Extensions: (.*)$/i.exec(h);
      if (m) answer = m[1];
    }
  });
  const result = new Promise((resolve) => {
    wss.on('connection', async (ws) => {
      const msgs = messages();
      const r = await echoAll(ws, msgs);
      r.want = msgs.filter((m) => bytesOf(m) >= 64).length;
      ws.close(1000);
      resolve(r);
    });
  });
  const port = wss.address().port;
  const proc = spawn(CLIENT_BIN, [`ws://127.0.0.1:${port}/`, ...NODEFLATE], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  procs.push(proc);
  let err = '';
  proc.stderr.on('data', (d) => {
    err += d;
  });
  const rc = await new Promise((resolve) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve('timeout');
    }, 60000);
    proc.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
  const r = await Promise.race([result, new Promise((res) => setTimeout(() => res(null), 1000))]);
  const m = /open protocol=\S* extensions=(.*)/.exec(err);
  const want = expectedServerAnswer(snct, cnct, smwb, cmwb);
  check(`${name}: agreed '${want}', echo-client shows it`,
    paramsOf(answer) === paramsOf(want) && m !== null && m[1] === answer,
    `answer '${answer}', client printed '${m ? m[0] : err.slice(-200)}'`);
  check(`${name}: echoes equal, compressed from 64 B`, r !== null && r.ok && r.rsv1 === r.want,
    r ? `ok=${r.ok} compressed=${r.rsv1}/${r.want}` : 'no result');
  check(`${name}: echo-client exit 0`, rc === 0, `exit ${rc}: ${err.slice(-200)}`);
  await new Promise((resolve) => wss.close(resolve));
}

/* ---- 3. and 4.: duplex's --deflate-* flags ----------------------------------------- */

/* Texts of exactly these byte lengths (cut at a character boundary), built once. */
const PARAMS_MESSAGES = [0, 10, 100, 300, 1500, 5000, 70000, 70000, 200000].map((n) => {
  const unit = Buffer.from('permessage-deflate r\u00e9glages \u4e16\u754c ');
  let b = Buffer.concat(Array(Math.ceil(n / unit.length) + 1).fill(unit)).subarray(0, n);
  while (b.length && (b[b.length - 1] & 0xc0) === 0x80) b = b.subarray(0, b.length - 1);
  if (b.length && b[b.length - 1] >= 0xc0) b = b.subarray(0, b.length - 1);
  return b.toString('utf8');
});

/* The flags' --deflate-min (64 by default). */
function minOf(flags) {
  const i = flags.indexOf('--deflate-min');
  return i >= 0 ? Number(flags[i + 1]) : 64;
}

/* Echo @msgs (texts) over @ws; then the compression ws saw; resolves with a summary. */
async function paramsEcho(ws, msgs, min) {
  const pmd = ws._extensions[PerMessageDeflate.extensionName];
  const r = await echoAll(ws, msgs.map((m) => ({ data: m, binary: false })));
  const big = msgs.filter((m) => Buffer.byteLength(m) >= min);
  const raw = big.reduce((n, m) => n + Buffer.byteLength(m), 0);
  const got = pmd ? pmd.dxMessages || 0 : 0;
  const bytes = pmd ? pmd.dxBytes || 0 : 0;
  return {
    ok: r.ok && got === big.length && (big.length === 0 || bytes * 4 < raw),
    why: `echoes ${r.ok ? 'equal' : 'differ ' + (r.why || '')}, ${got}/${big.length} compressed ` +
      `in ${bytes} B for ${raw} B`,
    want: big.length,
  };
}

/* @answerClientBits: make ws answer client_max_window_bits=N whatever was offered
 * (and inflate with N), as a server may (RFC 7692 §7.1.2.2). */
async function paramsClientCase(flags, wsOptions, want, answerClientBits) {
  let name = `flags client ${flags.join(' ')} vs ws ${JSON.stringify(wsOptions)}`;
  const acceptAsServer = PerMessageDeflate.prototype.acceptAsServer;
  if (answerClientBits) {
    name += ` answering client_max_window_bits=${answerClientBits}`;
    PerMessageDeflate.prototype.acceptAsServer = function (offers) {
      const accepted = acceptAsServer.call(this, offers);
      accepted.client_max_window_bits = answerClientBits;
      return accepted;
    };
  }
  try {
    await paramsClientRun(name, flags, wsOptions, want);
  } finally {
    PerMessageDeflate.prototype.acceptAsServer = acceptAsServer;
  }
}

async function paramsClientRun(name, flags, wsOptions, want) {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: wsOptions,
    maxPayload: 4 * MiB,
  });
  await new Promise((resolve) => wss.on('listening', resolve));
  let answer = null;
  wss.on('headers', (headers) => {
    for (const h of headers) {
      const m = /^Sec-WebSocket-Extensions: (.*)$/i.exec(h);
      if (m) answer = m[1];
    }
  });
  const msgs = PARAMS_MESSAGES;
  const result = new Promise((resolve) => {
    wss.on('connection', async (ws) => {
      const r = await paramsEcho(ws, msgs, minOf(flags));
      ws.close(1000);
      resolve(r);
    });
  });
  const proc = spawn(CLIENT_BIN, [`ws://127.0.0.1:${wss.address().port}/`, ...NODEFLATE,
    ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(proc);
  let err = '';
  proc.stderr.on('data', (d) => {
    err += d;
  });
  const rc = await new Promise((resolve) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve('timeout');
    }, 30000);
    proc.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
  const r = await Promise.race([result, new Promise((res) => setTimeout(() => res(null), 1000))]);
  const m = /open protocol=\S* extensions=(.*)/.exec(err);
  check(`${name}: answer '${want}', echo-client shows it`,
    answer === want && m !== null && m[1] === want,
    `ws sent '${answer}', client printed '${m ? m[0] : err.slice(-200)}'`);
  check(`${name}: echoes equal, compressed from ${minOf(flags)} B`,
    r !== null && r.ok, r ? r.why : 'no result');
  check(`${name}: echo-client exit 0`, rc === 0, `exit ${rc}: ${err.slice(-200)}`);
  await new Promise((resolve) => wss.close(resolve));
}

async function paramsServerCase(flags, cases) {
  const server = await startServer(flags);
  for (const [wsOptions, want] of cases) {
    const name = `flags server ${flags.join(' ')}, ws client ${JSON.stringify(wsOptions)}`;
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, {
      perMessageDeflate: wsOptions,
      maxPayload: 4 * MiB,
    });
    let answer;
    ws.on('upgrade', (res) => {
      answer = res.headers['sec-websocket-extensions'];
    });
    const opened = await new Promise((resolve) => {
      ws.on('open', () => resolve(true));
      ws.on('error', (e) => resolve(e));
    });
    if (opened !== true) {
      check(`${name}: open`, false, String(opened));
      continue;
    }
    check(`${name}: answer '${want}'`, answer === want, `got '${answer}'`);
    const r = await paramsEcho(ws, PARAMS_MESSAGES, minOf(flags));
    check(`${name}: echoes equal, compressed from ${minOf(flags)} B`, r.ok, r.why);
    await new Promise((resolve) => {
      ws.on('close', resolve);
      ws.close(1000);
    });
  }
  server.proc.removeAllListeners('exit');
  const rc = await new Promise((resolve) => {
    server.proc.on('exit', (code) => resolve(code));
    server.proc.kill('SIGTERM');
  });
  check(`flags server ${flags.join(' ')}: exits 0 on SIGTERM`, rc === 0, `status ${rc}`);
}

async function paramsSections() {
  const P = 'permessage-deflate';
  await paramsClientCase(['--deflate-server-window', '10'], { threshold: 0 },
    `${P}; server_max_window_bits=10`);
  await paramsClientCase(['--deflate-server-no-context-takeover', '--deflate-client-window', '9'],
    { threshold: 0 }, `${P}; server_no_context_takeover; client_max_window_bits=9`);
  await paramsClientCase(['--deflate-client-no-context-takeover', '--deflate-min', '1000'],
    { threshold: 0, serverMaxWindowBits: 10 },
    `${P}; client_no_context_takeover; server_max_window_bits=10`);
  /* a client window above the one offered: accepted, we keep ours (§7.1.2.2) */
  await paramsClientCase(['--deflate-client-window', '9'], { threshold: 0 },
    `${P}; client_max_window_bits=15`, 15);
  await paramsClientCase(['--deflate-client-window', '9', '--deflate-client-no-context-takeover'],
    { threshold: 0 }, `${P}; client_no_context_takeover; client_max_window_bits=15`, 15);
  await paramsClientCase(['--deflate-client-window', '12'], { threshold: 0 },
    `${P}; client_max_window_bits=13`, 13);
  await paramsClientCase([], { threshold: 0, clientMaxWindowBits: 15 },
    `${P}; client_max_window_bits=15`);
  await paramsClientCase(['--deflate-client-window', '12'],
    { threshold: 0, clientMaxWindowBits: 8 }, `${P}; client_max_window_bits=8`);
  await paramsClientCase(['--deflate-level', '1', '--deflate-mem-level', '9'],
    { threshold: 0, clientMaxWindowBits: 10 }, `${P}; client_max_window_bits=10`);
  await paramsClientCase(['--deflate-server-window', '12', '--deflate-client-window', '12',
    '--deflate-server-no-context-takeover', '--deflate-client-no-context-takeover',
    '--deflate-mem-level', '5', '--deflate-level', '9', '--deflate-min', '200'],
  { threshold: 0, serverMaxWindowBits: 11, clientMaxWindowBits: 10 },
  `${P}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; ` +
    'client_max_window_bits=10');

  await paramsServerCase(['--deflate-server-window', '10', '--deflate-client-window', '9'], [
    [{ threshold: 0 }, `${P}; server_max_window_bits=10; client_max_window_bits=9`],
    [{ threshold: 0, clientMaxWindowBits: false }, `${P}; server_max_window_bits=10`],
    [{ threshold: 0, clientMaxWindowBits: 8, serverMaxWindowBits: 12 },
      `${P}; server_max_window_bits=10; client_max_window_bits=8`],
  ]);
  await paramsServerCase(['--deflate-server-no-context-takeover',
    '--deflate-client-no-context-takeover', '--deflate-min', '1000'], [
    [{ threshold: 0 },
      `${P}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11`],
    [{ threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: false },
      `${P}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9`],
  ]);
  await paramsServerCase(['--deflate-server-window', '15', '--deflate-level', '9',
    '--deflate-mem-level', '9', '--deflate-min', '1'], [
    [{ threshold: 0, clientMaxWindowBits: false }, `${P}`],
    [{ threshold: 0, serverMaxWindowBits: 13, clientMaxWindowBits: 12 },
      `${P}; server_max_window_bits=13; client_max_window_bits=12`],
  ]);
}

(async () => {
  let server;
  try {
    server = await startServer();
  } catch (e) {
    check('echo-server starts', false, e.message);
    finish();
  }
  for (const snct of [false, true]) {
    for (const cnct of [false, true]) {
      for (const smwb of [undefined, 9, 12, 15]) {
        for (const cmwb of [undefined, 9, 12, 15]) {
          await clientCombo(server.port, snct, cnct, smwb, cmwb);
        }
      }
    }
  }
  for (const snct of [false, true]) {
    for (const cnct of [false, true]) {
      for (const smwb of [undefined, 9, 12, 15]) {
        for (const cmwb of [undefined, 8, 11, 15]) {
          await serverCombo(snct, cnct, smwb, cmwb);
        }
      }
    }
  }
  server.proc.removeAllListeners('exit');
  const rc = await new Promise((resolve) => {
    server.proc.on('exit', (code) => resolve(code));
    server.proc.kill('SIGTERM');
  });
  check('echo-server exits 0 on SIGTERM', rc === 0, `status ${rc}`);
  try {
    await paramsSections();
  } catch (e) {
    check('flags sections', false, e.message);
  }
  finish();
})();
