#!/usr/bin/env node
/*
 * duplex's URL parser against a real browser: Debian's Chromium (/usr/bin/chromium), driven
 * headless by playwright-core (npm, node_modules/).
 *
 *   node url_chromium.js BUILD_DIR
 *
 * 1. The table: BUILD/tests/test_url, run with DX_URL_TABLE=1, prints every row of its
 *    tables with what duplex made of it (accepted or the error code, host, port, request
 *    target, userinfo). Each input is given to Chromium's `new WebSocket(input)` (does it
 *    throw a SyntaxError?) and `new URL(input)`; where duplex accepts, the WebSocket's URL
 *    (http/https mapped to ws/wss) must have the same scheme, hostname, port,
 *    pathname + search and username[:password]; where duplex refuses, the constructor
 *    must throw, and for host, port and IDNA errors `new URL()` must throw too (a fragment
 *    or another scheme parses but is refused by the constructor). Inputs that are not
 *    UTF-8 cannot be JavaScript strings and are skipped (counted, not passed).
 *    Where Chromium departs from the URL Standard, duplex follows the standard, and each
 *    such row must show exactly the known departure (so a Chromium that changes is
 *    noticed, and every kind must be seen): a space in a host ("a%20b", refused by the
 *    standard), '*' in a host ("%2A"), "'" in the userinfo ("%27"), percent-escapes inside
 *    "[...]" and leading zeros in an IPv6 address's IPv4 part (both refused by the
 *    standard's IPv6 parser), port 0 (parsed; duplex refuses it), non-ASCII hosts (IDNA,
 *    which duplex refuses with DX_EURL_IDNA).
 * 2. On the wire: a TCP server on 127.0.0.1 records the request head of each connection
 *    (and answers 101, then closes with 1000).
 *    Chromium's WebSocket and BUILD/bin/echo-client connect to the same URLs (odd paths,
 *    queries, dot segments, backslashes, tabs, numeric IPv4 forms, upper case, http:,
 *    "ws:" without slashes, userinfo, [::1] when the machine has it); the request line and
 *    the Host header must be the same, and Chromium's request target must equal its own
 *    `new URL()` pathname + search (so part 1 compares the right thing).
 *
 * Every wait is bounded; every process started here is stopped by its PID (playwright
 * launches Chromium and closes it; the whole run is capped at 90 s).
 * Last line: "url_chromium: N passed, M failed".
 */
'use strict';
const { spawn, spawnSync } = require('child_process');
const crypto = require('crypto');
const net = require('net');
const path = require('path');

const NAME = 'url_chromium';
const BUILD = process.argv[2] || 'build';
const TEST_URL = path.join(BUILD, 'tests', 'test_url');
const CLIENT_BIN = path.join(BUILD, 'bin', 'echo-client');
const CHROMIUM = '/usr/bin/chromium';

let passed = 0;
let failed = 0;
let skipped = 0;
const procs = [];
const closers = [];
let browser = null;
let finished = false;

function check(name, cond, detail) {
  if (cond) {
    passed++;
    console.log(`ok   ${NAME} ${name}${detail ? ' (' + detail + ')' : ''}`);
  } else {
    failed++;
    console.log(`FAIL ${NAME} ${name}${detail ? ': ' + detail : ''}`);
  }
}

