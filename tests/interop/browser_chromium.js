#!/usr/bin/env node
/*
 * A real browser against duplex: Debian's Chromium (/usr/bin/chromium), driven headless by
 * playwright-core (npm, node_modules/), opens WebSockets to BUILD/bin/echo-server from a
 * page with a real origin (a tiny HTML page served by a Node http server on 127.0.0.1).
 *
 *   node browser_chromium.js BUILD_DIR
 *
 * Everything a message carries is made and compared inside the page (a seeded generator,
 * byte for byte), so 16 MiB never crosses the DevTools protocol. Checks:
 *
 * 1. open: readyState CONNECTING at construction, OPEN at open; ws.extensions is exactly
 *    the answer echo-server gives to Chrome's offer ("permessage-deflate;
 *    client_max_window_bits"); subprotocols: server a,b, page ['b','c'] -> 'b'; page
 *    ['c'] -> echo-server refuses with 400 (seen on a relay), the page gets error, 1006;
 *    echo-server without --protocol answers a page's ['x','y'] with 'x'; a server (Node
 *    ws) answering a page's offer with a 101 that names none: Chrome fails it (1006),
 *    the rule duplex's client follows by default.
 * 2. echoes with permessage-deflate and with echo-server --no-deflate (extensions ''):
 *    texts of 1-, 2-, 3- and 4-byte UTF-8 characters from 0 B to 1 MiB, ArrayBuffers of
 *    0, 125, 126, 65535, 65536 B, 1 MiB and 16 MiB - 1, a Blob; 1000 messages sent in one
 *    go come back in order; bufferedAmount is above 0 right after a large send and 0 once
 *    everything came back.
 * 3. on the wire (a counting TCP relay between browser and server): 1 MiB of repetitive
 *    text takes under 64 KiB each way with deflate, and at least 1 MiB without.
 * 4. closing: page close(1000) and close(4000, 'reason') -> the server's echoed code,
 *    wasClean; "!close 4001 bye" and "!close 1011" from the server; close(1005) throws
 *    InvalidAccessError in the page (the browser's rule, not ours); "!ping" is answered
 *    by the browser and the connection stays usable; SIGTERM to echo-server closes the
 *    pages still open with 1001.
 * 5. limits: echo-server --max-message 65536: 65536 B echo, 65537 B -> close 1009; 1 MiB
 *    of one letter (about 1 KiB compressed on the wire) -> 1009 too (inflation bounded).
 * 6. Origin: --origin http://127.0.0.1:PAGEPORT admits the page; another allowed origin
 *    refuses it (403): error event, close 1006, never open.
 * 7. "!broadcast TEXT" from one of three pages reaches all three (compressed once,
 *    dx_server_broadcast), and each page's next echo, which repeats what it echoed before
 *    the broadcast (so a compressor that forgot the broadcast would point at the wrong
 *    history), comes back exact.
 * 8. permessage-deflate windows: echo-server --deflate-server-window 8
 *    --deflate-client-window 9 (Chrome must compress within 512 B) and --deflate-client-window
 *    10 --deflate-client-no-context-takeover: the exact answer, echoes of 100 KiB texts
 *    with repeats at long distances.
 * 9. wss://: certificates made by tests/certs/make-certs.sh in a temporary directory; a
 *    second Chromium trusts exactly the server's key (--ignore-certificate-errors-spki-list,
 *    see below) and echoes with permessage-deflate, 1 MiB, closes cleanly; the first
 *    Chromium, without that flag, refuses the same server (it really verifies).
 *
 * DX_BROWSER_NODEFLATE=1 starts every echo-server with --no-deflate (a mutation run: the
 * deflate checks must then fail).
 * Every wait is bounded; every process started here is stopped by its PID (playwright
 * launches Chromium and closes it; the whole run is capped at 90 s).
 * Last line: "browser_chromium: N passed, M failed".
 */
'use strict';
const echoServer = require('./lib/echo_server');
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const NAME = 'browser_chromium';
const BUILD = process.argv[2] || 'build';
const SERVER_BIN = path.join(BUILD, 'bin', 'echo-server');
const MAKE_CERTS = path.join(__dirname, '..', 'certs', 'make-certs.sh');
const CHROMIUM = '/usr/bin/chromium';
const NODEFLATE = process.env.DX_BROWSER_NODEFLATE ? ['--no-deflate'] : [];
const MiB = 1 << 20;
/* echo-server's answer to Chrome's offer "permessage-deflate; client_max_window_bits":
   our window (11 by default) is stated because it is below 15; the client's is not
   restricted (15), so it is not stated (include/duplex/deflate.h, dx_deflate_accept). */
const CHROME_ANSWER = 'permessage-deflate; server_max_window_bits=11';

let passed = 0;
let failed = 0;
const procs = [];
const browsers = [];
const closers = [];
let certDir = null;
let finished = false;

function check(name, cond, detail) {
  if (cond) {
    passed++;
    console.log(`ok   ${NAME} ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${NAME} ${name}${detail ? ': ' + detail : ''}`);
  }
}

