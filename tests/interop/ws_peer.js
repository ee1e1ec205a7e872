#!/usr/bin/env node
/*
 * Node's ws (npm, see /package.json) against duplex's programs, both directions.
 *
 *   node tests/interop/ws_peer.js BUILD_DIR
 *
 * 1. ws as CLIENT of BUILD/bin/echo-server: text and binary echoes from 0 bytes to
 *    16 MiB (type kept), multi-byte UTF-8, fragmented messages (send(..., {fin:false}),
 *    a character split across fragments, a ping between fragments), pings both ways
 *    (echo-server --commands "!ping", seen through ws's 'ping' event), every valid
 *    close code both ways ("!close CODE REASON"), subprotocol choice, refusals (401
 *    from --require-auth, 403 from --origin, seen through 'unexpected-response'),
 *    graceful shutdown on SIGTERM (1001, exit 0).
 * 2. ws as SERVER for BUILD/bin/echo-client: the same messages echoed back, the
 *    server's pings, every valid close code from the server (echo-client exits 0 and
 *    prints "close code=N clean=1"), echo-client's own close, subprotocol choice,
 *    request headers, refused handshakes (exit 2, "HTTP 401").
 *
 * A missing node_modules/ws is a failure, not a skip (CI installs it). Every process
 * started here is killed by PID at the end; every wait has a timeout. Prints one line
 * per check and, last, "ws_peer: N passed, M failed"; exits 1 on any failure.
 */
'use strict';

const { spawn } = require('child_process');
const crypto = require('crypto');
const path = require('path');

const NAME = 'ws_peer';
const BUILD = process.argv[2] || 'build';
const SERVER_BIN = path.join(BUILD, 'bin', 'echo-server');
const CLIENT_BIN = path.join(BUILD, 'bin', 'echo-client');

const MiB = 1 << 20;
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, MiB, 16 * MiB];
// 1012-1014 were registered with IANA after RFC 6455; ws and duplex accept them.
const VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
  3000, 4999];

let passed = 0;
let failed = 0;
const children = []; // every process we started, killed in the end by PID

function check(name, cond, detail = '') {
  if (cond) {
    passed++;
    console.log(`ok   ${NAME} ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${NAME} ${name} ${detail}`);
  }
  return cond;
}

function finishRun() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch (e) {
        /* already gone */
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
  check('ws_module_installed', false,
    `${e.message.split('\n')[0]} (run npm ci --no-audit --no-fund at the repo root)`);
  finishRun();
}

/* A Buffer of exactly n bytes of valid UTF-8, mixing 1- to 4-byte characters. */
function textOf(n) {
  const unit = Buffer.from('a\u00e9\u20ac\u{1F600}'); // 1 + 2 + 3 + 4 bytes
  const b = Buffer.alloc(n, 'x');
  for (let i = 0; i + 10 <= n; i += 10) unit.copy(b, i);
  return b;
}

function short(v) {
  if (Buffer.isBuffer(v)) return `Buffer[${v.length}]`;
  return String(v).slice(0, 80);
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/* Queues of messages and control frames on a ws, and a promise for its close. */
function instrument(ws) {
  ws.messages = [];
  ws.waiters = [];
  ws.control = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (ws.waiters.length) ws.waiters.shift()(m);
    else ws.messages.push(m);
  });
  ws.on('ping', (d) => ws.control.push(['ping', d.toString('latin1')]));
  ws.on('pong', (d) => ws.control.push(['pong', d.toString('latin1')]));
  ws.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.next = (ms = 30000) =>
    withTimeout(
      ws.messages.length
        ? Promise.resolve(ws.messages.shift())
        : new Promise((resolve) => ws.waiters.push(resolve)),
      ms,
      'message',
    );
  return ws;
}

async function echoOne(ws, data, binary) {
  ws.send(data, { binary });
  return ws.next();
}

function sameMessage(got, data, binary) {
  return got.isBinary === binary && Buffer.compare(got.data, data) === 0;
}

/* ---- echo-server processes ------------------------------------------------------------- */

