// Webhooks: an HTTP receiver on 127.0.0.1:$WEBHOOK_PORT checks every POST
// with the SDK's webhook helper (signature, key, JSON) and records its events.
// Drives channel_occupied / channel_vacated, member_added / member_removed,
// client_event and cache_miss, then checks that vacated / member_removed come after the
// server's debounce delay, and not at all when the client comes back within
// it (Pusher: "If a user disconnects and then reconnects within 3 seconds,
// neither event will be delivered via webhook").
//
// Server settings needed: the app posts webhooks to
// http://127.0.0.1:$WEBHOOK_PORT/ (any path) for channel_occupied,
// channel_vacated, member_added, member_removed, client_event and
// cache_miss; client events enabled.
// PUSHER_WEBHOOK_MIN_DELAY_MS (default 1000) / PUSHER_WEBHOOK_MAX_DELAY_MS
// (default 6000): the window in which channel_vacated / member_removed must
// arrive after the leave. The "come back" test returns after 200 ms.
import http from 'node:http';
import {
  target, startScenario, check, finish, client, connected, subscribed, serverSdk, envRequired, envInt,
  assert, assertEq, RUN, close, sleep, within, STEP_MS, note, roundtrip,
} from './lib.mjs';

const t = target();
const port = Number(envRequired('WEBHOOK_PORT'));
const MIN_DELAY = envInt('PUSHER_WEBHOOK_MIN_DELAY_MS', 1000);
const MAX_DELAY = envInt('PUSHER_WEBHOOK_MAX_DELAY_MS', 6000);
const FLAP_MS = 200;
startScenario('webhooks', { timeoutMs: Math.max(30000, 3 * MAX_DELAY + 12000) });
const sdk = serverSdk(t);

