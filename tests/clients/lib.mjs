// Shared plumbing for the Pusher real-client scenarios.
//
// Every scenario is a standalone program: it reads its target from the
// environment (see README.md), prints one line per checked step
// ("ok   <check>" / "FAIL <check>: <why>" / "skip <check>: <why>"), ends with
// "N passed, N failed[, N skipped]" and exits 0 only when nothing failed.
// A global timeout turns a hang into a failure that names the running check.
//
// Clients are the real pusher-js (Node build); channel authorization and user
// authentication are signed by the real `pusher` server SDK, never by hand.

import { createRequire } from 'node:module';
import PusherJs from 'pusher-js';
import PusherServer from 'pusher';

export { PusherJs, PusherServer };
export const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------
// Environment

export function envRequired(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    console.log(`FAIL setup: environment variable ${name} is required (see tests/clients/README.md)`);
    process.exit(2);
  }
  return v;
}

export function envInt(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) {
    console.log(`FAIL setup: ${name}=${v} is not a number`);
    process.exit(2);
  }
  return n;
}

export function envFlag(name) {
  const v = (process.env[name] || '').toLowerCase();
  return v === '1' || v === 'true' || v === 'yes';
}

// The fixed test value used when PUSHER_ENCRYPTION_MASTER_KEY_BASE64 is unset:
// base64 of the 32 bytes "fanout-test-encryption-master-k!".
export const DEFAULT_ENCRYPTION_MASTER_KEY_BASE64 = 'ZmFub3V0LXRlc3QtZW5jcnlwdGlvbi1tYXN0ZXItayE=';

export function target() {
  const host = envRequired('PUSHER_HOST');
  const port = envInt('PUSHER_PORT', NaN);
  if (!Number.isInteger(port)) envRequired('PUSHER_PORT');
  return {
    host,
    port,
    appId: envRequired('PUSHER_APP_ID'),
    key: envRequired('PUSHER_APP_KEY'),
    secret: envRequired('PUSHER_APP_SECRET'),
    encryptionMasterKeyBase64:
      process.env.PUSHER_ENCRYPTION_MASTER_KEY_BASE64 || DEFAULT_ENCRYPTION_MASTER_KEY_BASE64,
  };
}

export const STEP_MS = envInt('PUSHER_STEP_TIMEOUT_MS', 5000);
export const DEBUG = envFlag('PUSHER_DEBUG');

// A short random tag so that reruns against a long-lived server do not see
// each other's channels.
export const RUN = Math.random().toString(36).slice(2, 8);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Check runner

const results = [];
let running = 'setup';
let finished = false;

export function startScenario(name, { timeoutMs } = {}) {
  const ms = envInt('PUSHER_TIMEOUT_MS', timeoutMs ?? 20000);
  const t = setTimeout(() => {
    console.log(`FAIL ${running}: global timeout of ${ms} ms reached (scenario ${name} hung)`);
    results.push({ name: running, ok: false });
    finish();
  }, ms);
  t.unref();
  process.on('unhandledRejection', (e) => {
    if (DEBUG) console.log(`# unhandled rejection: ${e && e.stack ? e.stack : e}`);
  });
  console.log(`# scenario ${name} (run ${RUN}), global timeout ${ms} ms`);
}