async function finish() {
  if (finished) return;
  finished = true;
  for (const b of browsers) {
    /* playwright kills the Chromium process it launched if close() hangs */
    await within(b.close().catch(() => {}), 5000, null);
  }
  for (const c of closers) c();
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

/* Resolve with the first of @p and a value @v after @ms. */
function within(p, ms, v) {
  let t;
  return Promise.race([p, new Promise((resolve) => {
    t = setTimeout(() => resolve(v), ms);
  })]).finally(() => clearTimeout(t));
}

let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  check('playwright_core_installed', false, e.message.split('\n')[0]);
  finish();
}

setTimeout(() => {
  check('whole run within 90 s', false, 'timed out');
  finish();
}, 90000).unref();

/* ---- processes and relays ------------------------------------------------------------------ */

/* echo-server on 127.0.0.1, a free port; resolves {proc, port}. */
function startServer(args) {
  return echoServer.startServer(SERVER_BIN, args, procs);
}

const stopServer = echoServer.stopServer;

/* A TCP relay 127.0.0.1:port -> 127.0.0.1:@target that counts the bytes of each
   connection: conns[i] = {up, down} (up: browser to server). Resolves {port, conns}. */
function startRelay(target) {
  return new Promise((resolve) => {
    const relay = { port: 0, conns: [], sockets: [] };
    const srv = net.createServer((a) => {
      const c = { up: 0, down: 0 };
      relay.conns.push(c);
      const b = net.connect(target, '127.0.0.1');
      relay.sockets.push(a, b);
      a.on('data', (d) => {
        c.up += d.length;
      });
      b.on('data', (d) => {
        if (c.down === 0) c.status = d.toString('latin1').split('\r\n')[0]; /* the status line */
        c.down += d.length;
      });
      a.pipe(b);
      b.pipe(a);
      a.on('error', () => b.destroy());
      b.on('error', () => a.destroy());
      a.on('close', () => b.end());
      b.on('close', () => a.end());
    });
    relay.close = () => {
      for (const s of relay.sockets) s.destroy();
      srv.close();
    };
    closers.push(relay.close);
    srv.listen(0, '127.0.0.1', () => {
      relay.port = srv.address().port;
      resolve(relay);
    });
  });
}

/* ---- the page ------------------------------------------------------------------------------ */

/*
 * Runs in the page (serialised into its <script>): window.T, the helpers every check
 * drives through page.evaluate. Sockets live in T.socks by name; every wait is bounded.
 */
