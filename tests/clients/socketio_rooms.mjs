// Socket.IO rooms are fanout channels: join/leave with acks, an HTTP API
// publish (npm `pusher` SDK) to the channel of a room's name reaches the
// room's Socket.IO clients as that event, a pusher-js subscriber of the same
// channel gets it too, `to` sends into a room, and each socket has a room
// of its own id.
import {
  target, startScenario, check, finish, assert, assertEq, RUN, serverSdk, sdkCall, okJson, client, connected, subscribed, once,
} from './lib.mjs';
import { sioClient, sioConnected, emitWithAck } from './sio_lib.mjs';

const t = target();
startScenario('socketio-rooms');
const sdk = serverSdk(t);
const lobby = `lobby-${RUN}`;
const other = `other-${RUN}`;

const a = sioClient(t, 'client A');
const b = sioClient(t, 'client B');
const c = sioClient(t, 'client C');

await check('three clients connect; A and B join the lobby (acked), C joins another room', async () => {
  await Promise.all([sioConnected(a), sioConnected(b), sioConnected(c)]);
  assertEq(await emitWithAck(a, 'join', lobby), [], 'A join ack');
  assertEq(await emitWithAck(b, 'join', lobby), [], 'B join ack');
  assertEq(await emitWithAck(c, 'join', other), [], 'C join ack');
}, { critical: true });

await check(`an HTTP API trigger to channel ${lobby} reaches the room's clients as that event, not others`, async () => {
  const fromC = c.rec.mark();
  const payload = { text: 'hello room', n: 1 };
  const res = await sdkCall(sdk.trigger(lobby, 'news', payload), 'trigger');
  await okJson(res, 'trigger');
  for (const s of [a, b]) {
    const { msg } = await s.rec.waitFor((m) => m.event === 'news', `news in ${lobby}`);
    assertEq(msg.args, [payload], `${s.label} arguments`);
  }
  // C hears its own room's event after anything sent to it before.
  await sdkCall(sdk.trigger(other, 'sentinel', 'x'), 'sentinel trigger');
  const { index } = await c.rec.waitFor((m) => m.event === 'sentinel', 'sentinel', { from: fromC });
  assert(!c.rec.between(fromC, index).some((m) => m.event === 'news'), 'C got the lobby event');
});

await check('a string payload arrives as the same string', async () => {
  await sdkCall(sdk.trigger(lobby, 'plain', 'just text'), 'trigger');
  const { msg } = await a.rec.waitFor((m) => m.event === 'plain', 'plain event');
  assertEq(msg.args, ['just text'], 'arguments');
});

await check('a pusher-js subscriber of the same channel gets the API event and what a socket sends with `to`', async () => {
  const p = client(t, 'pusher-js');
  await connected(p);
  const { channel } = await subscribed(p, lobby);
  const gotApi = once(channel, 'both', 'API event on pusher-js');
  await sdkCall(sdk.trigger(lobby, 'both', { kind: 'api' }), 'trigger');
  assertEq((await gotApi).data, { kind: 'api' }, 'pusher-js data');
  await a.rec.waitFor((m) => m.event === 'both', 'API event on socket A');
  const fromA = a.rec.mark();
  const gotTo = once(channel, 'message', '`to` message on pusher-js');
  assertEq(await emitWithAck(a, 'to', lobby, { text: 'from A' }), [], 'to ack');
  const { msg } = await b.rec.waitFor((m) => m.event === 'message' && m.args[0]?.text === 'from A', 'A\'s room message on B');
  assertEq(msg.args, [{ text: 'from A' }], 'B arguments');
  assertEq((await gotTo).data, { text: 'from A' }, 'pusher-js data');
  await sdkCall(sdk.trigger(lobby, 'after', 'x'), 'sentinel trigger');
  const { index } = await a.rec.waitFor((m) => m.event === 'after', 'sentinel on A', { from: fromA });
  assert(!a.rec.between(fromA, index).some((m) => m.event === 'message'), 'the sender got its own room message');
  p.disconnect();
});

await check("`to` a room the socket has not joined is refused in the ack", async () => {
  const [refusal] = await emitWithAck(c, 'to', lobby, 'sneaky');
  assert(refusal && /join the room first/.test(refusal.error), `ack: ${JSON.stringify(refusal)}`);
});

await check('a private channel cannot be joined as a room', async () => {
  const [refusal] = await emitWithAck(c, 'join', `private-${RUN}`);
  assert(refusal && /authorization/.test(refusal.error), `ack: ${JSON.stringify(refusal)}`);
});

await check('after leave, API events to the room stop reaching the socket', async () => {
  assertEq(await emitWithAck(b, 'leave', lobby), [], 'leave ack');
  const fromB = b.rec.mark();
  await sdkCall(sdk.trigger(lobby, 'after-leave', 'x'), 'trigger');
  await a.rec.waitFor((m) => m.event === 'after-leave', 'event on A');
  await sdkCall(sdk.trigger(b.id, 'direct', 'x'), 'trigger to B');
  const { index } = await b.rec.waitFor((m) => m.event === 'direct', 'sentinel on B', { from: fromB });
  assert(!b.rec.between(fromB, index).some((m) => m.event === 'after-leave'), 'B got an event after leaving');
});

await check("an API event to a socket's id reaches that socket only (its own room)", async () => {
  const fromA = a.rec.mark();
  await sdkCall(sdk.trigger(c.id, 'for-c', { to: 'C' }), 'trigger to C');
  const { msg } = await c.rec.waitFor((m) => m.event === 'for-c', 'event on C');
  assertEq(msg.args, [{ to: 'C' }], 'arguments');
  await sdkCall(sdk.trigger(a.id, 'for-a', 'x'), 'trigger to A');
  const { index } = await a.rec.waitFor((m) => m.event === 'for-a', 'event on A', { from: fromA });
  assert(!a.rec.between(fromA, index).some((m) => m.event === 'for-c'), 'A got C\'s event');
});

await check("sockets' own rooms are not listed as the app's channels", async () => {
  const res = await sdkCall(sdk.get({ path: '/channels' }), 'channels');
  const { channels } = await okJson(res, 'channels');
  assert(channels[lobby], `${lobby} is not listed: ${JSON.stringify(channels)}`);
  for (const s of [a, b, c]) assert(!channels[s.id], `${s.label}'s own room is listed`);
});

finish();
