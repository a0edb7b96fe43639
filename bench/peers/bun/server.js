// Chat relay on Bun's WebSocket server (npm bun@1.4.4), whose WebSocket server and pub/sub are
// uWebSockets inside: every connection subscribes to one topic and each message is published
// to it with `ws.publish`, which (publishToSelf: false, Bun's default) delivers to every
// subscriber but the sender. Same semantics as fanout's chat app: a welcome text on connect,
// then every message goes to every *other* client, text as text and binary as binary (Bun
// hands a text message over as a string and a binary one as a Buffer, and publishes each
// with the opcode of its type). Only `/chat` upgrades; every other request gets 404.
//
// Why `ws.publish` and not `server.publish`: `server.publish` delivers to *every* subscriber,
// the sender included, which is not the chat protocol; excluding the sender around it
// (unsubscribe, publish, subscribe again) costs two topic-tree changes per message. Both
// alternatives can be run for comparison with BUN_PUBLISH=server (echoes to the sender) or
// BUN_PUBLISH=server-resub; bench/compare runs the default, `ws.publish`. Measured on the
// benchmark machine (10,000 connections x 64 B, 10 publishers offering 700 msg/s = 7 M
// deliveries/s, server on one core, loopback, two runs each, other work on the machine): all
// three delivered 5.1-5.8 M deliveries/s, within the noise of each other. So in Bun
// `ws.publish` from the message handler is not the slow path that `ws->publish` is in
// uWebSockets built from source, and the correct relay costs nothing over the others.
//
// Settings, chosen to match fanout's defaults so that neither side gets an easier job:
// - maxPayloadLength 1 MiB: fanout's --max-message-size default (Bun's own: 16 MiB);
// - backpressureLimit 1 MiB and closeOnBackpressureLimit: fanout's --max-backpressure default
//   (1 MiB per connection) and its default slow-consumer policy, which closes the connection
//   (Bun's own: 16 MiB, and past it messages are dropped silently with the connection kept).
//   uWebSockets closes such a connection by shutting the socket down, without a close frame,
//   so the client sees an EOF or a reset where fanout sends 1008;
// - idleTimeout 0 and sendPings false: benchmarks run fanout with --idle-timeout off and
//   --ping-interval off (Bun's own: 120 s, with pings);
// - perMessageDeflate false: fanout does not compress (loadtest does not offer it anyway).
//
// TLS: with BUN_TLS_CERT and BUN_TLS_KEY (PEM files) set, the same server speaks wss:// (Bun's
// TLS is uWebSockets' own, over BoringSSL), for the wss:// side-by-side with fanout --tls-cert.
//
// Usage: bun server.js [HOST] [PORT]      (default 127.0.0.1 9501)
'use strict';

const host = process.argv[2] || '127.0.0.1';
const port = Number(process.argv[3] || 9501);
const TOPIC = 'chat';
const mode = process.env.BUN_PUBLISH || 'ws';
if (!['ws', 'server', 'server-resub'].includes(mode)) {
  console.error(`BUN_PUBLISH must be ws, server or server-resub, not ${mode}`);
  process.exit(2);
}

let nextId = 1;
let server;

const relay = {
  // The default: everyone subscribed but the sender.
  ws: (ws, message) => ws.publish(TOPIC, message),
  // Everyone subscribed, the sender included (not the chat protocol: for comparison only).
  server: (ws, message) => server.publish(TOPIC, message),
  // The sender leaves the topic for the publish, then rejoins.
  'server-resub': (ws, message) => {
    ws.unsubscribe(TOPIC);
    server.publish(TOPIC, message);
    ws.subscribe(TOPIC);
  },
}[mode];

const tls = process.env.BUN_TLS_CERT && process.env.BUN_TLS_KEY
  ? { cert: Bun.file(process.env.BUN_TLS_CERT), key: Bun.file(process.env.BUN_TLS_KEY) }
  : undefined;

server = Bun.serve({
  hostname: host,
  port,
  tls,
  fetch(req, srv) {
    const path = req.url.slice(req.url.indexOf('/', req.url.indexOf('//') + 2)).split('?')[0];
    if (path === '/chat' && srv.upgrade(req, { data: { id: nextId++ } })) {
      return undefined;
    }
    return new Response('not found\n', { status: 404, headers: { 'Content-Type': 'text/plain' } });
  },
  websocket: {
    maxPayloadLength: 1 << 20,
    backpressureLimit: 1 << 20,
    closeOnBackpressureLimit: true,
    idleTimeout: 0,
    sendPings: false,
    perMessageDeflate: false,
    publishToSelf: false,
    open(ws) {
      ws.send(JSON.stringify({ type: 'welcome', id: ws.data.id }));
      ws.subscribe(TOPIC);
    },
    message: relay,
  },
});

const scheme = tls ? 'wss' : 'ws';
console.log(`bun ${Bun.version} listening on ${scheme}://${host}:${server.port}/chat (publish: ${mode})`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
