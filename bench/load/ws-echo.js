// ws-echo: a Node `ws` echo server, a peer for bench/load/run-echo.sh.
//
//   node bench/load/ws-echo.js [--port N]     (0, the default: any free port)
//
// Echoes every message with its type. 16 MiB messages, no permessage-deflate.
// `ws` comes from /work/main/node_modules (npm install --no-audit --no-fund).
// Prints "listening on 127.0.0.1:PORT" once listening. Stop it with a signal.
'use strict';

const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
let port = 0;
if (args.length === 2 && args[0] === '--port' && /^\d+$/.test(args[1]) && +args[1] <= 65535) {
  port = +args[1];
} else if (args.length !== 0) {
  process.stderr.write('usage: node ws-echo.js [--port N]   (0: any free port)\n');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  maxPayload: 16 * 1024 * 1024,
  perMessageDeflate: false,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a peer that vanishes is not our problem here
});

wss.on('error', (err) => {
  process.stderr.write(`ws-echo: ${err.message}\n`);
  process.exit(1);
});

wss.on('listening', () => {
  process.stdout.write(`listening on 127.0.0.1:${wss.address().port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