class EchoServer {
  static async start(...args) {
    const s = new EchoServer();
    s.proc = spawn(SERVER_BIN, ['--host', '127.0.0.1', '--port', '0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(s.proc);
    s.err = '';
    s.proc.stderr.on('data', (d) => {
      s.err += d.toString();
    });
    s.exited = new Promise((resolve) => s.proc.on('exit', (code, sig) => resolve(code ?? sig)));
    const line = await withTimeout(
      new Promise((resolve, reject) => {
        let out = '';
        s.proc.stdout.on('data', (d) => {
          out += d.toString();
          const nl = out.indexOf('\n');
          if (nl >= 0) resolve(out.slice(0, nl));
        });
        s.proc.on('error', reject);
        s.proc.on('exit', () => reject(new Error(`echo-server exited: ${s.err}`)));
      }),
      10000,
      'listening line',
    );
    const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line);
    if (!m) throw new Error(`echo-server printed ${JSON.stringify(line)}`);
    s.url = `ws://127.0.0.1:${m[1]}`;
    return s;
  }

  /* SIGTERM, then it must exit 0 (LeakSanitizer makes a leak a failing exit). */
  async stop(name) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    let rc;
    try {
      rc = await withTimeout(this.exited, 10000, 'echo-server exit');
    } catch (e) {
      rc = 'timeout';
    }
    check(`${name}/server_exit_0`, rc === 0, `rc=${rc} stderr=${this.err.slice(-3000)}`);
  }
}

function connect(url, protocols, opts = {}) {
  const ws = new WebSocket(url, protocols, { maxPayload: 64 * MiB, closeTimeout: 5000, ...opts });
  instrument(ws);
  return withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => {
        res.resume();
        req.destroy();
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
      });
    }),
    10000,
    `open ${url}`,
  );
}

/* ---- 1. ws as client of echo-server ------------------------------------------------------ */

async function clientMessages(url) {
  const p = 'echo-server';
  const ws = await connect(`${url}/any/path?q=1`);
  // ws offers permessage-deflate by default; echo-server accepts it, so everything
  // below also crosses the wire compressed (RFC 7692).
  check(`${p}/deflate_agreed`, ws.extensions.startsWith('permessage-deflate'),
    JSON.stringify(ws.extensions));
  for (const n of SIZES) {
    for (const [kind, data, binary] of [
      ['text', textOf(n), false],
      ['binary', crypto.randomBytes(n), true],
    ]) {
      const got = await echoOne(ws, data, binary);
      check(`${p}/${kind}_${n}`, sameMessage(got, data, binary),
        `sent ${short(data)} got ${short(got.data)} binary=${got.isBinary}`);
    }
  }
  const text = Buffer.from('\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff} h\u00e9llo \u4e16\u754c ' +
    '\u{1F600} \u0627\u0644\u0639\u0631\u0628\u064a\u0629');
  check(`${p}/text_utf8_multibyte`, sameMessage(await echoOne(ws, text, false), text, false));

  // Fragmented messages: send(data, {fin: false}) ... send(data, {fin: true}).
  ws.send('frag', { fin: false });
  ws.send('', { fin: false });
  ws.send('ment', { fin: false });
  ws.send('ed \u00e9', { fin: true });
  let got = await ws.next();
  check(`${p}/fragmented_text`, sameMessage(got, Buffer.from('fragmented \u00e9'), false),
    short(got.data));
  const parts = [];
  for (let i = 0; i < 16; i++) parts.push(crypto.randomBytes(65536));
  parts.forEach((b, i) => ws.send(b, { binary: true, fin: i === 15 }));
  got = await ws.next();
  check(`${p}/fragmented_1MiB_in_16`, sameMessage(got, Buffer.concat(parts), true),
    short(got.data));
  const small = [];
  for (let i = 0; i < 512; i++) small.push(Buffer.from([i & 255]));
  small.forEach((b, i) => ws.send(b, { binary: true, fin: i === 511 }));
  got = await ws.next();
  check(`${p}/fragmented_512_frames`, sameMessage(got, Buffer.concat(small), true),
    short(got.data));
  // A 4-byte character split across three fragments, a ping between them.
  ws.control.length = 0;
  ws.send(Buffer.from([0x61, 0xf0, 0x9f]), { binary: false, fin: false });
  ws.ping('between');
  ws.send(Buffer.from([0x98]), { fin: false });
  ws.send(Buffer.from([0x80, 0x62]), { fin: true });
  got = await ws.next();
  check(`${p}/fragmented_char_split_with_ping`,
    sameMessage(got, Buffer.from('a\u{1F600}b'), false), short(got.data));
  check(`${p}/pong_between_fragments`,
    JSON.stringify(ws.control) === JSON.stringify([['pong', 'between']]),
    JSON.stringify(ws.control));

  // Our pings, answered with the same payload.
  for (const data of ['payload-123', '', Buffer.alloc(125, 0xab).toString('latin1')]) {
    ws.control.length = 0;
    ws.ping(Buffer.from(data, 'latin1'));
    await withTimeout(new Promise((resolve) => ws.once('pong', resolve)), 10000, 'pong');
    check(`${p}/ping_pong_${data.length}`,
      JSON.stringify(ws.control) === JSON.stringify([['pong', data]]),
      JSON.stringify(ws.control));
  }

  // The server's pings: "!ping PAYLOAD" (echo-server --commands), seen by 'ping'.
  for (const payload of ['hello-from-server', '']) {
    ws.control.length = 0;
    ws.send(`!ping ${payload}`.trimEnd());
    got = await echoOne(ws, 'sync', false); // the ping precedes this echo on the wire
    check(`${p}/server_ping_${payload || 'empty'}`,
      got.data.toString() === 'sync' &&
        JSON.stringify(ws.control) === JSON.stringify([['ping', payload]]),
      `${short(got.data)} ${JSON.stringify(ws.control)}`);
  }

  // A code dx_conn_close refuses (not valid on the wire): the connection stays open.
  ws.send('!close 1005 nope');
  got = await echoOne(ws, 'still open', false);
  check(`${p}/server_close_1005_refused`, got.data.toString() === 'still open',
    short(got.data));
  ws.close(1000);
  const c = await withTimeout(ws.closed, 10000, 'close');
  check(`${p}/close_1000_after_messages`, c.code === 1000, JSON.stringify(c));
}

