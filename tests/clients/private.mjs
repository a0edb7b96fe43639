// Private and private-encrypted channels: SDK-signed auth, forged auth,
// client events, end-to-end encrypted triggers decrypted by pusher-js.
//
// Server settings needed: client events enabled on the app.
// PUSHER_ENCRYPTION_MASTER_KEY_BASE64 is only used by the SDKs on both ends
// (the server never sees it); a fixed test value is used when unset.
import {
  target, startScenario, check, finish, client, connected, subscribed, serverSdk, sentinel, okJson, sdkCall,
  assert, assertEq, RUN, once, roundtrip, within, STEP_MS,
} from './lib.mjs';

const t = target();
startScenario('private');
const sdk = serverSdk(t);

const ch = `private-${RUN}-chat`;
const enc = `private-encrypted-${RUN}-vault`;

const a = client(t, 'client A');
const b = client(t, 'client B');
// C signs its authorizations with the right key and a wrong secret.
const forger = serverSdk(t, { secret: `${t.secret}-wrong` });
const c = client(t, 'client C (forged auth)', { authSdk: forger });

await check('three pusher-js clients connect', async () => {
  await Promise.all([connected(a), connected(b), connected(c)]);
}, { critical: true });

let chanA, chanB;
await check(`private channel ${ch} with an SDK-signed auth: subscription_succeeded`, async () => {
  [{ channel: chanA }, { channel: chanB }] = await Promise.all([subscribed(a, ch), subscribed(b, ch)]);
}, { critical: true });

await check('an HTTP API trigger reaches both private subscribers', async () => {
  const ga = once(chanA, 'secret-news', 'event on A');
  const gb = once(chanB, 'secret-news', 'event on B');
  await okJson(await sdkCall(sdk.trigger(ch, 'secret-news', { v: 1 }), 'trigger'), 'trigger');
  const [ea, eb] = await Promise.all([ga, gb]);
  assertEq(ea.data, { v: 1 }, 'A data');
  assertEq(eb.data, { v: 1 }, 'B data');
});

await check('forged auth (signed with a wrong secret): pusher:subscription_error with an HTTP-like status', async () => {
  const chanC = c.subscribe(ch);
  const from = c.rec.mark();
  const outcome = await within(
    new Promise((resolve) => {
      chanC.bind('pusher:subscription_succeeded', () => resolve({ kind: 'succeeded' }));
      chanC.bind('pusher:subscription_error', (e) => resolve({ kind: 'subscription_error', e }));
      c.rec.waitFor((m) => m.event === 'pusher:error', 'pusher:error', { from, ms: STEP_MS + 1000 })
        .then(({ msg }) => resolve({ kind: 'pusher:error', e: msg.data }))
        .catch(() => {});
    }),
    STEP_MS,
    'subscription_succeeded or subscription_error',
  );
  assert(outcome.kind !== 'succeeded', 'the forged subscription SUCCEEDED');
  assert(
    outcome.kind === 'subscription_error',
    `got ${outcome.kind} ${JSON.stringify(outcome.e)} instead of pusher:subscription_error on the channel`,
  );
  assert(typeof outcome.e.status === 'number' && outcome.e.status >= 400 && outcome.e.status < 500,
    `subscription_error data has no 4xx status: ${JSON.stringify(outcome.e)}`);
  return `status ${outcome.e.status}${outcome.e.type ? `, type ${outcome.e.type}` : ''}`;
});

await check('forged auth: the client stays connected and gets no events of the channel', async () => {
  await roundtrip(c);
  assert(c.connection.state === 'connected', `client C state is ${c.connection.state}`);
  const from = c.rec.mark();
  await okJson(await sdkCall(sdk.trigger(ch, 'not-for-c', {}), 'trigger'), 'trigger');
  await sentinel(sdk, ch, [a.rec]);
  await roundtrip(c);
  const leaked = c.rec.between(from).filter((m) => m.channel === ch && m.event === 'not-for-c');
  assert(leaked.length === 0, 'client C received an event of a channel it failed to join');
});

await check('client event on a private channel reaches the other subscriber with its data', async () => {
  const got = once(chanB, 'client-typing', 'client-typing on B');
  assert(chanA.trigger('client-typing', { who: 'A', n: 7 }), 'pusher-js refused to send the client event');
  const { data } = await got;
  assertEq(data, { who: 'A', n: 7 }, 'data');
});

await check('client event is not echoed to its sender', async () => {
  const fromA = a.rec.mark();
  chanA.trigger('client-echo-probe', { p: 1 });
  await b.rec.waitFor((m) => m.event === 'client-echo-probe', 'client-echo-probe on B');
  const [ia] = await sentinel(sdk, ch, [a.rec]);
  const echoed = a.rec.between(fromA, ia).filter((m) => m.event === 'client-echo-probe');
  assert(echoed.length === 0, 'the sender received its own client event');
});

// ---- private-encrypted-
let encA, encB;
await check(`private-encrypted channel ${enc}: subscribe with the SDK's authorizeChannel (shared_secret)`, async () => {
  const auth = sdk.authorizeChannel(a.connection.socket_id, enc);
  assert(typeof auth.shared_secret === 'string' && auth.shared_secret.length > 0,
    'the SDK gave no shared_secret: is the encryption master key set?');
  [{ channel: encA }, { channel: encB }] = await Promise.all([subscribed(a, enc), subscribed(b, enc)]);
}, { critical: true });

await check('an encrypted trigger reaches both clients as ciphertext and pusher-js decrypts it', async () => {
  const payload = { card: '4111-1111', amount: 42 };
  const fromA = a.rec.mark();
  const ga = once(encA, 'payment', 'decrypted event on A');
  const gb = once(encB, 'payment', 'decrypted event on B');
  await okJson(await sdkCall(sdk.trigger(enc, 'payment', payload), 'encrypted trigger'), 'encrypted trigger');
  const [ea, eb] = await Promise.all([ga, gb]);
  assertEq(ea.data, payload, 'A decrypted data');
  assertEq(eb.data, payload, 'B decrypted data');
  const wire = a.rec.find((m) => m.event === 'payment' && m.channel === enc, fromA);
  assert(wire, 'no raw message recorded');
  assert(wire.msg.data && wire.msg.data.ciphertext && wire.msg.data.nonce,
    `the wire data is not {nonce, ciphertext}: ${JSON.stringify(wire.msg.data)}`);
  assert(!JSON.stringify(wire.msg.data).includes('4111'), 'plaintext visible on the wire');
});

await check('an encrypted event in a triggerBatch is decrypted too', async () => {
  const gb = once(encB, 'batched-payment', 'decrypted batch event on B');
  await okJson(
    await sdkCall(sdk.triggerBatch([{ channel: enc, name: 'batched-payment', data: { b: true } }]), 'triggerBatch'),
    'triggerBatch',
  );
  const { data } = await gb;
  assertEq(data, { b: true }, 'decrypted batch data');
});

await check('a client signing with a wrong master key cannot decrypt (pusher-js drops the event)', async () => {
  const other = serverSdk(t, { encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64') });
  const d = client(t, 'client D (wrong master key)', { authSdk: other });
  await connected(d);
  const { channel: encD } = await subscribed(d, enc);
  let leaked = null;
  encD.bind('payment-2', (x) => { leaked = x; });
  await okJson(await sdkCall(sdk.trigger(enc, 'payment-2', { s: 1 }), 'encrypted trigger'), 'encrypted trigger');
  await d.rec.waitFor((m) => m.event === 'payment-2', 'raw payment-2 on D');
  assert(leaked === null, `client D decrypted ${JSON.stringify(leaked)}`);
});

finish();