// ---- receiver
const T0 = Date.now();
const posts = []; // {at, valid, why, events}
const events = []; // {at, name, channel, ...}
const waiters = new Set();
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const at = Date.now();
    let valid = false;
    let why = '';
    let evs = [];
    try {
      const wh = sdk.webhook({ headers: req.headers, rawBody });
      valid = wh.isValid();
      if (!valid) {
        why = `invalid: method ${req.method}, content-type ${req.headers['content-type']}, ` +
          `x-pusher-key ${req.headers['x-pusher-key']}, signature ${req.headers['x-pusher-signature']}`;
      } else {
        evs = wh.getEvents();
        const time = wh.getTime();
        if (!(time instanceof Date) || Math.abs(time.getTime() - at) > 60000) {
          valid = false;
          why = `time_ms ${JSON.stringify(wh.getData().time_ms)} is not a current time`;
        }
      }
    } catch (e) {
      why = `webhook helper threw: ${e.message}`;
    }
    if (req.method !== 'POST') {
      valid = false;
      why = `method ${req.method}`;
    }
    posts.push({ at, valid, why, body: rawBody });
    for (const e of evs) {
      events.push({ ...e, at });
      note(`webhook +${at - T0} ms ${e.name} ${e.channel}${e.user_id ? ` user ${e.user_id}` : ''}${e.event ? ` event ${e.event}` : ''}`);
    }
    if (!valid) note(`webhook +${at - T0} ms REJECTED (${why}): ${rawBody.slice(0, 200)}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
    for (const w of [...waiters]) w();
  });
});
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
server.unref();
note(`webhook receiver on 127.0.0.1:${port}; vacated/member_removed window ${MIN_DELAY}..${MAX_DELAY} ms`);

function waitEvent(pred, what, ms = STEP_MS) {
  let w;
  return within(
    new Promise((resolve) => {
      w = () => {
        const e = events.find(pred);
        if (e) resolve(e);
      };
      waiters.add(w);
      w();
    }),
    ms,
    `webhook ${what}`,
  ).finally(() => waiters.delete(w));
}
const is = (name, channel, extra = {}) => (e) =>
  e.name === name && e.channel === channel && Object.entries(extra).every(([k, v]) => e[k] === v);

const pub = `public-${RUN}-hooked`;
const pres = `presence-${RUN}-hooked`;
const flapPub = `public-${RUN}-flap`;
const flapPres = `presence-${RUN}-flap`;

const a = client(t, 'client A');
const p1 = client(t, 'presence user w1', { user: { id: 'w1', info: { n: 1 } } });
const p2 = client(t, 'presence user w2', { user: { id: 'w2', info: { n: 2 } } });
let f = client(t, 'flapping user wf', { user: { id: 'wf' } });

await check('clients connect', async () => {
  await Promise.all([connected(a), connected(p1), connected(p2), connected(f)]);
}, { critical: true });

let chP1;
await check('subscriptions: channel_occupied for each new channel, member_added for each new presence user', async () => {
  await Promise.all([subscribed(a, pub), subscribed(f, flapPub), subscribed(f, flapPres)]);
  chP1 = (await subscribed(p1, pres)).channel;
  await waitEvent(is('channel_occupied', pub), `channel_occupied ${pub}`);
  await waitEvent(is('channel_occupied', pres), `channel_occupied ${pres}`);
  await waitEvent(is('member_added', pres, { user_id: 'w1' }), `member_added ${pres} w1`);
  await waitEvent(is('channel_occupied', flapPub), `channel_occupied ${flapPub}`);
  await waitEvent(is('member_added', flapPres, { user_id: 'wf' }), `member_added ${flapPres} wf`);
  await subscribed(p2, pres);
  await waitEvent(is('member_added', pres, { user_id: 'w2' }), `member_added ${pres} w2`);
});

await check('every webhook POST so far is valid for the SDK helper (signature, key, content-type, time_ms)', async () => {
  const bad = posts.filter((p) => !p.valid);
  assert(posts.length > 0, 'no webhook arrived');
  assert(bad.length === 0, `${bad.length} invalid POST(s): ${bad.map((p) => p.why).join(' | ')}`);
  return `${posts.length} POSTs, ${events.length} events`;
});

await check('client_event webhook for a presence client event, with event, data, socket_id and user_id', async () => {
  chP1.trigger('client-hello', { from: 'w1' });
  const e = await waitEvent(is('client_event', pres, { event: 'client-hello' }), 'client_event');
  const data = typeof e.data === 'string' ? JSON.parse(e.data) : e.data;
  assertEq(data, { from: 'w1' }, 'client_event data');
  assertEq(e.socket_id, p1.connection.socket_id, 'client_event socket_id');
  assertEq(e.user_id, 'w1', 'client_event user_id');
});

await check('cache_miss webhook when a cache channel with no event yet is subscribed', async () => {
  const cache = `cache-${RUN}-hooked`;
  await subscribed(a, cache);
  await waitEvent(is('cache_miss', cache), `cache_miss ${cache}`);
});

// Leave and flap at the same time, then watch for MAX_DELAY + 1 s.
const marks = {};
await check('leaving: A unsubscribes, w2 disconnects, wf disconnects and comes back within 200 ms', async () => {
  a.unsubscribe(pub);
  await roundtrip(a);
  marks.vacate = Date.now();
  close(p2);
  marks.remove = Date.now();
  close(f);
  await sleep(FLAP_MS);
  f = client(t, 'flapping user wf again', { user: { id: 'wf' } });
  await connected(f);
  await Promise.all([subscribed(f, flapPub), subscribed(f, flapPres)]);
  marks.back = Date.now();
  assert(marks.back - marks.remove < MIN_DELAY, `coming back took ${marks.back - marks.remove} ms, not within the delay`);
  return `back after ${marks.back - marks.remove} ms`;
});

await check(`channel_vacated for ${pub} arrives after the delay (${MIN_DELAY}..${MAX_DELAY} ms)`, async () => {
  const e = await waitEvent(is('channel_vacated', pub), 'channel_vacated', MAX_DELAY + 1500);
  const d = e.at - marks.vacate;
  assert(d >= MIN_DELAY, `arrived after ${d} ms: not delayed`);
  assert(d <= MAX_DELAY, `arrived after ${d} ms: too late`);
  return `${d} ms`;
});

await check(`member_removed for w2 arrives after the delay (${MIN_DELAY}..${MAX_DELAY} ms), the channel stays occupied`, async () => {
  const e = await waitEvent(is('member_removed', pres, { user_id: 'w2' }), 'member_removed w2', MAX_DELAY + 1500);
  const d = e.at - marks.remove;
  assert(d >= MIN_DELAY, `arrived after ${d} ms: not delayed`);
  assert(d <= MAX_DELAY, `arrived after ${d} ms: too late`);
  assert(!events.some(is('channel_vacated', pres)), `channel_vacated for ${pres} although w1 is still there`);
  return `${d} ms`;
});

await check('no webhook for the connection that came back within the delay (no vacated/occupied, no removed/added)', async () => {
  const wait = marks.remove + MAX_DELAY + 1000 - Date.now();
  if (wait > 0) await sleep(wait);
  const flap = events.filter((e) => (e.channel === flapPub || e.channel === flapPres) && e.at >= marks.remove);
  assert(flap.length === 0, `got ${flap.map((e) => `${e.name} ${e.channel} +${e.at - marks.remove} ms`).join(', ')}`);
});

await check('every webhook POST was valid', async () => {
  const bad = posts.filter((p) => !p.valid);
  assert(bad.length === 0, `${bad.length} invalid POST(s): ${bad.map((p) => p.why).join(' | ')}`);
  return `${posts.length} POSTs, ${events.length} events`;
});

note(`arrived: ${events.map((e) => `${e.name}(${e.channel.replace(`-${RUN}`, '')}${e.user_id ? `,${e.user_id}` : ''})@+${e.at - T0}`).join(' ')}`);
finish();