async function finish() {
  if (finished) return;
  finished = true;
  if (browser) await within(browser.close().catch(() => {}), 5000, null);
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
  if (skipped) console.log(`${NAME}: ${skipped} rows skipped (input not UTF-8)`);
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

const j = JSON.stringify;

/* ---- 1. the table ------------------------------------------------------------------------ */

/* The rows test_url prints: {in: Buffer, rc, host, port ('' when default), secure, target,
   userinfo}. */
function readTable() {
  const r = spawnSync(TEST_URL, [], { env: { ...process.env, DX_URL_TABLE: '1' },
    encoding: 'latin1', timeout: 60000, maxBuffer: 64 << 20 });
  /* its own failures are its own report: here only what duplex produced counts */
  if (r.error) throw r.error;
  const rows = [];
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('URLCASE ')) continue;
    const f = {};
    for (const kv of line.slice(8).split(' ')) {
      const i = kv.indexOf('=');
      f[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const hex = (s) => Buffer.from(s || '', 'hex');
    const row = { in: hex(f.in), rc: f.rc };
    if (f.rc === '0') {
      row.host = hex(f.host).toString('latin1');
      row.port = f.port.startsWith('default:') ? '' : f.port;
      row.secure = f.secure === '1';
      row.target = hex(f.target).toString('latin1');
      row.userinfo = hex(f.userinfo).toString('latin1');
    }
    rows.push(row);
  }
  return rows;
}

/* Runs in the page: what Chromium makes of each input. */
function chromiumVerdicts(inputs) {
  /* pathname + search would lose an empty query ("/p?"): the target is the href from the
     path on, without the fragment */
  const targetOf = (x) => {
    const s = x.href.split('#')[0];
    return s.slice(s.indexOf('/', s.indexOf('//') + 2));
  };
  return inputs.map((u) => {
    const o = {};
    try {
      const x = new URL(u);
      o.url = { protocol: x.protocol, hostname: x.hostname, port: x.port,
        target: targetOf(x), userinfo: x.username + (x.password ? ':' + x.password : ''),
        hash: x.href.includes('#') };
    } catch (e) {
      o.urlError = e.name;
    }
    try {
      const w = new WebSocket(u);
      const x = new URL(w.url);
      o.ws = { protocol: x.protocol, hostname: x.hostname, port: x.port,
        target: targetOf(x), userinfo: x.username + (x.password ? ':' + x.password : '') };
      w.onerror = () => {};
      w.close();
    } catch (e) {
      o.wsError = e.name;
    }
    return o;
  });
}

/* Why a row may differ from Chromium: the known departures from the URL Standard, each
   exact. @s is the input. */
function knownDeparture(row, c, s) {
  const w = c.ws;
  if (!w) return null;
  if (row.rc === 'DX_EURL_IDNA') return 'Chromium maps non-ASCII hosts (IDNA)';
  if (row.rc === 'DX_EURL_PORT' && w.port === '0') return 'Chromium parses port 0';
  if (row.rc === 'DX_EURL_HOST' && w.hostname.includes('%20')) {
    return 'Chromium takes a space in a host as %20';
  }
  const v6 = /\[([^\]]*)\]/.exec(s);
  if (row.rc === 'DX_EURL_HOST' && v6 && w.hostname.startsWith('[')) {
    if (v6[1].includes('%')) return 'Chromium percent-decodes an IPv6 address';
    if (/(^|[:.])0\d/.test(v6[1])) {
      return "Chromium takes leading zeros in an IPv6 address's IPv4 part";
    }
  }
  if (row.rc === '0' && row.host.includes('*') && w.hostname === row.host.replace(/\*/g, '%2A')) {
    return "Chromium writes '*' in a host as %2A";
  }
  if (row.rc === '0' && row.userinfo.includes("'") &&
      w.userinfo === row.userinfo.replace(/'/g, '%27')) return "Chromium encodes ' in userinfo";
  return null;
}

function agrees(row, c) {
  if (row.rc === '0') {
    const w = c.ws;
    if (!w) return `Chromium throws ${c.wsError}`;
    const want = { protocol: row.secure ? 'wss:' : 'ws:', hostname: row.host, port: row.port,
      target: row.target, userinfo: row.userinfo };
    for (const k of Object.keys(want)) {
      if (w[k] !== want[k]) return `${k}: Chromium ${j(w[k])}, duplex ${j(want[k])}`;
    }
    return null;
  }
  if (c.wsError !== 'SyntaxError') return `Chromium's constructor accepts it: ${j(c.ws)}`;
  if (['DX_EURL_HOST', 'DX_EURL_PORT', 'DX_EURL_IDNA'].includes(row.rc) && !c.urlError) {
    return `new URL() accepts it: ${j(c.url)}`;
  }
  if (row.rc === 'DX_EURL_FRAGMENT' && !(c.url && c.url.hash)) {
    return `no fragment for Chromium: ${j(c.url || c.urlError)}`;
  }
  return null;
}

async function tableChecks(page, rows) {
  const usable = [];
  for (const row of rows) {
    const s = row.in.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(row.in)) {
      skipped++;
      continue;
    }
    usable.push({ row, s });
  }
  const verdicts = await page.evaluate(chromiumVerdicts, usable.map((u) => u.s));
  const departures = {};
  usable.forEach(({ row, s }, i) => {
    const c = verdicts[i];
    const why = agrees(row, c);
    const known = why ? knownDeparture(row, c, s) : null;
    if (known) departures[known] = (departures[known] || 0) + 1;
    const what = row.rc === '0' ? `${row.secure ? 'wss' : 'ws'} ${row.host} ${row.port || '-'} ` +
      `${row.target}` : row.rc;
    check(`table ${j(s)} -> ${what}`, !why || known, known ? `known: ${known}` : why);
  });
  /* the departures were seen, so the exceptions above are not dead code */
  check('table_rows_compared', usable.length > 200, `${usable.length} rows`);
  check('table_departures_seen', Object.keys(departures).length === 7, j(departures));
}

/* ---- 2. on the wire ----------------------------------------------------------------------- */

/* A TCP server on @host that records each connection's request head and closes it. */
function startCapture(host) {
  return new Promise((resolve, reject) => {
    const cap = { heads: [], waiters: [], sockets: [] };
    const srv = net.createServer((s) => {
      cap.sockets.push(s);
      let buf = '';
      let done = false;
      s.on('data', (d) => {
        if (done) return;
        buf += d.toString('latin1');
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        done = true;
        const lines = buf.slice(0, i).split('\r\n');
        const field = (n) => {
          const l = lines.find((x) => x.toLowerCase().startsWith(n + ':'));
          return l ? l.slice(n.length + 1).trim() : null;
        };
        const head = { line: lines[0], host: field('host'),
          authorization: field('authorization') !== null };
        /* a 101 and a close frame (1000): a clean close, so Chromium does not slow down
           the next connection as it does after a failed one (RFC 6455 §7.2.3) */
        const key = field('sec-websocket-key') || '';
        const accept = crypto.createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
          `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        s.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
        setTimeout(() => s.destroy(), 2000);
        const w = cap.waiters.shift();
        if (w) w(head);
        else cap.heads.push(head);
      });
      s.on('error', () => {});
    });
    cap.next = (ms) => (cap.heads.length ? Promise.resolve(cap.heads.shift())
      : within(new Promise((r) => cap.waiters.push(r)), ms, null).then((h) => {
        if (!h) cap.waiters.shift();
        return h;
      }));
    closers.push(() => {
      for (const s of cap.sockets) s.destroy();
      srv.close();
    });
    srv.on('error', reject);
    srv.listen(0, host, () => {
      cap.port = srv.address().port;
      resolve(cap);
    });
  });
}

/* echo-client @url: resolves when it exits (it is killed after 5 s). No proxy from the
   environment. */
function runClient(url) {
  return new Promise((resolve) => {
    const env = { ...process.env };
    for (const k of ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY',
      'ALL_PROXY', 'no_proxy', 'NO_PROXY']) delete env[k];
    const p = spawn(CLIENT_BIN, [url, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'], env });
    procs.push(p);
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
    });
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.on('exit', () => {
      clearTimeout(t);
      resolve(err);
    });
  });
}

async function wireChecks(page) {
  const cap = await startCapture('127.0.0.1');
  const P = cap.port;
  const urls = [
    `ws://127.0.0.1:${P}/a^b`,
    `ws://127.0.0.1:${P}/a b/{x}|y\`z"<>`,
    `ws://127.0.0.1:${P}/?q='x'&a"b<c>d\`e{f}g|h^i\\j`,
    `ws://127.0.0.1:${P}/a/../b/./c/%2e%2E/d/.`,
    `ws://127.0.0.1:${P}/%zz/%41/%7e?%zz`,
    `ws://127.0.0.1:${P}\\x\\y`,
    `ws://127.0.0.1:${P}/\u00e9?\u00e9`,
    `ws://127.0.0.1:${P}/t\ta\nb`,
    `ws://127.0.0.1:${P}?q`,
    `ws://127.0.0.1:${P}/p?`,
    `ws://127.0.0.1:${P}?`,
    `ws://127.0.0.1:${P}`,
    `ws://127.1:${P}/`,
    `ws://0x7f.1:${P}/x`,
    `ws://2130706433:${P}/`,
    `ws://017700000001:${P}/`,
    `ws://LOCALHOST:${P}/Up`,
    `ws://%6cocalhost:${P}/`,
    `WS://127.0.0.1:${P}/`,
    `http://127.0.0.1:${P}/h`,
    `ws:127.0.0.1:${P}/noslashes`,
    `ws://user:pass@127.0.0.1:${P}/u`,
  ];
  const cap6 = await startCapture('::1').catch(() => null);
  if (cap6) urls.push(`ws://[0:0::1]:${cap6.port}/six`);
  else console.log(`${NAME}: no IPv6 loopback here, [::1] skipped`);
  for (const u of urls) {
    const c = u.includes('[') ? cap6 : cap;
    /* Chromium */
    const seen = await page.evaluate((url) => new Promise((resolve) => {
      let w;
      try {
        w = new WebSocket(url);
      } catch (e) {
        resolve({ error: e.name });
        return;
      }
      const x = new URL(url).href.split('#')[0];
      const done = () => resolve({ target: x.slice(x.indexOf('/', x.indexOf('//') + 2)) });
      w.onerror = done;
      w.onclose = done;
      setTimeout(done, 3000);
    }), u);
    const ch = await c.next(3000);
    /* duplex */
    const errP = runClient(u);
    const dx = await c.next(5000);
    const err = await errP;
    const name = `wire ${j(u.replace(String(c.port), 'PORT'))}`;
    check(`${name}: Chromium sends a request`, !!ch, j(seen));
    check(`${name}: echo-client sends a request`, !!dx, err.trim().split('\n')[0]);
    if (!ch || !dx) continue;
    check(`${name}: same request line ${j(ch.line)}`, ch.line === dx.line, `duplex ${j(dx.line)}`);
    check(`${name}: same Host ${j(ch.host)}`, ch.host === dx.host, `duplex ${j(dx.host)}`);
    check(`${name}: Chromium's target is its URL's path and query`,
      ch.line === `GET ${seen.target} HTTP/1.1`, `${j(ch.line)} vs ${j(seen.target)}`);
    check(`${name}: no Authorization from either`, !ch.authorization && !dx.authorization);
  }
}

/* ---- main --------------------------------------------------------------------------------- */

async function main() {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    check('playwright_core_installed', false, e.message.split('\n')[0]);
    return;
  }
  const rows = readTable();
  check('test_url_prints_its_table', rows.length > 200, `${rows.length} rows`);
  /* --no-sandbox: this runs as root in a container, where Chromium's sandbox cannot start;
     the page is about:blank and loads nothing. */
  browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 20000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const page = await browser.newPage();
  check(`chromium_${browser.version()}_started`, true);
  /* the wire first: the table's sockets to unreachable places (127.0.0.1:80, ...) fail,
     and Chromium then slows down new connections to those addresses for a while */
  await wireChecks(page);
  await tableChecks(page, rows);
}

setTimeout(() => {
  check('whole run within 90 s', false, 'timed out');
  finish();
}, 90000).unref();

main().catch((e) => check('no exception', false, e.stack)).finally(finish);