function pageHelpers() {
  const within = (p, ms, v) => {
    let t;
    return Promise.race([p, new Promise((resolve) => {
      t = setTimeout(() => resolve(v), ms);
    })]).finally(() => clearTimeout(t));
  };

  /* xorshift32 bytes: the same (n, seed) gives the same bytes */
  function bytes(n, seed) {
    const words = new Uint32Array(Math.ceil(n / 4) + 1);
    let x = (seed * 2654435761) >>> 0 || 1;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      words[i] = x;
    }
    return new Uint8Array(words.buffer, 0, n);
  }

  /* A text of exactly @n UTF-8 bytes drawing 1-, 2-, 3- and 4-byte characters. */
  const ALPHABET = ['a', 'Z', ' ', '\u00e9', '\u00fc', '\u20ac', '\u4e16', '\ud83d\ude00',
    '\ud834\udd1e'];
  function text(n, seed) {
    const r = bytes(Math.max(n, 4), seed);
    const parts = [];
    let len = 0;
    for (let i = 0; len < n; i++) {
      let ch = ALPHABET[r[i % r.length] % ALPHABET.length];
      const size = new TextEncoder().encode(ch).length;
      if (len + size > n) ch = 'a';
      parts.push(ch);
      len += ch === 'a' ? 1 : size;
    }
    return parts.join('');
  }

  /* @n bytes of hex digits (no long repeats, compressible only to about half) */
  function hex(n, seed) {
    const r = bytes(n, seed);
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[r[i] & 15];
    return s;
  }

  function make(spec) {
    if (spec.kind === 'text') return text(spec.n, spec.seed);
    if (spec.kind === 'hex') return hex(spec.n, spec.seed);
    if (spec.kind === 'repeat') return spec.unit.repeat(Math.ceil(spec.n / spec.unit.length))
      .slice(0, spec.n);
    if (spec.kind === 'blob') return new Blob([bytes(spec.n, spec.seed)]);
    return bytes(spec.n, spec.seed).slice().buffer; /* 'bin': an ArrayBuffer */
  }

  async function same(spec, sent, got) {
    if (spec.kind === 'blob') {
      if (!(got instanceof Blob)) return `got ${Object.prototype.toString.call(got)}, want Blob`;
      got = await got.arrayBuffer();
      sent = await sent.arrayBuffer();
    }
    if (typeof sent === 'string') {
      if (typeof got !== 'string') return 'got binary, want text';
      if (got.length !== sent.length) return `text of ${got.length} units, want ${sent.length}`;
      return got === sent ? null : 'text differs';
    }
    if (!(got instanceof ArrayBuffer)) return 'got text, want binary';
    if (got.byteLength !== sent.byteLength) {
      return `${got.byteLength} bytes, want ${sent.byteLength}`;
    }
    const a = new Uint8Array(sent);
    const b = new Uint8Array(got);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `byte ${i} differs`;
    return null;
  }

  const socks = {};

  /* Open socket @name; resolves a summary once open, closed or after @ms. */
  async function open(name, url, protocols, ms = 5000) {
    const ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
    const s = { ws, inbox: [], waiters: [], events: [], close: null, stateAtCreate: ws.readyState };
    socks[name] = s;
    ws.binaryType = 'arraybuffer';
    s.closed = new Promise((resolve) => {
      ws.addEventListener('close', (e) => {
        s.events.push('close');
        s.close = { code: e.code, reason: e.reason, wasClean: e.wasClean };
        for (const w of s.waiters.splice(0)) w(null);
        resolve(s.close);
      });
    });
    ws.addEventListener('error', () => s.events.push('error'));
    ws.addEventListener('message', (e) => {
      if (s.waiters.length) s.waiters.shift()(e.data);
      else s.inbox.push(e.data);
    });
    const opened = new Promise((resolve) => {
      ws.addEventListener('open', () => {
        s.events.push('open');
        s.stateAtOpen = ws.readyState;
        resolve(true);
      });
      s.closed.then(() => resolve(false));
    });
    const ok = await within(opened, ms, false);
    return {
      opened: ok, stateAtCreate: s.stateAtCreate, stateAtOpen: s.stateAtOpen,
      extensions: ws.extensions, protocol: ws.protocol, events: s.events.slice(),
      close: s.close,
    };
  }

  /* The next message of @name (null on close or after @ms). */
  function next(name, ms) {
    const s = socks[name];
    if (s.inbox.length) return Promise.resolve(s.inbox.shift());
    if (s.close) return Promise.resolve(null);
    let w;
    const p = new Promise((resolve) => {
      w = resolve;
      s.waiters.push(w);
    });
    return within(p, ms, null).finally(() => {
      const i = s.waiters.indexOf(w);
      if (i >= 0) s.waiters.splice(i, 1);
    });
  }

  /* Echo each of @specs in turn (send, wait for it back); resolves {ok, why, ms}. */
  async function echo(name, specs, ms = 20000) {
    const t0 = performance.now();
    const ws = socks[name].ws;
    for (let i = 0; i < specs.length; i++) {
      const left = ms - (performance.now() - t0);
      const data = make(specs[i]);
      if (specs[i].kind === 'blob') ws.binaryType = 'blob';
      ws.send(data);
      const got = await next(name, Math.max(left, 1));
      ws.binaryType = 'arraybuffer';
      if (got === null) {
        return { ok: false, why: `message ${i} (${JSON.stringify(specs[i])}): no echo`,
          close: socks[name].close };
      }
      const why = await same(specs[i], data, got);
      if (why) return { ok: false, why: `message ${i} (${specs[i].kind} ${specs[i].n}): ${why}` };
    }
    return { ok: true, ms: Math.round(performance.now() - t0) };
  }

  /* Send @count messages without waiting, then check they all come back in order, and
     bufferedAmount: above 0 right after a 4 MiB send, 0 at the end. */
  async function burst(name, count, ms = 20000) {
    const ws = socks[name].ws;
    const specs = [];
    const sent = [];
    for (let i = 0; i < count; i++) {
      const spec = i % 3 === 2 ? { kind: 'bin', n: (i * 37) % 3000, seed: i }
        : { kind: 'text', n: (i * 53) % 2000, seed: i };
      specs.push(spec);
      sent.push(make(spec));
    }
    specs.push({ kind: 'bin', n: 4 * 1048576, seed: 99 });
    sent.push(make(specs[count]));
    for (const d of sent) ws.send(d);
    const bufferedAfterSend = ws.bufferedAmount;
    const t0 = performance.now();
    for (let i = 0; i < sent.length; i++) {
      const got = await next(name, Math.max(ms - (performance.now() - t0), 1));
      if (got === null) return { ok: false, why: `message ${i}: none`, bufferedAfterSend };
      const why = await same(specs[i], sent[i], got);
      if (why) return { ok: false, why: `message ${i}: ${why}`, bufferedAfterSend };
    }
    return { ok: true, bufferedAfterSend, bufferedAtEnd: ws.bufferedAmount };
  }

  /* Call ws.close(...args) (undefined args omitted); resolves {state, threw, close}. */
  async function close(name, args, ms = 5000) {
    const s = socks[name];
    let threw = null;
    try {
      s.ws.close(...args);
    } catch (e) {
      threw = { name: e.name, message: e.message };
    }
    const state = s.ws.readyState;
    if (threw) return { state, threw, close: null };
    const c = await within(s.closed, ms, null);
    return { state, threw, close: c, stateAtEnd: s.ws.readyState };
  }

  /* Send a command text; wait for the close (resolves the close event or null). */
  async function commandClose(name, cmd, ms = 5000) {
    socks[name].ws.send(cmd);
    return within(socks[name].closed, ms, null);
  }

  /* Send @spec; {kind: 'raw', data} sends data, {kind: 'cmd', prefix, spec} sends the
     text prefix + make(spec). */
  function send(name, spec) {
    let data;
    if (spec.kind === 'raw') data = spec.data;
    else if (spec.kind === 'cmd') data = spec.prefix + make(spec.spec);
    else data = make(spec);
    socks[name].ws.send(data);
  }

  async function recv(name, spec, ms = 5000) {
    const got = await next(name, ms);
    if (got === null) return { ok: false, why: 'nothing', close: socks[name].close };
    const why = await same(spec, make(spec), got);
    return { ok: !why, why };
  }

  function waitClose(name, ms = 5000) {
    return within(socks[name].closed, ms, null);
  }

  window.T = { open, echo, burst, close, commandClose, send, recv, waitClose, socks };
}

