// Presence channels with real pusher-js: user 1 on two connections ("tabs"),
// user 2 on one. Members on subscribe, member_added once per user,
// member_removed only when the user's last connection leaves, client events
// carrying user_id.
//
// Server settings needed: client events enabled on the app.
import {
  target, startScenario, check, finish, client, connected, subscribed, serverSdk, sentinel,
  assert, assertEq, RUN, once, close, roundtrip,
} from './lib.mjs';

const t = target();
startScenario('presence');
const sdk = serverSdk(t);
const ch = `presence-${RUN}-room`;

const u1 = { id: '1', info: { name: 'Ada' } };
const u2 = { id: '2', info: { name: 'Bob' } };
const tab1 = client(t, 'user 1 tab 1', { user: u1 });
const tab2 = client(t, 'user 1 tab 2', { user: u1 });
const bob = client(t, 'user 2', { user: u2 });

const memberList = (members) => {
  const out = [];
  members.each((m) => out.push([m.id, m.info]));
  return out.sort((x, y) => (x[0] < y[0] ? -1 : 1));
};
const events = (rec, from, to, name) => rec.between(from, to).filter((m) => m.channel === ch && m.event === name);

await check('three pusher-js clients connect', async () => {
  await Promise.all([connected(tab1), connected(tab2), connected(bob)]);
}, { critical: true });

let chBob, chTab1, chTab2;
await check('user 2 subscribes alone: members.count 1, members.me is user 2 with its user_info', async () => {
  const r = await subscribed(bob, ch);
  chBob = r.channel;
  const members = r.data;
  assertEq(members.count, 1, 'members.count');
  assertEq(members.me && members.me.id, '2', 'members.me.id');
  assertEq(members.me && members.me.info, u2.info, 'members.me.info');
  assertEq(memberList(members), [['2', u2.info]], 'members.each');
}, { critical: true });

await check('user 1 (tab 1) subscribes: sees both members; user 2 gets member_added for user 1 with user_info', async () => {
  const added = once(chBob, 'pusher:member_added', 'member_added on user 2');
  const r = await subscribed(tab1, ch);
  chTab1 = r.channel;
  const members = r.data;
  assertEq(members.count, 2, 'members.count on tab 1');
  assertEq(members.me.id, '1', 'members.me.id on tab 1');
  assertEq(memberList(members), [['1', u1.info], ['2', u2.info]], 'members.each on tab 1');
  const { data: m } = await added;
  assertEq([m.id, m.info], ['1', u1.info], 'member_added member');
  assertEq(chBob.members.count, 2, 'members.count on user 2 after member_added');
}, { critical: true });

await check('user 1 opens tab 2: it sees 2 members; nobody gets a second member_added for user 1', async () => {
  const fromBob = bob.rec.mark();
  const fromTab1 = tab1.rec.mark();
  const r = await subscribed(tab2, ch);
  chTab2 = r.channel;
  assertEq(r.data.count, 2, 'members.count on tab 2');
  assertEq(r.data.me.id, '1', 'members.me.id on tab 2');
  assertEq(memberList(r.data), [['1', u1.info], ['2', u2.info]], 'members.each on tab 2');
  const [ib, i1] = await sentinel(sdk, ch, [bob.rec, tab1.rec]);
  const dupB = events(bob.rec, fromBob, ib, 'pusher_internal:member_added');
  const dup1 = events(tab1.rec, fromTab1, i1, 'pusher_internal:member_added');
  assert(dupB.length === 0, `user 2 got member_added again: ${JSON.stringify(dupB.map((m) => m.data))}`);
  assert(dup1.length === 0, `tab 1 got member_added for its own user: ${JSON.stringify(dup1.map((m) => m.data))}`);
  assertEq(chBob.members.count, 2, 'members.count on user 2');
});

await check('client event on a presence channel carries user_id (metadata.user_id in pusher-js)', async () => {
  const gotBob = once(chBob, 'client-wave', 'client-wave on user 2');
  const gotTab2 = once(chTab2, 'client-wave', 'client-wave on user 1 tab 2');
  assert(chTab1.trigger('client-wave', { hi: true }), 'pusher-js refused to send');
  const [eb, e2] = await Promise.all([gotBob, gotTab2]);
  assertEq(eb.data, { hi: true }, 'data on user 2');
  assertEq(eb.metadata && eb.metadata.user_id, '1', 'metadata.user_id on user 2');
  assertEq(e2.metadata && e2.metadata.user_id, '1', 'metadata.user_id on user 1 tab 2 (other connection, same user)');
});

await check('the sender of a presence client event does not get it back', async () => {
  const from = tab1.rec.mark();
  chTab1.trigger('client-echo-probe', {});
  await bob.rec.waitFor((m) => m.event === 'client-echo-probe', 'client-echo-probe on user 2');
  const [i1] = await sentinel(sdk, ch, [tab1.rec]);
  assert(events(tab1.rec, from, i1, 'client-echo-probe').length === 0, 'echoed to the sender');
});

await check('a client event from user 2 carries user_id 2', async () => {
  const got = once(chTab1, 'client-reply', 'client-reply on tab 1');
  chBob.trigger('client-reply', { r: 1 });
  const { metadata } = await got;
  assertEq(metadata && metadata.user_id, '2', 'metadata.user_id');
});

await check('user 1 closes tab 1: no member_removed while tab 2 is still there', async () => {
  const fromBob = bob.rec.mark();
  close(tab1);
  // Let the server notice the close, then make sure nothing was sent.
  await new Promise((r) => setTimeout(r, 300));
  const [ib] = await sentinel(sdk, ch, [bob.rec]);
  const removed = events(bob.rec, fromBob, ib, 'pusher_internal:member_removed');
  assert(removed.length === 0, `user 2 got member_removed: ${JSON.stringify(removed.map((m) => m.data))}`);
  assertEq(chBob.members.count, 2, 'members.count on user 2');
});

await check('user 1 unsubscribes its last tab: user 2 gets member_removed once, count back to 1', async () => {
  const fromBob = bob.rec.mark();
  const removed = once(chBob, 'pusher:member_removed', 'member_removed on user 2');
  tab2.unsubscribe(ch);
  await roundtrip(tab2);
  const { data: m } = await removed;
  assertEq([m.id, m.info], ['1', u1.info], 'removed member');
  const [ib] = await sentinel(sdk, ch, [bob.rec]);
  assertEq(events(bob.rec, fromBob, ib, 'pusher_internal:member_removed').length, 1, 'member_removed count');
  assertEq(chBob.members.count, 1, 'members.count on user 2');
  assertEq(memberList(chBob.members), [['2', u2.info]], 'members.each on user 2');
});

await check('user 1 comes back on a new connection: member_added again, then member_removed on disconnect', async () => {
  const tab3 = client(t, 'user 1 tab 3', { user: u1 });
  await connected(tab3);
  const added = once(chBob, 'pusher:member_added', 'member_added on user 2');
  const r = await subscribed(tab3, ch);
  assertEq(r.data.count, 2, 'members.count on tab 3');
  const { data: m } = await added;
  assertEq(m.id, '1', 'member_added id');
  const removed = once(chBob, 'pusher:member_removed', 'member_removed on user 2 after disconnect');
  close(tab3);
  const { data: gone } = await removed;
  assertEq(gone.id, '1', 'member_removed id');
});

finish();
