// Error paths: unknown app key (close 4001), subscriptions without or with
// bad auth, invalid channel names, client events where they are not allowed,
// HTTP API requests with a bad signature.
//
// Optional second app with client events DISABLED: PUSHER_APP2_ID,
// PUSHER_APP2_KEY, PUSHER_APP2_SECRET (same host/port). Without them that
// check is skipped. The main app must have client events enabled.
import {
  target, startScenario, check, finish, client, connected, subscribed, serverSdk, sentinel, sdkCall, skip,
  assert, assertEq, RUN, RawSocket, PusherJs, within, STEP_MS, once, roundtrip, okJson,
} from './lib.mjs';

const t = target();
startScenario('errors');
const sdk = serverSdk(t);

// ---- unknown app key
await check('raw WebSocket with an unknown app key: pusher:error code 4001 then close code 4001', async () => {
  const raw = new RawSocket(t, 'raw unknown key', { key: `no-such-key-${RUN}` });
  const closeEv = await within(raw.closed, STEP_MS, 'the server to close the connection');
  const err = raw.msgs.find((m) => m.event === 'pusher:error');
  assertEq(closeEv.code, 4001, 'WebSocket close code');
  assert(err, `no pusher:error before the close (got ${JSON.stringify(raw.msgs)})`);
  assertEq(err.data && err.data.code, 4001, 'pusher:error data.code');
  assert(!raw.msgs.some((m) => m.event === 'pusher:connection_established'), 'connection_established was sent');
  return `reason "${closeEv.reason}", message "${err.data.message}"`;
});

await check('pusher-js with an unknown app key reports error code 4001 and does not connect', async () => {
  const c = client(t, 'pusher-js unknown key', { key: `no-such-key-${RUN}` });
  const err = await within(
    new Promise((resolve) => c.connection.bind('error', (e) => resolve(e))),
    STEP_MS,
    'a connection error event',
  );
  // pusher-js wraps the handshake error: {type: 'WebSocketError', error: {type: 'PusherError', data: {code}}}
  const inner = (err && err.error) || err;
  const code = inner && inner.data && inner.data.code;
  assertEq(code, 4001, `error code in ${JSON.stringify(err)}`);
  await new Promise((r) => setTimeout(r, 100));
  assertEq(c.connection.state, 'disconnected', 'pusher-js state after the refusal (no retry)');
  c.disconnect();
});

// ---- subscriptions that must fail
// Each check gets its own raw connection, so that a server dropping one
// connection on an error does not fail the checks after it.
let nraw = 0;
async function freshRaw() {
  const sock = new RawSocket(t, `raw client ${++nraw}`);
  await sock.established();
  return sock;
}

await check('raw WebSocket with the right key gets pusher:connection_established', async () => {
  const sock = new RawSocket(t, 'raw client 0');
  const d = await sock.established();
  assert(/^\d+\.\d+$/.test(d.socket_id), `socket_id ${d.socket_id}`);
  assert(typeof d.activity_timeout === 'number' && d.activity_timeout > 0, `activity_timeout ${d.activity_timeout}`);
  sock.close();
  return `activity_timeout ${d.activity_timeout}`;
}, { critical: true });

