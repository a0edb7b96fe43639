// Chat relay on Node.js `ws` (npm ws@8), written the way its README suggests a broadcast:
// loop over `wss.clients` and `send` to each. Same semantics as fanout's chat app: a
// welcome text on connect, then every message goes to every *other* client, text as text and
// binary as binary. Only `/chat` upgrades (ws answers 400 to an upgrade on another path);
// plain HTTP requests get 404.
//
// Usage: node server.js [HOST] [PORT]      (default 127.0.0.1 9501)
'use strict';

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const host = process.argv[2] || '127.0.0.1';
const port = Number(process.argv[3] || 9501);

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});
// No compression (loadtest does not offer it anyway), 1 MiB messages like fanout's default.
const wss = new WebSocketServer({ server: httpServer, path: '/chat', perMessageDeflate: false, maxPayload: 1 << 20 });

let nextId = 1;
wss.on('connection', (ws) => {
  const id = nextId++;
  ws.send(JSON.stringify({ type: 'welcome', id }));
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    }
  });
  ws.on('error', () => {}); // a reset client must not take the process down
});

httpServer.listen({ host, port, backlog: 4096 }, () => {
  console.log(`node ws ${require('ws/package.json').version} listening on ws://${host}:${port}/chat`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