async function clientCloseCodes(url) {
  const p = 'echo-server';
  for (const code of VALID_CODES) {
    // The peer closes: the server's answer echoes the code (§5.5.1).
    let ws = await connect(url);
    await echoOne(ws, 'hi', false);
    const t0 = Date.now();
    ws.close(code, `peer says ${code}`);
    let c = await withTimeout(ws.closed, 10000, 'close');
    const took = (Date.now() - t0) / 1000;
    // 'close' comes when the server closed TCP; one that kept it open would make ws
    // wait for its closeTimeout (5 s).
    check(`${p}/peer_close_${code}_echoed`, c.code === code && c.reason === '' && took < 3,
      `${JSON.stringify(c)} took=${took}s`);

    // The server closes: "!close CODE REASON".
    ws = await connect(url);
    ws.send(`!close ${code} server says ${code}`);
    c = await withTimeout(ws.closed, 10000, 'close');
    check(`${p}/server_close_${code}`, c.code === code && c.reason === `server says ${code}`,
      JSON.stringify(c));
  }
}

async function clientSubprotocols(url, anyUrl) {
  const p = 'echo-server';
  // echo-server --protocol chat --protocol superchat: the client's order wins.
  for (const [offer, want] of [
    [['superchat', 'chat'], 'superchat'],
    [['chat', 'superchat'], 'chat'],
    [['other', 'chat'], 'chat'],
    [undefined, ''],
  ]) {
    const ws = await connect(url, offer);
    const got = await echoOne(ws, 'p', false);
    check(`${p}/subprotocol_${(offer || ['none']).join('_')}`,
      ws.protocol === want && got.data.toString() === 'p', JSON.stringify(ws.protocol));
    ws.close();
    await withTimeout(ws.closed, 10000, 'close');
  }
  // None in common: echo-server refuses with 400 (a 101 naming none fails in
  // browsers, and in ws).
  try {
    const ws = await connect(url, ['other']);
    check(`${p}/subprotocol_other_refused_400`, false, `opened with ${JSON.stringify(ws.protocol)}`);
    ws.terminate();
  } catch (e) {
    check(`${p}/subprotocol_other_refused_400`, /\b400\b/.test(e.message),
      e.message);
  }
  // Without --protocol, an echo speaks whatever the client speaks: its first offer.
  for (const offer of [['x-first', 'x-second'], ['only']]) {
    const ws = await connect(anyUrl, offer);
    const got = await echoOne(ws, 'q', false);
    check(`${p}/no_protocol_flag_takes_first_${offer[0]}`,
      ws.protocol === offer[0] && got.data.toString() === 'q', JSON.stringify(ws.protocol));
    ws.close();
    await withTimeout(ws.closed, 10000, 'close');
  }
}

async function expectRefused(name, url, status, opts) {
  try {
    const ws = await connect(url, undefined, opts);
    check(name, false, `opened (protocol ${ws.protocol})`);
    ws.terminate();
  } catch (e) {
    check(name, e.statusCode === status, e.message);
  }
}