/* The page's http server: "/" is a tiny HTML page with pageHelpers; resolves {port}. */
function startPageServer() {
  const html = `<!doctype html><meta charset="utf-8"><title>duplex</title>
<script>(${pageHelpers.toString()})();</script><p>duplex browser test</p>`;
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(req.url === '/' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(req.url === '/' ? html : 'not found');
    });
    closers.push(() => {
      srv.close();
      if (srv.closeAllConnections) srv.closeAllConnections();
    });
    srv.listen(0, '127.0.0.1', () => resolve({ port: srv.address().port }));
  });
}

/* page.evaluate(T[fn](...args)), bounded: resolves {timeout: true} after @ms. */
function T(page, fn, args, ms = 30000) {
  return within(page.evaluate(([f, a]) => window.T[f](...a), [fn, args]),
    ms, { timeout: true, why: `${fn} did not return within ${ms} ms` });
}

const j = (v) => JSON.stringify(v);

/* ---- the checks ---------------------------------------------------------------------------- */

const SIZES = [0, 125, 126, 65535, 65536, MiB, 16 * MiB - 1];

function textSpecs(seed) {
  return [0, 1, 2, 3, 4, 125, 126, 4000, 65535, 65536, MiB]
    .map((n, i) => ({ kind: 'text', n, seed: seed + i }));
}

/* Echo checks on one server (deflate or not): @tag names them. */
async function echoChecks(page, url, tag, wantExtensions) {
  const o = await T(page, 'open', [tag, url]);
  check(`${tag}_open_extensions_${j(wantExtensions)}`, o.opened && o.extensions === wantExtensions,
    j(o));
  if (!o.opened) return;
  /* one character of each size alone, then mixed texts */
  const singles = ['\u0041', '\u00e9', '\u20ac', '\ud83d\ude00'];
  const r0 = await T(page, 'echo', [tag, singles.map((c) => ({ kind: 'repeat', unit: c,
    n: c.length }))]);
  check(`${tag}_echo_single_utf8_characters_1_to_4_bytes`, r0.ok, r0.why);
  const r1 = await T(page, 'echo', [tag, textSpecs(10)]);
  check(`${tag}_echo_text_utf8_0B_to_1MiB (11)`, r1.ok, r1.why);
  const r2 = await T(page, 'echo', [tag, SIZES.map((n, i) => ({ kind: 'bin', n, seed: 20 + i }))],
    40000);
  check(`${tag}_echo_arraybuffer_0B_to_16MiB-1 (${SIZES.length}, ${r2.ms} ms)`, r2.ok, r2.why);
  const r3 = await T(page, 'echo', [tag, [{ kind: 'blob', n: 70000, seed: 30 }]]);
  check(`${tag}_echo_blob_70000B`, r3.ok, r3.why);
  const b = await T(page, 'burst', [tag, 1000]);
  check(`${tag}_1000_messages_sent_at_once_echo_in_order`, b.ok, b.why);
  check(`${tag}_bufferedAmount_above_0_after_send_then_0`, b.ok && b.bufferedAfterSend > 0 &&
    b.bufferedAtEnd === 0, j(b));
  const c = await T(page, 'close', [tag, [1000]]);
  check(`${tag}_page_close_1000_clean`, c.state === 2 && c.close && c.close.code === 1000 &&
    c.close.wasClean === true && c.stateAtEnd === 3, j(c));
}

