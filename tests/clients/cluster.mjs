// Three fanout nodes sharing one Redis (PUSHER_PORTS=portA,portB,portC, with
// PUSHER_PORT one of them for the defaults): whichever node an event enters
// by, every subscriber on every node gets it exactly once. An HTTP API
// trigger on B, a client event from C, a raw room message sent on A, and
// presence with one user on two nodes (one member_added, one member_removed).
//
// A node subscribes to a channel in Redis a moment after its first client
// did, so each channel is first warmed up: API triggers until every
// subscriber has seen one. Warm-up events may be missed, never doubled.
import WebSocket from 'ws';
import {
  target, envRequired, startScenario, check, finish, client, connected, subscribed, serverSdk, sdkCall,
  assert, assertEq, RUN, sleep, once, within,
} from './lib.mjs';

const base = target();
const nodes = envRequired('PUSHER_PORTS').split(',').map((port) => ({ ...base, port: Number(port) }));
assert(nodes.length === 3, 'PUSHER_PORTS names three nodes');
const [A, B, C] = nodes;
startScenario('cluster', { timeoutMs: 60000 });
const sdkB = serverSdk(B);

// Every `event` a pusher-js channel (or a raw socket) receives, in order.
function recorder(channel, event) {
  const got = [];
  channel.bind(event, (data) => got.push(data));
  return got;
}

// Triggers `event` on `name` through B's API until each recorder has seen
// one, then checks that none saw one twice.
async function warmUp(name, event, recorders) {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (recorders.every((r) => r.some((d) => d && d.warmup !== undefined))) break;
    await sdkCall(sdkB.trigger(name, event, { warmup: attempt }), 'a warm-up trigger');
    await sleep(50);
  }
  assert(recorders.every((r) => r.some((d) => d && d.warmup !== undefined)), `${name} never warmed up`);
  for (const r of recorders) {
    const seen = r.filter((d) => d && d.warmup !== undefined).map((d) => d.warmup);
    assert(new Set(seen).size === seen.length, `a warm-up event arrived twice: ${seen}`);
  }
}

// Waits until each recorder holds `pred`, then a little more, and checks it
// holds exactly once (and nothing of it in `none`).
async function exactlyOnce(recorders, pred, what, none = []) {
  await within(
    (async () => {
      while (!recorders.every((r) => r.some(pred))) await sleep(20);
    })(),
    5000,
    what,
  );
  await sleep(300);
  recorders.forEach((r, i) => assertEq(r.filter(pred).length, 1, `${what}: copies on subscriber ${i}`));
  none.forEach((r, i) => assertEq(r.filter(pred).length, 0, `${what}: copies where none belong (${i})`));
}

const [a, b, c] = [client(A, 'client on A'), client(B, 'client on B'), client(C, 'client on C')];
const priv = `private-cluster-${RUN}`;
let got;
await check('a pusher-js client on each of three nodes subscribes to one private channel', async () => {
  await Promise.all([a, b, c].map((x) => connected(x)));
  const channels = await Promise.all([a, b, c].map((x) => subscribed(x, priv)));
  got = channels.map(({ channel }) => recorder(channel, 'news'));
  got.typing = channels.map(({ channel }) => recorder(channel, 'client-typing'));
  await warmUp(priv, 'news', got);
}, { critical: true });

await check('an event triggered through the HTTP API of node B reaches A, B and C exactly once', async () => {
  await sdkCall(sdkB.trigger(priv, 'news', { final: 'api' }), 'the trigger');
  await exactlyOnce(got, (d) => d && d.final === 'api', 'the API event');
});

await check('a client event from C reaches A and B exactly once, and not C', async () => {
  c.channel(priv).trigger('client-typing', { from: 'C' });
  await exactlyOnce(got.typing.slice(0, 2), (d) => d && d.from === 'C', 'the client event', [got.typing[2]]);
});

const room = `lobby-${RUN}`;
await check('a raw room message sent on A reaches pusher-js members on B and C exactly once', async () => {
  const raw = new WebSocket(`ws://${A.host}:${A.port}/chat/${room}`);
  const rawGot = [];
  await within(new Promise((resolve, reject) => {
    raw.once('message', resolve);
    raw.once('error', reject);
  }), 5000, 'the raw room welcome');
  raw.on('message', (m) => rawGot.push(String(m)));
  const members = await Promise.all([b, c].map((x) => subscribed(x, room)));
  const messages = members.map(({ channel }) => recorder(channel, 'message'));
  await warmUp(room, 'message', messages);
  raw.send('hello from a raw room');
  await exactlyOnce(messages, (d) => d === 'hello from a raw room', 'the room message');
  assert(!rawGot.includes('hello from a raw room'), 'the raw sender got its own message back');
  raw.close();
});

const presence = `presence-cluster-${RUN}`;
await check('one user on two nodes joins a presence channel once and leaves it once', async () => {
  const observer = client(A, 'observer on A', { user: { id: 'observer' } });
  const tab1 = client(B, 'u1 tab on B', { user: { id: 'u1', info: { name: 'one' } } });
  const tab2 = client(C, 'u1 tab on C', { user: { id: 'u1', info: { name: 'one' } } });
  await Promise.all([observer, tab1, tab2].map((x) => connected(x)));
  const { channel: seen } = await subscribed(observer, presence);
  const added = recorder(seen, 'pusher:member_added');
  const removed = recorder(seen, 'pusher:member_removed');
  await warmUp(presence, 'news', [recorder(seen, 'news')]);
  const { channel: one } = await subscribed(tab1, presence);
  await exactlyOnce([added], (m) => m.id === 'u1', 'member_added for u1');
  assertEq(added[0].info, { name: 'one' }, 'u1 info');
  const { channel: two } = await subscribed(tab2, presence);
  assertEq(two.members.count, 2, 'members the second tab is told');
  assert(two.members.get('observer'), 'the second tab sees the observer on another node');
  assertEq(one.members.count, 2, 'members the first tab is told');
  tab2.unsubscribe(presence);
  await sleep(500);
  assertEq(added.length + removed.length, 1, 'events the observer got as the second tab came and went');
  tab1.unsubscribe(presence);
  await exactlyOnce([removed], (m) => m.id === 'u1', 'member_removed for u1');
  assertEq(added.length, 1, 'member_added events in all');
});

finish();