async function expectOpens(name, url, opts) {
  const ws = await connect(url, undefined, opts);
  const got = await echoOne(ws, 'in', false);
  check(name, got.data.toString() === 'in');
  ws.close();
  await withTimeout(ws.closed, 10000, 'close');
}

async function clientRefusals(authUrl, originUrl) {
  const p = 'echo-server';
  await expectRefused(`${p}/auth_missing_401`, authUrl, 401, {});
  await expectRefused(`${p}/auth_wrong_401`, authUrl, 401,
    { headers: { Authorization: 'Bearer WRONG' } });
  await expectOpens(`${p}/auth_bearer_opens`, authUrl,
    { headers: { Authorization: 'Bearer TOKEN' } });
  await expectRefused(`${p}/origin_evil_403`, originUrl, 403, { origin: 'http://evil' });
  await expectOpens(`${p}/origin_good_opens`, originUrl, { origin: 'http://good' });
  await expectOpens(`${p}/origin_absent_opens`, originUrl, {});
}

async function clientGracefulShutdown(srv) {
  const p = 'echo-server';
  const a = await connect(srv.url);
  const b = await connect(srv.url);
  await echoOne(a, 'a', false);
  await echoOne(b, 'b', false);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  const [ca, cb] = await withTimeout(Promise.all([a.closed, b.closed]), 10000, 'close');
  check(`${p}/sigterm_peers_see_1001`, ca.code === 1001 && cb.code === 1001,
    `${JSON.stringify(ca)} ${JSON.stringify(cb)}`);
  const rc = await withTimeout(srv.exited, 10000, 'echo-server exit');
  const took = (Date.now() - t0) / 1000;
  // Both peers answered at once, so the shutdown must not wait its 5 s bound.
  check(`${p}/sigterm_exit_0_promptly`, rc === 0 && took < 3,
    `rc=${rc} took=${took}s ${srv.err.slice(-2000)}`);
}

/* ---- 2. ws as server for echo-client ------------------------------------------------------ */

class PeerServer {
  constructor() {
    this.results = {}; // path -> [name, ok, detail]
    this.done = {}; // path -> { promise, resolve }
    this.requests = {}; // path -> request headers
  }

