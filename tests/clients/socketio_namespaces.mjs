// Socket.IO namespaces: a custom namespace with an auth payload, namespaces
// kept apart, CONNECT_ERROR for a namespace the server does not serve and
// for an auth payload over its bound.
import { target, startScenario, check, finish, assert, assertEq, RUN } from './lib.mjs';
import { sioClient, sioConnected, sioConnectError, SioRecorder } from './sio_lib.mjs';

const t = target();
startScenario('socketio-namespaces');

const admin1 = sioClient(t, 'admin 1', { nsp: '/admin', auth: { token: `secret-${RUN}`, role: 'admin' } });
const admin2 = sioClient(t, 'admin 2', { nsp: '/admin', auth: { token: 'other' } });
const main = sioClient(t, 'main');

await check('clients connect to a custom namespace with an auth payload, and to the main one', async () => {
  const ids = await Promise.all([sioConnected(admin1), sioConnected(admin2), sioConnected(main)]);
  assert(new Set(ids).size === 3, `socket ids are not distinct: ${ids}`);
  assert(admin1.nsp === '/admin', `namespace ${admin1.nsp}`);
}, { critical: true });

await check('a message in /admin reaches the other /admin socket and nobody in /', async () => {
  const fromMain = main.rec.mark();
  admin1.emit('message', `admins only ${RUN}`);
  const { msg } = await admin2.rec.waitFor((m) => m.event === 'message', 'the /admin message');
  assertEq(msg.args, [`admins only ${RUN}`], 'arguments');
  // The main namespace client then hears one of its own namespace.
  const probe = sioClient(t, 'main probe');
  await sioConnected(probe);
  probe.emit('message', `main ${RUN}`);
  const { index } = await main.rec.waitFor((m) => m.event === 'message' && m.args[0] === `main ${RUN}`, 'main message', { from: fromMain });
  const leaked = main.rec.between(fromMain, index).filter((m) => m.args[0] === `admins only ${RUN}`);
  assert(leaked.length === 0, 'a /admin message reached the main namespace');
});

await check('one connection (Manager) carries / and /admin: each socket hears its own namespace', async () => {
  const manager = main.io;
  const adminOnMain = manager.socket('/admin', { auth: { token: 'shared' } });
  adminOnMain.label = 'admin on main connection';
  adminOnMain.rec = new SioRecorder(adminOnMain, adminOnMain.label);
  adminOnMain.connect();
  await sioConnected(adminOnMain);
  admin2.emit('message', `to admins ${RUN}`);
  await adminOnMain.rec.waitFor((m) => m.args[0] === `to admins ${RUN}`, 'the /admin message on the shared connection');
  adminOnMain.disconnect();
});

await check("a namespace the server does not serve gets connect_error 'Invalid namespace'", async () => {
  const bad = sioClient(t, 'bad namespace', { nsp: '/bad!name' });
  const error = await sioConnectError(bad);
  assertEq(error.message, 'Invalid namespace', 'connect_error message');
  bad.disconnect();
});

await check('an auth payload over 4 KiB gets connect_error', async () => {
  const big = sioClient(t, 'big auth', { nsp: '/admin', auth: { pad: 'x'.repeat(5000) } });
  const error = await sioConnectError(big);
  assert(/auth/.test(error.message), `connect_error message: ${error.message}`);
  big.disconnect();
});

finish();
