// Shared plumbing for the Socket.IO real-client scenarios: the real
// socket.io-client 4.x (Node build), WebSocket transport only, against the
// server's /socket.io/ endpoint. The check runner, environment and the npm
// `pusher` SDK (for HTTP API publishes) come from lib.mjs.

import { io } from 'socket.io-client';
import { STEP_MS, DEBUG, within, openClients, Log } from './lib.mjs';

export { io };

// A socket.io-client socket for namespace `nsp`, WebSocket only, no
// automatic reconnection (a reconnect would hide a server-side close), with
// every event it receives recorded in order.
export function sioClient(t, label, { nsp = '/', auth, extra = {} } = {}) {
  const socket = io(`http://${t.host}:${t.port}${nsp}`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    auth,
    ...extra,
  });
  socket.label = label;
  socket.rec = new SioRecorder(socket, label);
  openClients.add(socket);
  return socket;
}

// Resolves once the socket is connected to its namespace; rejects with the
// server's reason on connect_error.
export function sioConnected(socket, ms = STEP_MS) {
  if (socket.connected) return Promise.resolve(socket.id);
  return within(
    new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(socket.id));
      socket.once('connect_error', (e) => reject(new Error(`${socket.label}: connect_error: ${e.message}`)));
    }),
    ms,
    `${socket.label} to connect`,
  );
}

// Resolves with the Error of the socket's next connect_error.
export function sioConnectError(socket, ms = STEP_MS) {
  return within(
    new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error(`${socket.label}: connected, expected connect_error`)));
      socket.once('connect_error', resolve);
    }),
    ms,
    `${socket.label} connect_error`,
  );
}

// Emits `event` with `args` and resolves with the ack's arguments.
export function emitWithAck(socket, event, ...args) {
  return within(
    new Promise((resolve) => socket.emit(event, ...args, (...ackArgs) => resolve(ackArgs))),
    STEP_MS,
    `${socket.label}: ack of ${event}`,
  );
}

// Every event a socket receives, in order (see `Log`).
export class SioRecorder extends Log {
  constructor(socket, label) {
    super(label);
    socket.onAny((event, ...args) => {
      if (DEBUG) console.log(`# ${label} <- ${event} ${JSON.stringify(args)}`);
      this.record({ event, args });
    });
  }
}
