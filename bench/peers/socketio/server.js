// The Socket.IO reference server (npm socket.io 4.x on Node.js) running fanout's default
// Socket.IO app, a peer for `loadtest socketio` (BENCHMARKS.md, section J):
//   - `message` (and any other event name but the three below) goes to every *other* socket of
//     the namespace: socket.broadcast.emit(name, ...args);
//   - `join` / `leave` a room, `to` a room: socket.to(room).emit('message', data), the sender
//     excluded; each answers its ack, when the client asked for one, with no arguments.
// Every namespace is served, as fanout serves them. WebSocket transport only, as fanout serves
// today; no compression (loadtest offers none); 1 MB messages and Engine.IO's default heartbeat
// (25 s interval, 20 s timeout: loadtest answers every ping).
//
// Usage: node server.js [HOST] [PORT]      (default 127.0.0.1 9501)
// Dependencies: socket.io (package.json); install them outside the repository and point
// NODE_PATH at them, e.g. `npm install --prefix /tmp/sio socket.io@4.8.4` then
// `NODE_PATH=/tmp/sio/node_modules node server.js`.
'use strict';

const http = require('http');
const { Server } = require('socket.io');

const host = process.argv[2] || '127.0.0.1';
const port = Number(process.argv[3] || 9501);

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 1e6,
});

const ack = (cb) => {
  if (typeof cb === 'function') cb();
};

function onConnection(socket) {
  socket.on('join', (room, cb) => {
    socket.join(String(room));
    ack(cb);
  });
  socket.on('leave', (room, cb) => {
    socket.leave(String(room));
    ack(cb);
  });
  socket.on('to', (room, data, cb) => {
    socket.to(String(room)).emit('message', data);
    ack(cb);
  });
  socket.on('message', (data, cb) => {
    socket.broadcast.emit('message', data);
    ack(cb);
  });
  socket.onAny((event, ...args) => {
    if (['message', 'join', 'leave', 'to'].includes(event)) return;
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    socket.broadcast.emit(event, ...args);
    ack(cb);
  });
  socket.on('error', () => {}); // a reset client must not take the process down
}

io.of('/').on('connection', onConnection);
// Any other namespace, as fanout serves every one.
io.of(/^\/.+$/).on('connection', onConnection);

httpServer.listen({ host, port, backlog: 4096 }, () => {
  const version = require('socket.io/package.json').version;
  console.log(`socket.io ${version} (Node ${process.version}) listening on ws://${host}:${port}/socket.io/`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
