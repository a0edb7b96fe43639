// Socket.IO chat on the main namespace: websocket-only clients connect, a
// message reaches every other client but not its sender, any event name is
// relayed, and ack callbacks fire once the server took the event.
import { target, startScenario, check, skip, finish, assert, assertEq, RUN, envInt, sleep } from './lib.mjs';
import { sioClient, sioConnected, emitWithAck } from './sio_lib.mjs';

const t = target();
startScenario('socketio-chat');

const a = sioClient(t, 'client A');
const b = sioClient(t, 'client B');

await check('two websocket-only socket.io-client 4 clients connect (socket ids, transport websocket)', async () => {
  const [ia, ib] = await Promise.all([sioConnected(a), sioConnected(b)]);
  assert(typeof ia === 'string' && ia.length === 20, `socket id ${ia} is not 20 characters`);
  assert(ia !== ib, 'both sockets got the same id');
  assert(a.io.engine.transport.name === 'websocket', `transport is ${a.io.engine.transport.name}`);
  assert(a.io.engine.id !== ia, 'the Engine.IO session id is not the socket id');
  return `${ia}, ${ib}`;
}, { critical: true });

await check("socket.emit('message', text) reaches the other client and not the sender", async () => {
  const fromA = a.rec.mark();
  const text = `hello from A ${RUN}`;
  a.emit('message', text);
  const { msg } = await b.rec.waitFor((m) => m.event === 'message' && m.args[0] === text, 'A\'s message');
  assertEq(msg.args, [text], 'arguments B received');
  // B answers; A gets the answer after anything the server sent it before.
  const reply = `reply from B ${RUN}`;
  b.emit('message', reply);
  const { index } = await a.rec.waitFor((m) => m.event === 'message' && m.args[0] === reply, 'B\'s reply', { from: fromA });
  const echoed = a.rec.between(fromA, index).filter((m) => m.event === 'message' && m.args[0] === text);
  assert(echoed.length === 0, 'the sender received its own message');
});

await check('any event name is relayed with all its arguments (objects, numbers, several)', async () => {
  const args = [{ user: 'ada', text: 'hi', tags: ['x'] }, 42, null, 'last'];
  a.emit('chat message', ...args);
  const { msg } = await b.rec.waitFor((m) => m.event === 'chat message', "'chat message'");
  assertEq(msg.args, args, 'arguments');
});

await check('an ack callback fires once the server took the event, with no arguments', async () => {
  const ackArgs = await emitWithAck(a, 'message', `acked ${RUN}`);
  assertEq(ackArgs, [], 'ack arguments');
  await b.rec.waitFor((m) => m.event === 'message' && m.args[0] === `acked ${RUN}`, 'the acked message');
});

await check('emitWithAck with a timeout resolves (socket.timeout(ms).emitWithAck)', async () => {
  const result = await a.timeout(5000).emitWithAck('join', `room-${RUN}`);
  assert(result === undefined, `join resolved with ${JSON.stringify(result)}`);
});

const idleMs = envInt('SIO_IDLE_MS', 0);
if (idleMs > 0) {
  await check(`the session outlives twice the server's idle timeout (${idleMs} ms) by answering its pings`, async () => {
    let pings = 0;
    a.io.engine.on('ping', () => pings++);
    await sleep(2 * idleMs);
    assert(a.connected && b.connected, 'a client was disconnected');
    assert(pings >= 1, 'no Engine.IO ping arrived');
    a.emit('message', `after the wait ${RUN}`);
    await b.rec.waitFor((m) => m.args[0] === `after the wait ${RUN}`, 'a message after the wait');
    return `${pings} pings`;
  });
} else {
  skip('the session outlives the idle timeout', 'SIO_IDLE_MS is not set');
}

await check('a client that disconnects stops receiving; the other goes on', async () => {
  const gone = new Promise((resolve) => b.once('disconnect', resolve));
  b.disconnect();
  await gone;
  const c = sioClient(t, 'client C');
  await sioConnected(c);
  a.emit('message', `after B left ${RUN}`);
  await c.rec.waitFor((m) => m.event === 'message' && m.args[0] === `after B left ${RUN}`, 'message after B left');
});

finish();
