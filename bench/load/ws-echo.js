// ws-echo: a Node `ws` echo server, a peer for bench/load/run-echo.sh.
//
//   node bench/load/ws-echo.js [--port N] [--deflate] [--cert FILE --key FILE]
//
// --port 0 (the default) picks any free port. Echoes every message with its type.
// 16 MiB messages. `ws` comes from /work/main/node_modules (npm install --no-audit
// --no-fund). Prints "listening on 127.0.0.1:PORT" once listening. Stop it with a
// signal.
//
// --deflate  accept permessage-deflate with ws's defaults (zlib level 6 (Z_DEFAULT_
//            COMPRESSION), memLevel 8, 15-bit windows both ways unless the client
//            asks for less, context takeover, concurrencyLimit 10) except the
//            threshold: 64 bytes, duplex's compress_min default, instead of ws's
//            1024. Note that ws (8.x, lib/sender.js) applies the threshold only
//            when server_no_context_takeover was agreed; with context takeover, as
//            here, it compresses every message whatever its size, while duplex
//            sends messages under 64 bytes plain. The benchmark's messages (512 B
//            and up) are compressed by both. Without --deflate, permessage-deflate
//            is refused.
// --cert/--key  serve wss:// (PEM files; an https server under ws).
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

function usage() {
  process.stderr.write(
    'usage: node ws-echo.js [--port N] [--deflate] [--cert FILE --key FILE]   (port 0: any free port)\n'
  );
  process.exit(2);
}

const args = process.argv.slice(2);
let port = 0;
let deflate = false;
let cert = null;
let key = null;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--deflate') {
    deflate = true;
  } else if (a === '--port' && i + 1 < args.length && /^\d+$/.test(args[i + 1]) && +args[i + 1] <= 65535) {
    port = +args[++i];
  } else if (a === '--cert' && i + 1 < args.length) {
    cert = args[++i];
  } else if (a === '--key' && i + 1 < args.length) {
    key = args[++i];
  } else {
    usage();
  }
}
if ((cert === null) !== (key === null)) usage();

const server =
  cert !== null
    ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) })
    : http.createServer();

const wss = new WebSocketServer({
  server,
  maxPayload: 16 * 1024 * 1024,
  perMessageDeflate: deflate ? { threshold: 64 } : false,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a peer that vanishes is not our problem here
});

for (const emitter of [wss, server]) {
  emitter.on('error', (err) => {
    process.stderr.write(`ws-echo: ${err.message}\n`);
    process.exit(1);
  });
}

server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  process.stdout.write(`listening on 127.0.0.1:${server.address().port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