async function mainServerChecks(page, pageOrigin) {
  const s = await startServer(['--commands', '--protocol', 'a', '--protocol', 'b',
    '--origin', pageOrigin, ...NODEFLATE]);
  const url = `ws://127.0.0.1:${s.port}/chat?x=1`;

  /* 1. open */
  const o = await T(page, 'open', ['first', url]);
  check('open_readyState_connecting_then_open', o.opened && o.stateAtCreate === 0 &&
    o.stateAtOpen === 1, j(o));
  check('open_origin_allowed_by_--origin', o.opened, j(o));
  check(`open_extensions_exactly_${j(CHROME_ANSWER)}`, o.extensions === CHROME_ANSWER,
    j(o.extensions));
  const pb = await T(page, 'open', ['protoB', url, ['b', 'c']]);
  check('subprotocol_server_a_b_page_b_c_gets_b', pb.opened && pb.protocol === 'b', j(pb));
  /* No common subprotocol: echo-server accepts without Sec-WebSocket-Protocol (RFC 6455
     allows it), but Chrome fails a handshake that answers a non-empty offer without one.
     An application that cares refuses in its upgrade hook instead. */
  /* No common subprotocol: echo-server --protocol refuses with 400 (not a 101 naming
     none, which Chrome would fail as well); the page sees an error and 1006. */
  const relay = await startRelay(s.port);
  const pc = await T(page, 'open', ['protoC', `ws://127.0.0.1:${relay.port}/`, ['c']]);
  const st = relay.conns.map((c) => c.status);
  check('subprotocol_no_common_one_refused_400_page_gets_error_1006', !pc.opened &&
    pc.events.includes('error') && pc.close && pc.close.code === 1006 &&
    st.length === 1 && /^HTTP\/1\.1 400 /.test(st[0]), j({ pc, st }));
  relay.close();

  /* 2. echoes with deflate */
  await echoChecks(page, url, 'deflate', CHROME_ANSWER);

  /* 4. closing */
  await T(page, 'open', ['c4000', url]);
  const c4 = await T(page, 'close', ['c4000', [4000, 'reason']]);
  /* duplex answers a close by echoing the code without a reason (RFC 6455 §5.5.1 allows
     either); the close event reports the server's frame, so the reason is '' */
  check('page_close_4000_reason_gets_4000_clean', c4.close && c4.close.code === 4000 &&
    c4.close.reason === '' && c4.close.wasClean === true, j(c4));
  await T(page, 'open', ['bad', url]);
  const bad = await T(page, 'close', ['bad', [1005]]);
  check('page_close_1005_throws_InvalidAccessError (browser rule)',
    bad.threw && bad.threw.name === 'InvalidAccessError' && bad.state === 1, j(bad));
  const badStill = await T(page, 'echo', ['bad', [{ kind: 'text', n: 10, seed: 1 }]]);
  check('after_invalid_close_still_open_and_echoes', badStill.ok, badStill.why);
  for (const [cmd, code, reason] of [['!close 4001 bye', 4001, 'bye'], ['!close 1011', 1011, ''],
    ['!close 1000 done', 1000, 'done']]) {
    const n = `srv${code}`;
    await T(page, 'open', [n, url]);
    const c = await T(page, 'commandClose', [n, cmd]);
    check(`server_${j(cmd)}_gives_${code}_${j(reason)}_clean`, c && c.code === code &&
      c.reason === reason && c.wasClean === true, j(c));
  }
  await T(page, 'open', ['ping', url]);
  await T(page, 'send', ['ping', { kind: 'raw', data: '!ping hello' }]);
  const pr = await T(page, 'echo', ['ping', [{ kind: 'text', n: 1000, seed: 7 },
    { kind: 'bin', n: 1000, seed: 8 }]]);
  check('server_ping_answered_connection_still_echoes', pr.ok, pr.why);
  await T(page, 'close', ['ping', [1000]]);
  /* graceful shutdown (SIGTERM): the sockets still open get 1001 */
  const rc = await stopServer(s);
  const gone = await T(page, 'waitClose', ['first']);
  check('server_sigterm_closes_open_pages_1001_clean_exit_0', rc === 0 && gone &&
    gone.code === 1001 && gone.wasClean === true, `status ${rc} ${j(gone)}`);
}

/* 3. bytes on the wire, through a counting relay */
async function wireChecks(page) {
  for (const deflate of [true, false]) {
    const tag = deflate ? 'deflate' : 'plain';
    const s = await startServer(deflate ? NODEFLATE : ['--no-deflate']);
    const relay = await startRelay(s.port);
    const o = await T(page, 'open', [`wire_${tag}`, `ws://127.0.0.1:${relay.port}/`]);
    const spec = { kind: 'repeat', unit: 'duplex says hello to chromium \u00e9\u20ac\ud83d\ude00; ',
      n: MiB };
    const r = o.opened ? await T(page, 'echo', [`wire_${tag}`, [spec]]) : { ok: false, why: j(o) };
    await T(page, 'close', [`wire_${tag}`, [1000]]);
    const c = relay.conns[0] || { up: -1, down: -1 };
    if (deflate) {
      check('wire_1MiB_repetitive_text_under_64KiB_each_way_with_deflate',
        r.ok && c.down > 0 && c.down < 65536 && c.up > 0 && c.up < 65536,
        `echo ${r.ok} ${r.why || ''} up ${c.up} down ${c.down}`);
    } else {
      check('wire_1MiB_text_at_least_1MiB_each_way_without_deflate',
        r.ok && c.down >= MiB && c.up >= MiB, `echo ${r.ok} up ${c.up} down ${c.down}`);
    }
    relay.close();
    await stopServer(s);
  }
}