  async start() {
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      maxPayload: 64 * MiB,
      handleProtocols: (set) => (set.has('b') ? 'b' : false),
      verifyClient: (info, cb) => {
        this.requests[info.req.url] = info.req.headers;
        const m = /^\/refuse\/(\d+)$/.exec(info.req.url);
        if (m) cb(false, Number(m[1]), 'refused', { 'Content-Type': 'text/plain' });
        else cb(true);
      },
    });
    this.wss.on('connection', (ws, req) => this.handle(instrument(ws), req.url));
    await withTimeout(new Promise((resolve) => this.wss.once('listening', resolve)), 5000,
      'ws server listening');
    this.base = `ws://127.0.0.1:${this.wss.address().port}`;
  }

  expect(path) {
    this.results[path] = [];
    let resolve;
    const promise = new Promise((r) => {
      resolve = r;
    });
    this.done[path] = { promise, resolve };
  }

  note(path, name, ok, detail = '') {
    this.results[path].push([name, ok, detail]);
  }

  async handle(ws, path) {
    try {
      if (path === '/echo') {
        await this.echo(ws, path);
      } else if (path.startsWith('/close/')) {
        const code = Number(path.slice(7));
        ws.close(code, `bye ${code}`);
      } else if (path === '/client-close') {
        const got = await echoOne(ws, 'one', false);
        const c = await withTimeout(ws.closed, 10000, 'close');
        this.note(path, 'client_close_1000', got.data.toString() === 'one' && c.code === 1000,
          JSON.stringify(c));
      } else if (path === '/protocol') {
        this.note(path, 'server_side_subprotocol_b', ws.protocol === 'b', ws.protocol);
        ws.close(1000);
      } else if (path === '/no-protocol') {
        this.note(path, 'server_side_no_subprotocol', ws.protocol === '', ws.protocol);
        ws.close(1000);
      } else {
        ws.close(1011, 'unknown scenario');
      }
    } catch (e) {
      if (this.results[path]) this.note(path, 'handler_no_exception', false, e.message);
    } finally {
      if (this.done[path]) this.done[path].resolve();
    }
  }

  async echo(ws, path) {
    for (const n of SIZES) {
      for (const [kind, data, binary] of [
        ['text', textOf(n), false],
        ['binary', crypto.randomBytes(n), true],
      ]) {
        const got = await echoOne(ws, data, binary);
        this.note(path, `${kind}_${n}`, sameMessage(got, data, binary),
          `sent ${short(data)} got ${short(got.data)} binary=${got.isBinary}`);
      }
    }
    const text = Buffer.from('\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff} \u4e16\u754c \u{1F600}');
    this.note(path, 'text_utf8_multibyte', sameMessage(await echoOne(ws, text, false), text, false));
    ws.send('frag', { fin: false });
    ws.send('', { fin: false });
    ws.send('ment', { fin: false });
    ws.send('ed \u00e9', { fin: true });
    let got = await ws.next();
    this.note(path, 'fragmented_text', sameMessage(got, Buffer.from('fragmented \u00e9'), false),
      short(got.data));
    const parts = [];
    for (let i = 0; i < 16; i++) parts.push(crypto.randomBytes(65536));
    parts.forEach((b, i) => ws.send(b, { binary: true, fin: i === 15 }));
    got = await ws.next();
    this.note(path, 'fragmented_1MiB_in_16', sameMessage(got, Buffer.concat(parts), true),
      short(got.data));
    ws.control.length = 0;
    ws.send(Buffer.from([0x61, 0xf0, 0x9f]), { binary: false, fin: false });
    ws.ping('between');
    ws.send(Buffer.from([0x98]), { fin: false });
    ws.send(Buffer.from([0x80, 0x62]), { fin: true });
    got = await ws.next();
    this.note(path, 'fragmented_char_split_with_ping',
      sameMessage(got, Buffer.from('a\u{1F600}b'), false), short(got.data));
    this.note(path, 'pong_between_fragments',
      JSON.stringify(ws.control) === JSON.stringify([['pong', 'between']]),
      JSON.stringify(ws.control));
    for (const data of ['srv-ping', '', Buffer.alloc(125, 0xcd).toString('latin1')]) {
      ws.control.length = 0;
      ws.ping(Buffer.from(data, 'latin1'));
      await withTimeout(new Promise((resolve) => ws.once('pong', resolve)), 10000, 'pong');
      this.note(path, `ping_pong_${data.length}`,
        JSON.stringify(ws.control) === JSON.stringify([['pong', data]]),
        JSON.stringify(ws.control));
    }
    ws.close(1000, 'done');
    const c = await withTimeout(ws.closed, 10000, 'close');
    this.note(path, 'close_1000_answered', c.code === 1000, JSON.stringify(c));
  }
}