function subscribeOutcome(sock, channel, payload) {
  const from = sock.mark();
  sock.send({ event: 'pusher:subscribe', data: { channel, ...payload } });
  return sock.waitFor(
    (m) =>
      (m.channel === channel &&
        (m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error')) ||
      m.event === 'pusher:error',
    `an answer to subscribing to ${channel.slice(0, 40)}`,
    { from },
  );
}

// Subscribing must be refused with an answer, and the connection must stay
// usable (a refused subscription is not a reason to drop the client).
async function refused(channel, payload = {}, sock = null) {
  sock = sock || (await freshRaw());
  const { msg } = await subscribeOutcome(sock, channel, payload);
  assert(msg.event !== 'pusher_internal:subscription_succeeded', 'the subscription SUCCEEDED');
  await sock.ping().catch((e) => {
    throw new Error(`refused with ${msg.event} ${JSON.stringify(msg.data)}, but then: ${e.message}`);
  });
  sock.close();
  return msg;
}

let noAuthAnswer = null;
await check('private channel without auth: refused, connection stays usable', async () => {
  const msg = await refused(`private-${RUN}-noauth`);
  noAuthAnswer = msg;
  return `${msg.event} ${JSON.stringify(msg.data)}`;
});

await check('private channel without auth: the refusal is pusher:subscription_error on the channel', async () => {
  if (!noAuthAnswer) {
    const sock = await freshRaw();
    noAuthAnswer = (await subscribeOutcome(sock, `private-${RUN}-noauth2`, {})).msg;
    sock.close();
  }
  assertEq(noAuthAnswer.event, 'pusher:subscription_error', `answer (data ${JSON.stringify(noAuthAnswer.data)}) event`);
});

await check('presence channel with a valid auth but no channel_data: refused, connection stays usable', async () => {
  const sock = await freshRaw();
  const ch = `presence-${RUN}-nodata`;
  const { auth } = sdk.authorizeChannel(sock.socketId, ch);
  const msg = await refused(ch, { auth }, sock);
  return `${msg.event} ${JSON.stringify(msg.data)}`;
});

await check('private channel with an auth signed for another socket: refused, connection stays usable', async () => {
  const ch = `private-${RUN}-stolen`;
  const { auth } = sdk.authorizeChannel('1234.1234', ch);
  const msg = await refused(ch, { auth });
  return `${msg.event} ${JSON.stringify(msg.data)}`;
});

await check('invalid channel name (space and "!"): refused, connection stays usable', async () => {
  const msg = await refused(`bad channel ${RUN}!`);
  return `${msg.event} ${JSON.stringify(msg.data)}`;
});

await check('invalid channel name (300 characters): refused, connection stays usable', async () => {
  const msg = await refused(`long-${RUN}-${'x'.repeat(288)}`);
  return `${msg.event} ${JSON.stringify(msg.data)}`;
});

// ---- client events where they are not allowed
const watcher = client(t, 'pusher-js watcher');
const pub = `public-${RUN}-noclient`;
const priv = `private-${RUN}-notmember`;
await check('a pusher-js watcher joins a public and a private channel', async () => {
  await connected(watcher);
  await Promise.all([subscribed(watcher, pub), subscribed(watcher, priv)]);
}, { critical: true });

await check('client event on a public channel is not delivered', async () => {
  const sock = await freshRaw();
  const { msg } = await subscribeOutcome(sock, pub, {});
  assertEq(msg.event, 'pusher_internal:subscription_succeeded', 'public subscribe answer');
  const from = watcher.rec.mark();
  sock.send({ event: 'client-public', channel: pub, data: { x: 1 } });
  await sock.ping().catch(() => {});
  const [i] = await sentinel(sdk, pub, [watcher.rec]);
  const got = watcher.rec.between(from, i).filter((m) => m.event === 'client-public');
  assert(got.length === 0, 'a client event on a public channel was delivered');
  sock.close();
});

await check('client event on a private channel the sender has not joined is not delivered', async () => {
  const sock = await freshRaw();
  const from = watcher.rec.mark();
  sock.send({ event: 'client-intruder', channel: priv, data: { x: 1 } });
  await sock.ping().catch(() => {});
  const [i] = await sentinel(sdk, priv, [watcher.rec]);
  const got = watcher.rec.between(from, i).filter((m) => m.event === 'client-intruder');
  assert(got.length === 0, 'a client event from a non-member was delivered');
  sock.close();
});

// ---- second app: client events disabled
const app2 = {
  appId: process.env.PUSHER_APP2_ID,
  key: process.env.PUSHER_APP2_KEY,
  secret: process.env.PUSHER_APP2_SECRET,
};
if (app2.appId && app2.key && app2.secret) {
  const t2 = { ...t, ...app2 };
  const sdk2 = serverSdk(t2);
  await check('app 2 (client events disabled): a client event is not delivered and the sender gets pusher:error', async () => {
    const a = client(t2, 'app2 client A');
    const b = client(t2, 'app2 client B');
    await Promise.all([connected(a), connected(b)]);
    const ch = `private-${RUN}-app2`;
    const [{ channel: chA }] = await Promise.all([subscribed(a, ch), subscribed(b, ch)]);
    const fromA = a.rec.mark();
    const fromB = b.rec.mark();
    chA.trigger('client-forbidden', { x: 1 });
    const [ib] = await sentinel(sdk2, ch, [b.rec]);
    const got = b.rec.between(fromB, ib).filter((m) => m.event === 'client-forbidden');
    assert(got.length === 0, 'the client event was delivered although client events are disabled');
    const { msg } = await a.rec.waitFor((m) => m.event === 'pusher:error', 'pusher:error on the sender', { from: fromA });
    return JSON.stringify(msg.data);
  });
} else {
  skip('app 2 (client events disabled): a client event is not delivered', 'PUSHER_APP2_ID/KEY/SECRET not set');
}

// ---- HTTP API authentication
await check('HTTP API trigger signed with a wrong secret: 401', async () => {
  const bad = serverSdk(t, { secret: `${t.secret}-wrong` });
  try {
    const res = await bad.trigger(pub, 'nope', {});
    throw new Error(`accepted with HTTP ${res.status}`);
  } catch (e) {
    if (e.status === undefined) throw e;
    assertEq(e.status, 401, 'HTTP status');
  }
});

await check('HTTP API trigger with an unknown app id: 4xx', async () => {
  const bad = serverSdk(t, { appId: '999999999' });
  try {
    const res = await bad.trigger(pub, 'nope', {});
    throw new Error(`accepted with HTTP ${res.status}`);
  } catch (e) {
    if (e.status === undefined) throw e;
    assert(e.status >= 400 && e.status < 500, `HTTP ${e.status}`);
    return `HTTP ${e.status}`;
  }
});

finish();