function describe(e) {
  if (e === undefined || e === null) return String(e);
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

// Runs one check. `fn` may return a string, printed as a note. A failed check
// is reported and the scenario goes on, unless `critical` is set (then the
// scenario ends: later checks would only cascade).
export async function check(name, fn, { critical = false } = {}) {
  if (finished) return false;
  running = name;
  try {
    const note = await fn();
    if (finished) return false;
    console.log(`ok   ${name}${note ? ` (${note})` : ''}`);
    results.push({ name, ok: true });
    return true;
  } catch (e) {
    if (finished) return false;
    console.log(`FAIL ${name}: ${describe(e)}`);
    if (DEBUG && e && e.stack) console.log(e.stack.replace(/^/gm, '# '));
    results.push({ name, ok: false });
    if (critical) {
      console.log(`# ${name} is needed by the rest of the scenario: stopping here`);
      finish();
    }
    return false;
  } finally {
    running = 'between checks';
  }
}

export function skip(name, why) {
  console.log(`skip ${name}: ${why}`);
  results.push({ name, ok: true, skipped: true });
}

export function note(line) {
  console.log(`# ${line}`);
}

export function finish() {
  if (finished) return;
  finished = true;
  const failed = results.filter((r) => !r.ok);
  const skipped = results.filter((r) => r.skipped);
  const passed = results.length - failed.length - skipped.length;
  if (failed.length) console.log(`# failed checks: ${failed.map((r) => r.name).join('; ')}`);
  console.log(`${passed} passed, ${failed.length} failed${skipped.length ? `, ${skipped.length} skipped` : ''}`);
  for (const c of openClients) {
    try {
      c.disconnect();
    } catch {}
  }
  // stdout may be a pipe: let it drain before exiting.
  process.stdout.write('', () => process.exit(failed.length ? 1 : 0));
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// JSON with object keys sorted: key order carries no meaning in JSON, and
// servers re-serialize payloads.
export function canonical(v) {
  return JSON.stringify(v, (_, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]))
      : x,
  );
}

