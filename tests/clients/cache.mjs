// Cache channels: a subscriber to a cache channel with no event yet gets
// pusher:cache_miss; once an event was triggered, a new subscriber receives
// that last event right after subscribing, without any new trigger, and the
// npm SDK's generic `get` reads it from fanout's history endpoint. Public and
// private cache channels.
import {
  target, startScenario, check, finish, client, connected, serverSdk, sdkCall, okJson, once, assertEq, RUN,
} from './lib.mjs';

const t = target();
startScenario('cache');
const sdk = serverSdk(t);

const a = client(t, 'client A');
const b = client(t, 'client B');

await check('clients connect', async () => {
  await Promise.all([connected(a), connected(b)]);
}, { critical: true });

// Binds before subscribing: the cache event comes right after subscription_succeeded.
function subscribeWatching(c, name, event) {
  const channel = c.subscribe(name);
  const got = once(channel, event, `${c.label}: ${event} on ${name}`);
  const succeeded = once(channel, 'pusher:subscription_succeeded', `${c.label}: subscription_succeeded on ${name}`);
  return { channel, got, succeeded };
}

for (const name of [`cache-${RUN}`, `private-cache-${RUN}`]) {
  let channelA;
  await check(`${name}: the first subscriber gets pusher:cache_miss`, async () => {
    const { channel, got, succeeded } = subscribeWatching(a, name, 'pusher:cache_miss');
    await succeeded;
    await got;
    channelA = channel;
  }, { critical: true });

  await check(`${name}: a triggered event reaches the subscriber`, async () => {
    const live = once(channelA, 'price', `client A: price on ${name}`);
    await okJson(await sdkCall(sdk.trigger(name, 'price', { v: 1 }), 'trigger'), 'trigger');
    assertEq((await live).data, { v: 1 }, 'live data');
  });

  await check(`${name}: a new subscriber receives the last event at once, with no new trigger`, async () => {
    const { got, succeeded } = subscribeWatching(b, name, 'price');
    await succeeded;
    assertEq((await got).data, { v: 1 }, 'cached data');
  });

  await check(`${name}: the SDK's generic get reads it from the history endpoint`, async () => {
    const res = await sdkCall(sdk.get({ path: `/channels/${name}/history`, params: { limit: 5 } }), 'get history');
    const body = await okJson(res, 'get history');
    assertEq(body.offset, 1, 'stream offset');
    assertEq(body.messages.map((m) => [m.offset, m.event, JSON.parse(m.data)]), [[1, 'price', { v: 1 }]], 'messages');
  });
}

finish();