/* 2 without deflate */
async function noDeflateChecks(page) {
  const s = await startServer(['--no-deflate']);
  await echoChecks(page, `ws://127.0.0.1:${s.port}/`, 'nodeflate', '');
  await stopServer(s);
}

/* 5. the message limit */
async function limitChecks(page) {
  const s = await startServer(['--max-message', '65536', ...NODEFLATE]);
  const url = `ws://127.0.0.1:${s.port}/`;
  await T(page, 'open', ['lim1', url]);
  const r = await T(page, 'echo', ['lim1', [{ kind: 'bin', n: 65536, seed: 1 }]]);
  check('max_message_65536_echoes_65536B', r.ok, r.why);
  await T(page, 'send', ['lim1', { kind: 'bin', n: 65537, seed: 2 }]);
  const c1 = await T(page, 'waitClose', ['lim1']);
  check('max_message_65536_binary_65537B_gets_close_1009', c1 && c1.code === 1009, j(c1));
  const o2 = await T(page, 'open', ['lim2', url]);
  await T(page, 'send', ['lim2', { kind: 'repeat', unit: 'a', n: MiB }]);
  const c2 = await T(page, 'waitClose', ['lim2']);
  check('max_message_65536_compressed_1MiB_text_gets_close_1009',
    o2.extensions === CHROME_ANSWER && c2 && c2.code === 1009, `${j(o2.extensions)} ${j(c2)}`);
  await stopServer(s);
}

/* 6. Origin refused */
async function originChecks(page) {
  const s = await startServer(['--origin', 'http://allowed.example', ...NODEFLATE]);
  const o = await T(page, 'open', ['origin', `ws://127.0.0.1:${s.port}/`]);
  const c = o.close || await T(page, 'waitClose', ['origin']);
  check('origin_not_allowed_error_then_close_1006_never_open', !o.opened &&
    j(o.events) === j(['error', 'close']) && c && c.code === 1006 && c.wasClean === false,
  j(o));
  await stopServer(s);
}

/* 7. broadcast to three pages */
async function broadcastChecks(pages) {
  const s = await startServer(['--commands', ...NODEFLATE]);
  const relay = await startRelay(s.port);
  const url = `ws://127.0.0.1:${relay.port}/`;
  const names = ['A', 'B', 'C'];
  for (let k = 0; k < 3; k++) {
    const o = await T(pages[k], 'open', [names[k], url]);
    check(`broadcast_page_${names[k]}_opens_with_deflate`, o.opened &&
      o.extensions === CHROME_ANSWER, j(o));
  }
  /* each page echoes its own 1500 B first: the server's compressor for it holds them */
  const before = (k) => [{ kind: 'hex', n: 1500, seed: 100 + k }];
  for (let k = 0; k < 3; k++) await T(pages[k], 'echo', [names[k], before(k)]);
  /* two broadcasts from page A: 1000 B of mixed UTF-8, then 20000 B of a repeated line */
  const bt = { kind: 'text', n: 1000, seed: 200 };
  const rep = { kind: 'repeat', unit: 'broadcast from duplex, compressed once. ', n: 20000 };
  const got = [];
  const down = [];
  for (const spec of [bt, rep]) {
    const downBefore = relay.conns.map((c) => c.down);
    await T(pages[0], 'send', ['A', { kind: 'cmd', prefix: '!broadcast ', spec }]);
    for (let k = 0; k < 3; k++) got.push(await T(pages[k], 'recv', [names[k], spec]));
    down.push(relay.conns.map((c, k) => c.down - downBefore[k]));
  }
  check('broadcast_two_texts_reach_all_three_pages_exact', got.length === 6 &&
    got.every((g) => g.ok), j(got));
  check('broadcast_20000B_repetitive_arrives_compressed_at_each (under 1000 B)',
    down[1].length === 3 && down[1].every((d) => d > 0 && d < 1000), j(down));
  /* each page echoes the same 1500 B again, then more */
  for (let k = 0; k < 3; k++) {
    const r = await T(pages[k], 'echo', [names[k], [...before(k), { kind: 'text', n: 5000,
      seed: 300 + k }, ...before(k)]]);
    check(`broadcast_then_page_${names[k]}_echoes_exact`, r.ok, r.why);
  }
  for (let k = 0; k < 3; k++) await T(pages[k], 'close', [names[k], [1000]]);
  relay.close();
  await stopServer(s);
}

/* 8. permessage-deflate windows, measured on the wire. A 3000 B block of hex digits
   repeated to 60000 B: a compressor whose window holds 3000 B finds the repeats (a few
   KiB on the wire), one with a smaller window cannot (about half the size: hex digits). */
