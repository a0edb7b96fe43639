// Public channels: subscribe, trigger to one and several channels,
// triggerBatch, socket_id exclusion, unsubscribe, pusher:ping/pong.
import {
  target, startScenario, check, finish, client, connected, subscribed, serverSdk, sentinel, okJson, sdkCall,
  assert, assertEq, RUN, once, roundtrip,
} from './lib.mjs';

const t = target();
startScenario('public');
const sdk = serverSdk(t);

const chA = `public-${RUN}-a`;
const chB = `public-${RUN}-b`;
const chC = `public-${RUN}-c`;

const a = client(t, 'client A');
const b = client(t, 'client B');

await check('two pusher-js clients connect (pusher:connection_established with a socket_id)', async () => {
  const [sa, sb] = await Promise.all([connected(a), connected(b)]);
  for (const s of [sa, sb]) assert(/^\d+\.\d+$/.test(s), `socket_id ${s} is not of the form 123.456`);
  assert(sa !== sb, 'both clients got the same socket_id');
  return `${sa}, ${sb}`;
}, { critical: true });

await check('pusher:ping from the client is answered with pusher:pong', async () => {
  const pong = once(a, 'pusher:pong', 'pusher:pong');
  a.send_event('pusher:ping', {});
  await pong;
});

let chanA1, chanB1;
await check(`subscribe to public channel ${chA}: subscription_succeeded on both clients`, async () => {
  [{ channel: chanA1 }, { channel: chanB1 }] = await Promise.all([subscribed(a, chA), subscribed(b, chA)]);
}, { critical: true });

await check('an HTTP API trigger reaches both subscribers with its data', async () => {
  const payload = { text: 'hello', n: 1, nested: { ok: true } };
  const gotA = once(chanA1, 'greeting', 'event on client A');
  const gotB = once(chanB1, 'greeting', 'event on client B');
  const res = await sdkCall(sdk.trigger(chA, 'greeting', payload), 'trigger');
  const body = await okJson(res, 'trigger');
  assert(body && typeof body === 'object' && !Array.isArray(body), `trigger response is not a JSON object: ${JSON.stringify(body)}`);
  const [ea, eb] = await Promise.all([gotA, gotB]);
  assertEq(ea.data, payload, 'client A data');
  assertEq(eb.data, payload, 'client B data');
});

await check('a string payload is delivered as the same string', async () => {
  const got = once(chanB1, 'plain', 'string event on client B');
  await sdkCall(sdk.trigger(chA, 'plain', 'just text'), 'trigger');
  const { data } = await got;
  assertEq(data, 'just text', 'data');
});

// A sentinel on each channel the two clients are on (A: a and b, B: a and
// c): once all are in, everything published before them is, whatever the
// order the server interleaves different channels in. The later index of
// each client's sentinels.
async function sentinelsOnEvery(sdk, a, b) {
  const [ia, ib] = await sentinel(sdk, chA, [a.rec, b.rec]);
  const [ja] = await sentinel(sdk, chB, [a.rec]);
  const [jb] = await sentinel(sdk, chC, [b.rec]);
  return [Math.max(ia, ja), Math.max(ib, jb)];
}

await check(`trigger to several channels at once (${chA}, ${chB}, ${chC}) reaches each subscriber once per channel`, async () => {
  await Promise.all([subscribed(a, chB), subscribed(b, chC)]);
  const markA = a.rec.mark();
  const markB = b.rec.mark();
  const res = await sdkCall(sdk.trigger([chA, chB, chC], 'multi', { m: 3 }), 'multi-channel trigger');
  await okJson(res, 'multi-channel trigger');
  const [ia, ib] = await sentinelsOnEvery(sdk, a, b);
  const got = (rec, from, to) => rec.between(from, to).filter((m) => m.event === 'multi').map((m) => m.channel).sort();
  assertEq(got(a.rec, markA, ia), [chA, chB].sort(), 'client A (on a and b) received multi on');
  assertEq(got(b.rec, markB, ib), [chA, chC].sort(), 'client B (on a and c) received multi on');
  for (const m of a.rec.between(markA, ia).concat(b.rec.between(markB, ib)))
    if (m.event === 'multi') assertEq(m.data, { m: 3 }, `multi data on ${m.channel}`);
});

