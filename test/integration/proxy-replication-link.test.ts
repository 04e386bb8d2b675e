/** A Redis replica attached through the sidecar: full sync, then every later write (I5). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisServer } from '../../harness/redis-server.js';
import { startSidecar } from '../support/sidecar.js';
import { waitFor } from '../../harness/wait.js';
import { deferrer } from '../support/defer.js';

test('a replica attached with REPLICAOF <sidecar> completes its full sync and then receives every later write', async (t) => {
  const defer = deferrer(t);
  const master = await RedisServer.start();
  defer(() => master.stop());
  const sc = await startSidecar(master.port);
  defer(() => sc.shutdown());
  const c = new Redis({ port: sc.listen.port, host: '127.0.0.1' });
  defer(() => c.disconnect());
  const before = c.pipeline();
  for (let i = 0; i < 5000; i++) before.set(`pre:${i}`, `v${i}`);
  await before.exec();

  const replica = await RedisServer.start({ replicaOf: { host: '127.0.0.1', port: sc.listen.port } });
  defer(() => replica.stop());
  await waitFor(async () => (await replica.info('replication')).includes('master_link_status:up'), {
    what: 'the replica link',
    timeoutMs: 15_000,
  });
  assert.equal(sc.registry.byMode().replication_link, 1);

  const after = c.pipeline();
  for (let i = 0; i < 5000; i++) after.set(`post:${i}`, `w${i}`);
  await after.exec();
  const r = new Redis({ port: replica.port, host: '127.0.0.1' });
  defer(() => r.disconnect());
  await waitFor(async () => (await r.dbsize()) === 10_000, { what: 'every write on the replica', timeoutMs: 10_000 });
  assert.equal(await r.get('pre:4999'), 'v4999');
  assert.equal(await r.get('post:4999'), 'w4999');
  const metrics = await (await fetch(`http://127.0.0.1:${sc.admin.port}/metrics`)).text();
  assert.match(metrics, /pika_sidecar_client_connections\{mode="replication_link"\} 1/);
});