async function windowChecks(page) {
  const block = { kind: 'repeat', unit: '', n: 60000 };
  const unit = await page.evaluate(() => {
    const r = new Uint8Array(3000);
    crypto.getRandomValues(r);
    return Array.from(r, (b) => '0123456789abcdef'[b & 15]).join('');
  });
  block.unit = unit;
  const cases = [
    /* [tag, flags, answer, up: Chrome's window holds 3000 B?, down: ours?] */
    ['default', [], CHROME_ANSWER, true, false],
    ['server8_client9', ['--deflate-server-window', '8', '--deflate-client-window', '9'],
      'permessage-deflate; server_max_window_bits=8; client_max_window_bits=9', false, false],
    ['server15_client10_client_no_takeover', ['--deflate-server-window', '15',
      '--deflate-client-window', '10', '--deflate-client-no-context-takeover'],
    /* server_max_window_bits is stated only below 15 or when offered (deflate.h) */
    'permessage-deflate; client_no_context_takeover; client_max_window_bits=10', false, true],
  ];
  for (const [tag, flags, answer, upSmall, downSmall] of cases) {
    const s = await startServer(NODEFLATE.length ? NODEFLATE : flags);
    const relay = await startRelay(s.port);
    const name = `win_${tag}`;
    const o = await T(page, 'open', [name, `ws://127.0.0.1:${relay.port}/`]);
    check(`window_${tag}_answer_exactly_${j(answer)}`, o.opened && o.extensions === answer, j(o));
    const c0 = relay.conns[0] ? { ...relay.conns[0] } : { up: 0, down: 0 };
    /* the same message twice: the second shows context takeover (or its absence) */
    const r1 = await T(page, 'echo', [name, [block]]);
    const c1 = relay.conns[0] ? { ...relay.conns[0] } : { up: 0, down: 0 };
    const r2 = await T(page, 'echo', [name, [block, { kind: 'text', n: 100000, seed: 9 }]]);
    const c2 = relay.conns[0] ? { ...relay.conns[0] } : { up: 0, down: 0 };
    check(`window_${tag}_echoes_exact (60000 B repeats, 100000 B text)`, r1.ok && r2.ok,
      `${r1.why || ''} ${r2.why || ''}`);
    const up = c1.up - c0.up;
    const down = c1.down - c0.down;
    const want = (small) => (small ? 'under 10000' : 'over 24000');
    const fits = (small, n) => (small ? n > 0 && n < 10000 : n > 24000 && n < 70000);
    check(`window_${tag}_wire_up_${want(upSmall)}_down_${want(downSmall)}`,
      fits(upSmall, up) && fits(downSmall, down), `up ${up} down ${down}`);
    if (tag.includes('no_takeover')) {
      /* the second 60000 B: Chrome starts afresh, so as many bytes up as the first */
      const up2 = c2.up - c1.up;
      check(`window_${tag}_second_copy_no_smaller_up (client_no_context_takeover)`,
        up2 > up * 0.8, `first ${up} then ${up2} (+ the 100000 B text)`);
    }
    await T(page, 'close', [name, [1000]]);
    relay.close();
    await stopServer(s);
  }
}

/* 9. wss:// */
async function wssChecks(page, pageOrigin) {
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-browser-'));
  const mk = spawnSync('sh', [MAKE_CERTS, certDir], { timeout: 60000, encoding: 'utf8' });
  if (mk.status !== 0) {
    check('make_certs', false, `${mk.status} ${mk.stderr}`);
    return;
  }
  const s = await startServer(['--cert', path.join(certDir, 'server.pem'), '--key',
    path.join(certDir, 'server.key'), ...NODEFLATE]);
  const url = `wss://localhost:${s.port}/`;

  /* The first Chromium was not told about the test CA: it must refuse the server. */
  const o0 = await T(page, 'open', ['wss_untrusted', url]);
  const c0 = o0.close || await T(page, 'waitClose', ['wss_untrusted']);
  check('wss_untrusted_certificate_refused_by_chromium', !o0.opened && c0 && c0.code === 1006,
    j(o0));

  /*
   * Trust: --ignore-certificate-errors-spki-list=HASH makes Chromium accept a certificate
   * chain that holds this exact public key (SHA-256 of its SubjectPublicKeyInfo, base64),
   * and only that key: every other certificate is still verified (checked above with the
   * first browser, and below with other.pem's key, signed by the same CA). This is
   * narrower than a context's ignoreHTTPSErrors (which accepts anything) and needs no
   * change to the system's or the profile's trust store.
   */
  const spki = (file) => crypto.createHash('sha256').update(new crypto.X509Certificate(
    fs.readFileSync(path.join(certDir, file))).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  const b2 = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spki('server.pem')}`],
    timeout: 20000,
  });
  browsers.push(b2);
  const page2 = await b2.newPage();
  await page2.goto(`${pageOrigin}/`, { timeout: 10000 });
  const o = await T(page2, 'open', ['wss', url]);
  check('wss_opens_with_pinned_server_key', o.opened && o.stateAtOpen === 1, j(o));
  check(`wss_extensions_exactly_${j(CHROME_ANSWER)}`, o.extensions === CHROME_ANSWER,
    j(o.extensions));
  if (o.opened) {
    const r = await T(page2, 'echo', ['wss', [{ kind: 'text', n: 5000, seed: 1 },
      { kind: 'repeat', unit: 'over TLS and deflate ', n: 200000 },
      { kind: 'bin', n: MiB, seed: 2 }, { kind: 'text', n: MiB, seed: 3 }]]);
    check('wss_echo_text_repetitive_and_1MiB_binary_and_text', r.ok, r.why);
    const c = await T(page2, 'close', ['wss', [1000]]);
    check('wss_page_close_1000_clean', c.close && c.close.code === 1000 && c.close.wasClean,
      j(c));
  }
  /* the pin is for server.pem's key only: other.pem (same CA, other.test) is not trusted */
  const s2 = await startServer(['--cert', path.join(certDir, 'other.pem'), '--key',
    path.join(certDir, 'other.key')]);
  const o2 = await T(page2, 'open', ['wss_other', `wss://localhost:${s2.port}/`]);
  check('wss_pin_trusts_only_that_key (other.pem refused)', !o2.opened, j(o2));
  await stopServer(s2);
  const rc = await stopServer(s);
  check('wss_echo_server_exit_0', rc === 0, `status ${rc}`);
}

