// Laravel Echo 2 (broadcaster 'pusher') on top of pusher-js: public channel
// listen, private channel, presence join/here/joining/leaving, whispers.
//
// Server settings needed: client events enabled (whispers are client events).
// Channel names are the Laravel-style literals: orders, private-chat.1,
// presence-room.1.
import Echo from 'laravel-echo';
import {
  target, startScenario, check, finish, client, connected, serverSdk, okJson, sdkCall,
  assertEq, within, STEP_MS, close,
} from './lib.mjs';

const t = target();
startScenario('echo');
const sdk = serverSdk(t);

const alice = { id: '1', info: { id: 1, name: 'Alice' } };
const bob = { id: '2', info: { id: 2, name: 'Bob' } };

function echoFor(user, label) {
  const pusher = client(t, label, { user });
  const echo = new Echo({ broadcaster: 'pusher', client: pusher, key: t.key });
  return { echo, pusher };
}

// Resolves the first time `register(cb)` calls back.
function first(register, what, ms = STEP_MS) {
  return within(new Promise((resolve) => register((...args) => resolve(args))), ms, what);
}
function subscribedEcho(channel, what) {
  return first((cb) => channel.subscribed(cb), `${what}: subscribed`).then(() => channel);
}

const e1 = echoFor(alice, 'echo user 1');
const e2 = echoFor(bob, 'echo user 2');

await check('two Echo instances connect through pusher-js', async () => {
  await Promise.all([connected(e1.pusher), connected(e2.pusher)]);
  assertEq(e1.echo.connectionStatus(), 'connected', 'Echo.connectionStatus()');
  assertEq(e1.echo.socketId(), e1.pusher.connection.socket_id, 'Echo.socketId()');
}, { critical: true });

await check("Echo.channel('orders').listen('.OrderShipped') receives an SDK-triggered OrderShipped", async () => {
  const orders = e1.echo.channel('orders');
  await subscribedEcho(orders, 'orders');
  const got = first((cb) => orders.listen('.OrderShipped', cb), 'OrderShipped');
  await okJson(await sdkCall(sdk.trigger('orders', 'OrderShipped', { order: { id: 7 } }), 'trigger'), 'trigger');
  const [data] = await got;
  assertEq(data, { order: { id: 7 } }, 'OrderShipped payload');
});

await check("listen('OrderShipped') without the dot gets the namespaced App\\Events\\OrderShipped", async () => {
  const orders = e1.echo.channel('orders');
  const got = first((cb) => orders.listen('OrderShipped', cb), 'App\\Events\\OrderShipped');
  await okJson(await sdkCall(sdk.trigger('orders', 'App\\Events\\OrderShipped', { id: 8 }), 'trigger'), 'trigger');
  const [data] = await got;
  assertEq(data, { id: 8 }, 'payload');
});

await check("Echo.private('chat.1') subscribes with SDK auth and receives MessageSent", async () => {
  const chat = e1.echo.private('chat.1');
  await Promise.race([
    subscribedEcho(chat, 'private-chat.1'),
    first((cb) => chat.error(cb), 'chat error', STEP_MS + 1000).then(([e]) => {
      throw new Error(`subscription error: ${JSON.stringify(e)}`);
    }),
  ]);
  const got = first((cb) => chat.listen('.MessageSent', cb), 'MessageSent');
  await okJson(await sdkCall(sdk.trigger('private-chat.1', 'MessageSent', { body: 'hi' }), 'trigger'), 'trigger');
  const [data] = await got;
  assertEq(data, { body: 'hi' }, 'payload');
});

let room1, room2;
await check("Echo.join('room.1').here() lists user 1 alone, then joining() fires for user 2", async () => {
  room1 = e1.echo.join('room.1');
  const [users1] = await first((cb) => room1.here(cb), 'here() for user 1');
  assertEq(users1, [alice.info], 'here() users for user 1');
  const joining = first((cb) => room1.joining(cb), 'joining() on user 1');
  room2 = e2.echo.join('room.1');
  const [users2] = await first((cb) => room2.here(cb), 'here() for user 2');
  const sorted = [...users2].sort((a, b) => a.id - b.id);
  assertEq(sorted, [alice.info, bob.info], 'here() users for user 2');
  const [joined] = await joining;
  assertEq(joined, bob.info, 'joining() user');
});

await check('whisper / listenForWhisper (client events) between the two users', async () => {
  const got = first((cb) => room1.listenForWhisper('typing', cb), 'whisper on user 1');
  room2.whisper('typing', { name: 'Bob', typing: true });
  const [data] = await got;
  assertEq(data, { name: 'Bob', typing: true }, 'whisper payload');
});

await check('whisper on a private channel reaches the other Echo', async () => {
  const chat2 = e2.echo.private('chat.1');
  await subscribedEcho(chat2, 'private-chat.1 for user 2');
  const chat1 = e1.echo.private('chat.1');
  const got = first((cb) => chat1.listenForWhisper('read', cb), 'whisper on user 1');
  chat2.whisper('read', { upTo: 3 });
  const [data] = await got;
  assertEq(data, { upTo: 3 }, 'whisper payload');
});

await check("leaving(): user 1 sees user 2 leave when user 2 calls Echo.leave('room.1')", async () => {
  const leaving = first((cb) => room1.leaving(cb), 'leaving() on user 1');
  e2.echo.leave('room.1');
  const [left] = await leaving;
  assertEq(left, bob.info, 'leaving() user');
});

await check('leaving() also fires when the other user disconnects', async () => {
  room2 = e2.echo.join('room.1');
  await first((cb) => room2.here(cb), 'here() for user 2 again');
  const leaving = first((cb) => room1.leaving(cb), 'leaving() on user 1');
  e2.echo.disconnect();
  close(e2.pusher);
  const [left] = await leaving;
  assertEq(left, bob.info, 'leaving() user');
});

finish();
