// Socket.IO over HTTP long-polling: a client with default options starts
// polling and upgrades to a WebSocket (and still chats afterwards); a
// polling-only client chats with a websocket-only one both ways, gets acks,
// joins a room, and hears an HTTP API publish to that room's channel.
import {
  target, startScenario, check, finish, assert, assertEq, RUN, serverSdk, sdkCall, okJson, within, STEP_MS,
} from './lib.mjs';
import { sioClient, sioConnected, emitWithAck } from './sio_lib.mjs';

const t = target();
startScenario('socketio-polling');
const sdk = serverSdk(t);
const room = `polled-${RUN}`;

const dflt = sioClient(t, 'default client', { extra: { transports: ['polling', 'websocket'] } });
const polled = sioClient(t, 'polling client', { extra: { transports: ['polling'] } });
const ws = sioClient(t, 'websocket client');

await check('a client with default options connects over polling and upgrades to websocket', async () => {
  await sioConnected(dflt);
  const engine = dflt.io.engine;
  if (engine.transport.name !== 'websocket') {
    await within(new Promise((resolve) => engine.once('upgrade', resolve)), STEP_MS, 'the upgrade');
  }
  assertEq(engine.transport.name, 'websocket', 'transport after the upgrade');
  return dflt.id;
}, { critical: true });

await check('a polling-only client and a websocket client connect', async () => {
  await Promise.all([sioConnected(polled), sioConnected(ws)]);
  assertEq(polled.io.engine.transport.name, 'polling', 'transport of the polling client');
}, { critical: true });

await check('messages go both ways between the polling client, the websocket client and the upgraded one', async () => {
  const text = `from polling ${RUN}`;
  polled.emit('message', text);
  for (const s of [ws, dflt]) await s.rec.waitFor((m) => m.event === 'message' && m.args[0] === text, 'the polled message');
  const reply = `from websocket ${RUN}`;
  ws.emit('message', reply, { n: 1 });
  const { msg } = await polled.rec.waitFor((m) => m.event === 'message' && m.args[0] === reply, 'the reply');
  assertEq(msg.args, [reply, { n: 1 }], 'arguments the polling client received');
  const late = `from the upgraded client ${RUN}`;
  dflt.emit('message', late);
  await polled.rec.waitFor((m) => m.event === 'message' && m.args[0] === late, 'the upgraded client\'s message');
  assert(!polled.rec.find((m) => m.args[0] === text), 'the polling client got its own message');
});

await check('a burst of messages reaches the polling client complete and in order', async () => {
  const from = polled.rec.mark();
  for (let i = 0; i < 50; i++) ws.emit('burst', i);
  await polled.rec.waitFor((m) => m.event === 'burst' && m.args[0] === 49, 'the last of the burst', { from });
  const got = polled.rec.between(from, polled.rec.mark()).filter((m) => m.event === 'burst').map((m) => m.args[0]);
  assertEq(got, [...Array(50).keys()], 'the burst');
});

await check('acks come back over polling', async () => {
  assertEq(await emitWithAck(polled, 'message', 'acked'), [], 'ack arguments');
});

await check(`a room the polling client joined hears an HTTP API publish to channel ${room}`, async () => {
  assertEq(await emitWithAck(polled, 'join', room), [], 'join ack');
  const payload = { text: 'to the polled room', run: RUN };
  await okJson(await sdkCall(sdk.trigger(room, 'news', payload), 'trigger'), 'trigger');
  const { msg } = await polled.rec.waitFor((m) => m.event === 'news', 'news in the room');
  assertEq(msg.args, [payload], 'arguments');
});

finish();