/* Subprotocols as browsers do them: Chrome fails a 101 that names none after the page
   offered some (so duplex's client does too, by default), and echo-server without
   --protocol answers with the page's first offer instead. */
async function subprotocolChecks(page) {
  const s = await startServer([...NODEFLATE]);
  const url = `ws://127.0.0.1:${s.port}/`;
  for (const offer of [['x-first', 'x-second'], ['only']]) {
    const o = await T(page, 'open', [`any_${offer[0]}`, url, offer]);
    const e = o.opened ? await T(page, 'echo', [`any_${offer[0]}`,
      [{ kind: 'text', n: 100, seed: 7 }]]) : { ok: false };
    check(`subprotocol_no_--protocol_page_${offer.join('_')}_gets_${offer[0]}_and_echoes`,
      o.opened && o.protocol === offer[0] && e.ok, j({ o, e }));
    await T(page, 'close', [`any_${offer[0]}`, [1000]]);
  }
  const none = await T(page, 'open', ['any_none', url]);
  check('subprotocol_no_--protocol_page_offers_none_gets_none', none.opened &&
    none.protocol === '', j(none));
  await T(page, 'close', ['any_none', [1000]]);
  await stopServer(s);

  /* A server that answers without a subprotocol (Node's ws, handleProtocols -> false) */
  const { WebSocketServer } = require('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => false });
  closers.push(() => wss.close());
  await new Promise((resolve) => wss.on('listening', resolve));
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  const wsUrl = `ws://127.0.0.1:${wss.address().port}/`;
  const bare = await T(page, 'open', ['bare_c', wsUrl, ['c']]);
  check('subprotocol_101_naming_none_after_an_offer_chrome_fails_it_1006', !bare.opened &&
    bare.close && bare.close.code === 1006, j(bare));
  const plain = await T(page, 'open', ['bare_none', wsUrl]);
  check('subprotocol_101_naming_none_without_an_offer_opens', plain.opened, j(plain));
  await T(page, 'close', ['bare_none', [1000]]);
  wss.close();
}

async function main() {
  const t0 = Date.now();
  const pageServer = await startPageServer();
  const pageOrigin = `http://127.0.0.1:${pageServer.port}`;
  /* --no-sandbox: this runs as root in a container, where Chromium's sandbox cannot start
     (it refuses to run as root without this flag); the pages only load our own HTML. */
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'],
    timeout: 20000 });
  browsers.push(browser);
  const context = await browser.newContext();
  const pages = [];
  for (let k = 0; k < 3; k++) {
    const p = await context.newPage();
    await p.goto(`${pageOrigin}/`, { timeout: 10000 });
    pages.push(p);
  }
  const hasT = await pages[0].evaluate(() => typeof window.T);
  check(`chromium_${browser.version()}_page_loaded_from_${pageOrigin}`, hasT === 'object', hasT);
  const sections = [
    ['main_server', () => mainServerChecks(pages[0], pageOrigin)],
    ['subprotocols', () => subprotocolChecks(pages[1])],
    ['no_deflate', () => noDeflateChecks(pages[1])],
    ['wire', () => wireChecks(pages[2])],
    ['limits', () => limitChecks(pages[0])],
    ['origin', () => originChecks(pages[1])],
    ['broadcast', () => broadcastChecks(pages)],
    ['windows', () => windowChecks(pages[2])],
    ['wss', () => wssChecks(pages[0], pageOrigin)],
  ];
  for (const [name, fn] of sections) {
    const t = Date.now();
    try {
      await fn();
    } catch (e) {
      check(`${name}_ran`, false, e.stack || String(e));
    }
    if (process.env.DX_BROWSER_TIMES) console.log(`# ${name}: ${Date.now() - t} ms`);
  }
  console.log(`# ${Date.now() - t0} ms`);
}

main().then(finish, (e) => {
  check('main', false, e.stack || String(e));
  finish();
});