function runClient(url, args = [], ms = 30000) {
  const proc = spawn(CLIENT_BIN, [url, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(proc);
  let err = '';
  proc.stderr.on('data', (d) => {
    err += d.toString();
  });
  const exited = new Promise((resolve, reject) => {
    proc.on('close', (code, sig) => resolve({ rc: code ?? sig, err }));
    proc.on('error', reject);
  });
  return withTimeout(exited, ms, `echo-client ${url}`).finally(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
}

async function clientScenario(peer, path, args = []) {
  peer.expect(path);
  const r = await runClient(peer.base + path, args);
  try {
    await withTimeout(peer.done[path].promise, 5000, 'handler');
  } catch (e) {
    check(`echo-client${path}/handler_finished`, false, `rc=${r.rc} ${r.err.slice(-2000)}`);
  }
  for (const [name, ok, detail] of peer.results[path]) check(`echo-client/${name}`, ok, detail);
  return r;
}

async function serverSide(peer) {
  const p = 'echo-client';
  let r = await clientScenario(peer, '/echo');
  check(`${p}/echo_scenario_clean_exit_0`,
    r.rc === 0 && r.err.includes('close code=1000 clean=1 remote=1 reason=done\n'),
    `rc=${r.rc} ${r.err.slice(-2000)}`);
  check(`${p}/echo_scenario_all_checked`,
    peer.results['/echo'].length === 2 * SIZES.length + 9,
    `${peer.results['/echo'].length} results`);

  for (const code of VALID_CODES) {
    r = await clientScenario(peer, `/close/${code}`);
    check(`${p}/peer_close_${code}`,
      r.rc === 0 && r.err.includes(`close code=${code} clean=1 remote=1 reason=bye ${code}\n`),
      `rc=${r.rc} ${r.err.slice(-2000)}`);
  }

  r = await clientScenario(peer, '/client-close', ['--close-after', '1']);
  check(`${p}/own_close_clean_exit_0`,
    r.rc === 0 && r.err.includes('close code=1000 clean=1 remote=0'),
    `rc=${r.rc} ${r.err.slice(-2000)}`);

  r = await clientScenario(peer, '/protocol', ['--protocol', 'a', '--protocol', 'b',
    '--header', 'Authorization: Bearer T0K', '--origin', 'http://here']);
  check(`${p}/subprotocol_b`, r.rc === 0 && r.err.includes('open protocol=b extensions='),
    `rc=${r.rc} ${r.err.slice(-2000)}`);
  const h = peer.requests['/protocol'] || {};
  check(`${p}/offered_a_b`, (h['sec-websocket-protocol'] || '').replace(/ /g, '') === 'a,b',
    h['sec-websocket-protocol']);
  check(`${p}/sent_header_and_origin`,
    h.authorization === 'Bearer T0K' && h.origin === 'http://here', JSON.stringify(h));

  r = await clientScenario(peer, '/no-protocol');
  check(`${p}/no_subprotocol`, r.rc === 0 && r.err.includes('open protocol= extensions='),
    `rc=${r.rc} ${r.err.slice(-500)}`);

  // ws (handleProtocols: 'b' or nothing) answers an offer of "zzz" with a 101 naming
  // none: the browser's rule fails the handshake; --protocol-optional takes the RFC's.
  r = await runClient(`${peer.base}/no-protocol`, ['--protocol', 'zzz']);
  check(`${p}/offered_zzz_answer_without_protocol_fails_exit_2`,
    r.rc === 2 && r.err.includes('no subprotocol in common') && !r.err.includes('open protocol'),
    `rc=${r.rc} ${r.err.slice(-2000)}`);
  r = await clientScenario(peer, '/no-protocol', ['--protocol', 'zzz', '--protocol-optional']);
  check(`${p}/offered_zzz_protocol_optional_opens`,
    r.rc === 0 && r.err.includes('open protocol= extensions='), `rc=${r.rc} ${r.err.slice(-2000)}`);

  for (const status of [401, 403]) {
    r = await runClient(`${peer.base}/refuse/${status}`);
    check(`${p}/refused_${status}_exit_2`, r.rc === 2 && r.err.includes(`HTTP ${status}`),
      `rc=${r.rc} ${r.err.slice(-2000)}`);
    check(`${p}/refused_${status}_never_opened`, !r.err.includes('open protocol'), r.err);
  }
}

/* ---- main ---------------------------------------------------------------------------------- */

async function section(name, fn, ms) {
  try {
    await withTimeout(fn(), ms, name);
  } catch (e) {
    check(`${name}/no_exception`, false, e.stack || String(e));
  }
}

async function main() {
  const servers = [];
  let peer;
  try {
    const mainSrv = await EchoServer.start('--commands', '--protocol', 'chat', '--protocol',
      'superchat');
    servers.push(['main', mainSrv]);
    const authSrv = await EchoServer.start('--require-auth', 'TOKEN');
    servers.push(['auth', authSrv]);
    const originSrv = await EchoServer.start('--origin', 'http://good');
    servers.push(['origin', originSrv]);
    const downSrv = await EchoServer.start();
    const anySrv = await EchoServer.start();
    servers.push(['any', anySrv]);

    await section('echo-server/messages', () => clientMessages(mainSrv.url), 40000);
    await section('echo-server/close', () => clientCloseCodes(mainSrv.url), 30000);
    await section('echo-server/subprotocols', () => clientSubprotocols(mainSrv.url, anySrv.url), 10000);
    await section('echo-server/refusals', () => clientRefusals(authSrv.url, originSrv.url),
      10000);
    await section('echo-server/shutdown', () => clientGracefulShutdown(downSrv), 15000);

    peer = new PeerServer();
    await peer.start();
    await section('echo-client', () => serverSide(peer), 60000);
  } catch (e) {
    check('no_exception', false, e.stack || String(e));
  } finally {
    for (const [name, srv] of servers) await srv.stop(name);
    if (peer && peer.wss) {
      for (const c of peer.wss.clients) c.terminate();
      peer.wss.close();
    }
  }
}

const t0 = Date.now();
const hardStop = setTimeout(() => {
  check('finished_in_time', false, 'the whole run passed 110 s');
  finishRun();
}, 110000);
main().then(() => {
  clearTimeout(hardStop);
  console.log(`${NAME}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  finishRun();
});