await check('triggerBatch delivers every event of the batch to its channel', async () => {
  const markA = a.rec.mark();
  const markB = b.rec.mark();
  const batch = [
    { channel: chA, name: 'batch-1', data: { i: 1 } },
    { channel: chB, name: 'batch-2', data: { i: 2 } },
    { channel: chC, name: 'batch-3', data: 'three' },
  ];
  const res = await sdkCall(sdk.triggerBatch(batch), 'triggerBatch');
  const body = await okJson(res, 'triggerBatch');
  assert(body && typeof body === 'object', `batch response is not a JSON object: ${JSON.stringify(body)}`);
  const [ia, ib] = await sentinelsOnEvery(sdk, a, b);
  // Each channel keeps its order; events of different channels may come in any order.
  const got = (rec, from, to) =>
    rec
      .between(from, to)
      .filter((m) => m.event.startsWith('batch-'))
      .map((m) => [m.channel, m.event, m.data])
      .sort((x, y) => x[1].localeCompare(y[1]));
  assertEq(got(a.rec, markA, ia), [[chA, 'batch-1', { i: 1 }], [chB, 'batch-2', { i: 2 }]], 'client A batch events');
  assertEq(got(b.rec, markB, ib), [[chA, 'batch-1', { i: 1 }], [chC, 'batch-3', 'three']], 'client B batch events');
});

await check('socket_id exclusion: the excluded client does not get the event, the other does', async () => {
  const markA = a.rec.mark();
  const markB = b.rec.mark();
  const res = await sdkCall(
    sdk.trigger(chA, 'excluded', { x: 1 }, { socket_id: a.connection.socket_id }),
    'trigger with socket_id',
  );
  await okJson(res, 'trigger with socket_id');
  const [ia, ib] = await sentinel(sdk, chA, [a.rec, b.rec]);
  const toA = a.rec.between(markA, ia).filter((m) => m.event === 'excluded');
  const toB = b.rec.between(markB, ib).filter((m) => m.event === 'excluded');
  assert(toA.length === 0, `excluded client A received it ${toA.length} time(s)`);
  assert(toB.length === 1, `client B received it ${toB.length} time(s), expected 1`);
});

await check('socket_id exclusion also applies to triggerBatch entries', async () => {
  const markA = a.rec.mark();
  const markB = b.rec.mark();
  const res = await sdkCall(
    sdk.triggerBatch([{ channel: chA, name: 'excluded-batch', data: '{}', socket_id: b.connection.socket_id }]),
    'triggerBatch with socket_id',
  );
  await okJson(res, 'triggerBatch with socket_id');
  const [ia, ib] = await sentinel(sdk, chA, [a.rec, b.rec]);
  const toA = a.rec.between(markA, ia).filter((m) => m.event === 'excluded-batch');
  const toB = b.rec.between(markB, ib).filter((m) => m.event === 'excluded-batch');
  assert(toB.length === 0, `excluded client B received it ${toB.length} time(s)`);
  assert(toA.length === 1, `client A received it ${toA.length} time(s), expected 1`);
});

await check('after unsubscribe a client no longer receives the channel', async () => {
  a.unsubscribe(chB);
  // The server handles a connection's messages in order: once the pong is
  // back, the unsubscribe has been processed.
  await roundtrip(a);
  const markA = a.rec.mark();
  await sdkCall(sdk.trigger(chB, 'after-unsub', {}), 'trigger');
  const [ia] = await sentinel(sdk, chA, [a.rec]);
  const got = a.rec.between(markA, ia).filter((m) => m.channel === chB);
  assert(got.length === 0, `client A still got ${JSON.stringify(got.map((m) => m.event))} on ${chB}`);
});

finish();
