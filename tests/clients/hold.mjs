// Helper for sdk_python.py (not a scenario): holds real pusher-js
// subscriptions so that the HTTP API answers are non-trivial, and reports on
// stdout, one JSON object per line:
//   {"type":"ready","tag":..,"channels":{..},"sockets":{client:socket_id},"signed_in":[..]}
//   {"type":"event","client":..,"channel":..,"event":..,"data":..}
//   {"type":"closed","client":..,"state":..}   (a connection left "connected")
//   {"type":"error","message":..}
// It exits when its stdin closes (its parent went away) or after 60 s.
//
// Clients: pubA, pubB on public-py-TAG; u1a, u1b (user "1") and u2 (user "2")
// on presence-py-TAG, all three signed in (pusher.signin()); u2 also on
// private-py-TAG. TAG comes from HOLD_TAG.
import { target, client, connected, subscribed, within, STEP_MS } from './lib.mjs';

const t = target();
const tag = process.env.HOLD_TAG || Math.random().toString(36).slice(2, 8);
const channels = {
  public: `public-py-${tag}`,
  presence: `presence-py-${tag}`,
  private: `private-py-${tag}`,
};
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const fail = (message) => {
  out({ type: 'error', message });
  process.exit(1);
};
setTimeout(() => process.exit(0), 60000).unref();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

const specs = {
  pubA: { chans: ['public'] },
  pubB: { chans: ['public'] },
  u1a: { user: { id: '1', info: { name: 'Ada' } }, chans: ['presence'], signin: true },
  u1b: { user: { id: '1', info: { name: 'Ada' } }, chans: ['presence'], signin: true },
  u2: { user: { id: '2', info: { name: 'Bob' } }, chans: ['presence', 'private'], signin: true },
};
const clients = {};
let ready = false;
try {
  for (const [name, spec] of Object.entries(specs)) {
    const c = client(t, name, { user: spec.user });
    clients[name] = c;
    c.connection.bind('message', (m) => {
      if (!m.channel || !Object.values(channels).includes(m.channel)) return;
      if (m.event.startsWith('pusher')) return;
      out({ type: 'event', client: name, channel: m.channel, event: m.event, data: m.data });
    });
    c.connection.bind('state_change', ({ current }) => {
      if (ready && current !== 'connected') {
        out({ type: 'closed', client: name, state: current });
        // No automatic reconnection: the parent checks who is gone.
        c.disconnect();
      }
    });
  }
  await Promise.all(Object.values(clients).map((c) => connected(c)));
  const signedIn = [];
  for (const [name, spec] of Object.entries(specs)) {
    if (!spec.signin) continue;
    const c = clients[name];
    const ok = await within(
      new Promise((resolve) => {
        c.bind('pusher:signin_success', () => resolve(true));
        c.signin();
      }),
      STEP_MS,
      `${name} signin`,
    ).catch(() => false);
    if (ok) signedIn.push(name);
  }
  for (const [name, spec] of Object.entries(specs)) {
    for (const ch of spec.chans) await subscribed(clients[name], channels[ch]);
  }
  ready = true;
  const sockets = Object.fromEntries(Object.entries(clients).map(([n, c]) => [n, c.connection.socket_id]));
  out({ type: 'ready', tag, channels, sockets, signed_in: signedIn });
} catch (e) {
  fail(e && e.message ? e.message : String(e));
}