export function assertEq(actual, expected, what) {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

// Rejects after `ms` with a message naming what was awaited.
export function within(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// ---------------------------------------------------------------------------
// Server SDK (npm `pusher`)

export function serverSdk(t, overrides = {}) {
  return new PusherServer({
    appId: t.appId,
    key: t.key,
    secret: t.secret,
    host: t.host,
    port: String(t.port),
    useTLS: false,
    encryptionMasterKeyBase64: t.encryptionMasterKeyBase64,
    ...overrides,
  });
}

// Reads a fetch Response from the SDK: checks the HTTP status, returns JSON.
export async function okJson(res, what) {
  assert(res && typeof res.status === 'number', `${what}: no HTTP response`);
  const text = await res.text();
  assert(res.status === 200, `${what}: HTTP ${res.status} ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what}: body is not JSON: ${text}`);
  }
}

// The SDK rejects with RequestError (status, body) on non-2xx: unwrap it.
export async function sdkCall(promise, what) {
  try {
    return await promise;
  } catch (e) {
    if (e && e.status !== undefined) throw new Error(`${what}: HTTP ${e.status} ${e.body ?? ''}`.trim());
    throw new Error(`${what}: ${describe(e)}`);
  }
}

// ---------------------------------------------------------------------------
// Clients (pusher-js)

export const openClients = new Set();

// Creates a pusher-js client. `user` ({id, info, watchlist}) is what the
// authorizer puts into presence channel_data and signin user_data. `authSdk`
// signs authorizations (pass a server SDK with a wrong secret to forge).
export function client(t, label, { user, authSdk, key, extra = {} } = {}) {
  const sdk = authSdk || serverSdk(t);
  const c = new PusherJs(key || t.key, {
    cluster: '',
    wsHost: t.host,
    wsPort: t.port,
    wssPort: t.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const presence = channelName.startsWith('presence-')
            ? { user_id: user ? user.id : socketId, user_info: user ? user.info : undefined }
            : undefined;
          callback(null, sdk.authorizeChannel(socketId, channelName, presence));
        } catch (e) {
          callback(e, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => {
        try {
          assert(user, `${label}: signin without a user`);
          const userData = { id: user.id };
          if (user.info) userData.user_info = user.info;
          if (user.watchlist) userData.watchlist = user.watchlist;
          callback(null, sdk.authenticateUser(socketId, userData));
        } catch (e) {
          callback(e, null);
        }
      },
    },
    ...extra,
  });
  c.label = label;
  c.rec = new Recorder(c, label);
  openClients.add(c);
  return c;
}

// Resolves with the socket id once the client is connected.
export function connected(c, ms = STEP_MS) {
  if (c.connection.state === 'connected') return Promise.resolve(c.connection.socket_id);
  return within(
    new Promise((resolve, reject) => {
      const onState = ({ current }) => {
        if (current === 'connected') {
          c.connection.unbind('state_change', onState);
          resolve(c.connection.socket_id);
        } else if (current === 'failed' || current === 'unavailable') {
          reject(new Error(`${c.label}: connection state ${current}`));
        }
      };
      c.connection.bind('state_change', onState);
    }),
    ms,
    `${c.label} to connect`,
  );
}

// Resolves with the first emission of `event` on a pusher-js emitter (a
// channel, the client, client.user, client.user.watchlist).
export function once(emitter, event, what, ms = STEP_MS, pred = () => true) {
  return within(
    new Promise((resolve) => {
      const cb = (data, metadata) => {
        if (!pred(data, metadata)) return;
        emitter.unbind(event, cb);
        resolve({ data, metadata });
      };
      emitter.bind(event, cb);
    }),
    ms,
    what,
  );
}

// Subscribes and waits for pusher:subscription_succeeded; fails fast on
// pusher:subscription_error.
export async function subscribed(c, channelName, ms = STEP_MS) {
  const ch = c.subscribe(channelName);
  const { data } = await within(
    new Promise((resolve, reject) => {
      ch.bind('pusher:subscription_succeeded', (d) => resolve({ data: d }));
      ch.bind('pusher:subscription_error', (e) =>
        reject(new Error(`${c.label}: subscription_error on ${channelName}: ${describe(e)}`)),
      );
      c.rec.onError((e) => reject(new Error(`${c.label}: pusher:error while subscribing to ${channelName}: ${describe(e)}`)));
    }),
    ms,
    `${c.label} subscription_succeeded on ${channelName}`,
  );
  return { channel: ch, data };
}

// Records every protocol message a client receives, in order, internal ones
// included (pusher_internal:*), so that "X did not happen before Y" can be
// checked without sleeping for an arbitrary time.
// Messages in the order they arrived, so that "X did not arrive before Y" is
// checked without sleeping; a subclass feeds it with `record`.
export class Log {
  constructor(label) {
    this.label = label;
    this.msgs = [];
    this.waiters = [];
  }
  record(msg) {
    this.msgs.push(msg);
    this.wake();
  }
  wake() {
    for (const w of [...this.waiters]) w();
  }
  mark() {
    return this.msgs.length;
  }
  find(pred, from = 0) {
    for (let i = from; i < this.msgs.length; i++) if (pred(this.msgs[i])) return { msg: this.msgs[i], index: i };
    return null;
  }
  between(from, to) {
    return this.msgs.slice(from, to);
  }
  // Waits for a message matching pred at or after index `from`.
  waitFor(pred, what, { from = 0, ms = STEP_MS } = {}) {
    const hit = this.find(pred, from);
    if (hit) return Promise.resolve(hit);
    let w;
    return within(
      new Promise((resolve) => {
        w = () => {
          const h = this.find(pred, from);
          if (h) resolve(h);
        };
        this.waiters.push(w);
      }),
      ms,
      `${this.label}: ${what}`,
    ).finally(() => {
      this.waiters = this.waiters.filter((x) => x !== w);
    });
  }
}

// Every message a pusher-js client receives.
export class Recorder extends Log {
  constructor(c, label) {
    super(label);
    this.errorCbs = [];
    c.connection.bind('message', (m) => {
      if (DEBUG) console.log(`# ${label} <- ${JSON.stringify(m)}`);
      this.msgs.push({ ...m, at: Date.now() });
      if (m.event === 'pusher:error') for (const cb of this.errorCbs.splice(0)) cb(m.data);
      this.wake();
    });
  }
  onError(cb) {
    this.errorCbs.push(cb);
  }
}

// Triggers a unique "sentinel" event on `channel` through the HTTP API and
// waits until every recorder got it. Returns the index of the sentinel in
// each recorder. A message that would have been delivered to a client before
// the sentinel (an echo, an excluded event, a member_added...) is then known
// not to have been sent if it is not found before that index.
export async function sentinel(sdk, channel, recorders, label = 'sentinel') {
  const id = `${label}-${Math.random().toString(36).slice(2, 10)}`;
  const res = await sdkCall(sdk.trigger(channel, 'sentinel', { id }), `trigger sentinel on ${channel}`);
  assert(res.status === 200, `sentinel trigger HTTP ${res.status}`);
  const idx = [];
  for (const r of recorders) {
    const { index } = await r.waitFor(
      (m) => m.event === 'sentinel' && m.channel === channel && m.data && m.data.id === id,
      `sentinel event on ${channel}`,
    );
    idx.push(index);
  }
  return idx;
}

export function disconnected(c, ms = STEP_MS) {
  return within(
    new Promise((resolve) => {
      if (c.connection.state !== 'connected' && c.connection.state !== 'connecting') return resolve();
      const onState = ({ current }) => {
        if (current !== 'connected') {
          c.connection.unbind('state_change', onState);
          resolve(current);
        }
      };
      c.connection.bind('state_change', onState);
    }),
    ms,
    `${c.label} to leave the connected state`,
  );
}

export function close(c) {
  c.disconnect();
  openClients.delete(c);
}

// pusher:ping -> pusher:pong. The server handles one connection's messages in
// order, so after the pong every message sent before the ping was processed.
export async function roundtrip(c, ms = STEP_MS) {
  const from = c.rec.mark();
  c.send_event('pusher:ping', {});
  await c.rec.waitFor((m) => m.event === 'pusher:pong', 'pusher:pong', { from, ms });
}

// A raw WebSocket speaking the Pusher protocol by hand, for what pusher-js
// would not send (no auth, bad channel names) or hides (close codes). Node 20
// has no global WebSocket without a flag; this is the WebSocket client that
// the pusher-js Node build bundles (faye-websocket), reached through
// Pusher.Runtime, so no extra package is needed.
export class RawSocket {
  constructor(t, label, { key, path } = {}) {
    this.label = label;
    this.url = `ws://${t.host}:${t.port}${path || `/app/${key || t.key}?protocol=7&client=js&version=8.6.0&flash=false`}`;
    this.msgs = [];
    this.waiters = [];
    this.closeEvent = null;
    this.ws = PusherJs.Runtime.createWebSocket(this.url);
    this.closed = new Promise((resolve) => {
      this.ws.onclose = (e) => {
        this.closeEvent = { code: e.code, reason: e.reason, at: Date.now() };
        if (DEBUG) console.log(`# ${label} closed ${e.code} ${e.reason}`);
        resolve(this.closeEvent);
        for (const w of [...this.waiters]) w();
      };
    });
    this.ws.onmessage = (e) => {
      if (DEBUG) console.log(`# ${label} <- ${e.data}`);
      let m;
      try {
        m = JSON.parse(e.data);
        if (typeof m.data === 'string') {
          try {
            m.data = JSON.parse(m.data);
          } catch {}
        }
      } catch {
        m = { unparsable: e.data };
      }
      this.msgs.push(m);
      for (const w of [...this.waiters]) w();
    };
  }
  send(obj) {
    if (DEBUG) console.log(`# ${this.label} -> ${JSON.stringify(obj)}`);
    this.ws.send(JSON.stringify(obj));
  }
  mark() {
    return this.msgs.length;
  }
  waitFor(pred, what, { from = 0, ms = STEP_MS } = {}) {
    let w;
    return within(
      new Promise((resolve, reject) => {
        w = () => {
          for (let i = from; i < this.msgs.length; i++) if (pred(this.msgs[i])) return resolve({ msg: this.msgs[i], index: i });
          if (this.closeEvent) reject(new Error(`${this.label}: connection closed (${this.closeEvent.code}) before ${what}`));
        };
        this.waiters.push(w);
        w();
      }),
      ms,
      `${this.label}: ${what}`,
    ).finally(() => {
      this.waiters = this.waiters.filter((x) => x !== w);
    });
  }
  async established() {
    const { msg } = await this.waitFor((m) => m.event === 'pusher:connection_established', 'pusher:connection_established');
    this.socketId = msg.data.socket_id;
    return msg.data;
  }
  async ping() {
    const from = this.mark();
    this.send({ event: 'pusher:ping', data: {} });
    await this.waitFor((m) => m.event === 'pusher:pong', 'pusher:pong', { from });
  }
  close() {
    try {
      this.ws.close();
    } catch {}
  }
}
