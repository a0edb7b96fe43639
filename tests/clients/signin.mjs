// User authentication (pusher.signin()), server-to-user events, watchlists,
// terminating a user's connections.
//
// Server settings needed: user authentication accepted on the app (Pusher
// always accepts pusher:signin; some servers gate it behind a flag), and
// watchlist events enabled. PUSHER_SKIP_WATCHLIST=1 skips the watchlist
// checks: use it only for a reference server that lacks watchlists.
import {
  target, startScenario, check, finish, client, connected, serverSdk, skip, okJson, sdkCall,
  assert, assertEq, once, close, envFlag, within, STEP_MS, disconnected, sleep,
} from './lib.mjs';

const t = target();
startScenario('signin');
const sdk = serverSdk(t);
const skipWatchlist = envFlag('PUSHER_SKIP_WATCHLIST');

const user1 = { id: '1', info: { name: 'Ada' }, watchlist: ['2'] };
const user2 = { id: '2', info: { name: 'Bob' } };
const u1a = client(t, 'user 1 conn a', { user: user1 });
const u1b = client(t, 'user 1 conn b', { user: user1 });

function signedIn(c) {
  return within(
    new Promise((resolve) => {
      c.bind('pusher:signin_success', (data) => resolve(data));
      c.signin();
    }),
    STEP_MS,
    `${c.label}: pusher:signin_success`,
  );
}

// Watchlist events are recorded from the start so none is missed.
const watch = new Map();
function recordWatchlist(c) {
  const log = [];
  watch.set(c, log);
  c.user.watchlist.bind('online', (e) => log.push({ name: 'online', ids: e.user_ids, at: Date.now() }));
  c.user.watchlist.bind('offline', (e) => log.push({ name: 'offline', ids: e.user_ids, at: Date.now() }));
  return log;
}
function waitWatch(c, name, id, from, what) {
  const log = watch.get(c);
  return within(
    new Promise((resolve) => {
      const tick = () => {
        const hit = log.slice(from).find((e) => e.name === name && e.ids.includes(id));
        if (hit) return resolve(hit);
        setTimeout(tick, 20);
      };
      tick();
    }),
    STEP_MS,
    `${c.label}: watchlist ${name} for user ${id} (${what})`,
  );
}
recordWatchlist(u1a);
recordWatchlist(u1b);

await check('two connections of user 1 connect', async () => {
  await Promise.all([connected(u1a), connected(u1b)]);
}, { critical: true });

await check('pusher.signin() with an SDK-signed authenticateUser: pusher:signin_success with the user data', async () => {
  const [da, db] = await Promise.all([signedIn(u1a), signedIn(u1b)]);
  for (const d of [da, db]) {
    const ud = JSON.parse(d.user_data);
    assertEq(ud.id, '1', 'user_data.id');
    assertEq(ud.watchlist, ['2'], 'user_data.watchlist');
  }
  await Promise.all([u1a.user.signinDonePromise, u1b.user.signinDonePromise]);
  assertEq(u1a.user.user_data && u1a.user.user_data.id, '1', 'pusher.user.user_data.id');
}, { critical: true });

await check('the server-to-user channel subscription (#server-to-user-1) succeeds', async () => {
  for (const c of [u1a, u1b]) {
    await c.rec.waitFor(
      (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === '#server-to-user-1',
      'subscription_succeeded on #server-to-user-1',
    );
  }
});

await check('sendToUser reaches every connection of that user', async () => {
  const ga = once(u1a.user, 'notice', 'user event on conn a');
  const gb = once(u1b.user, 'notice', 'user event on conn b');
  await okJson(await sdkCall(sdk.sendToUser('1', 'notice', { text: 'for user 1' }), 'sendToUser'), 'sendToUser');
  const [ea, eb] = await Promise.all([ga, gb]);
  assertEq(ea.data, { text: 'for user 1' }, 'conn a data');
  assertEq(eb.data, { text: 'for user 1' }, 'conn b data');
});

let u2a, u2b;
let wFromA = 0;
let wFromB = 0;
await check('user 2 signs in on two connections', async () => {
  u2a = client(t, 'user 2 conn a', { user: user2 });
  u2b = client(t, 'user 2 conn b', { user: user2 });
  await Promise.all([connected(u2a), connected(u2b)]);
  wFromA = watch.get(u1a).length;
  wFromB = watch.get(u1b).length;
  await Promise.all([signedIn(u2a), signedIn(u2b)]);
}, { critical: true });

await check('sendToUser for user 2 does not reach user 1', async () => {
  const g = once(u2a.user, 'only-2', 'user event on user 2');
  const from = u1a.rec.mark();
  await okJson(await sdkCall(sdk.sendToUser('2', 'only-2', {}), 'sendToUser'), 'sendToUser');
  await g;
  // Then an event for user 1: it must be the next user event user 1 sees.
  const g1 = once(u1a.user, 'marker', 'marker on user 1');
  await sdkCall(sdk.sendToUser('1', 'marker', {}), 'sendToUser');
  await g1;
  const leaked = u1a.rec.between(from).filter((m) => m.event === 'only-2');
  assert(leaked.length === 0, 'user 1 received an event sent to user 2');
});

if (skipWatchlist) {
  skip('watchlist: online when user 2 signs in', 'PUSHER_SKIP_WATCHLIST=1');
  skip('watchlist: offline only when the last connection of user 2 goes', 'PUSHER_SKIP_WATCHLIST=1');
} else {
  await check('watchlist: user 1 (watching user 2) gets an online event on every connection when user 2 signs in', async () => {
    await Promise.all([
      waitWatch(u1a, 'online', '2', wFromA, 'after user 2 signed in'),
      waitWatch(u1b, 'online', '2', wFromB, 'after user 2 signed in'),
    ]);
  });

  await check('watchlist: offline only when the last connection of user 2 goes', async () => {
    const from = watch.get(u1a).length;
    close(u2a);
    await sleep(1000);
    const early = watch.get(u1a).slice(from).filter((e) => e.name === 'offline');
    assert(early.length === 0, 'offline arrived while user 2 still had a connection');
    close(u2b);
    const closedAt = Date.now();
    const hit = await waitWatch(u1a, 'offline', '2', from, 'after the last connection of user 2 closed');
    return `offline ${hit.at - closedAt} ms after the close`;
  });
}

await check('terminateUserConnections(1) closes every connection of user 1', async () => {
  const other = client(t, 'user 3', { user: { id: '3' } });
  await connected(other);
  await signedIn(other);
  const gone = Promise.all([disconnected(u1a), disconnected(u1b)]);
  await okJson(await sdkCall(sdk.terminateUserConnections('1'), 'terminateUserConnections'), 'terminateUserConnections');
  await gone;
  await sleep(200);
  assertEq(other.connection.state, 'connected', 'user 3 connection state');
});

finish();
