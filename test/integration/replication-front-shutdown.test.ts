/**
 * The fronted replication ports through a whole shutdown, in a real sidecar: a link opened before
 * the shutdown keeps flowing through intercept, drain (held by an open MULTI) and replication_sync
 * (held by a SIGSTOPped replica), new connections are refused from intercept on, and release closes
 * the link before the stop gate opens.
 *
 * The client port is a real redis-server master with a real replica (what holds drain and
 * replication_sync); its +2000 and +10001 are fake raw servers echoing bytes, standing in for Pika's
 * replication ports. The sidecar's front-port code is the same whatever answers there.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RedisServer } from '../../harness/redis-server.js';
import { startSidecar } from '../support/sidecar.js';
import { deferrer } from '../support/defer.js';
import { freePikaPort } from '../../harness/ports.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { RawServer, closed, connectRaw } from '../support/raw-stream.js';
import { shiftedPort } from '../../src/replication/pika-ports.js';
import { waitFor } from '../../harness/wait.js';
import type { Metrics } from '../../src/observability/metrics.js';

async function metricValue(m: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = m.registry.getSingleMetric(`pika_sidecar_${name}`);
  assert.ok(metric, `metric ${name} exists`);
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? Number.NaN;
}

describe('fronted replication ports during a shutdown', () => {
  test(
    'a link opened before the shutdown flows through intercept, drain and replication_sync; new ones are refused; release closes it before the stop gate',
    { timeout: 60_000 },
    async (t) => {
      const defer = deferrer(t);
      const backendPort = await freePikaPort();
      const master = await RedisServer.start({ port: backendPort });
      defer(() => master.stop());
      const replica = await RedisServer.start({ replicaOf: { host: master.host, port: master.port } });
      defer(() => replica.stop());
      await waitFor(async () => (await master.raw('INFO replication')).includes('state=online'), { what: 'the replica online' });
      const binlogBackend = await RawServer.start(shiftedPort(backendPort, 'binlog'));
      defer(() => binlogBackend.close());
      const rsyncBackend = await RawServer.start(shiftedPort(backendPort, 'rsync'));
      defer(() => rsyncBackend.close());

      const listenPort = await freePikaPort();
      const sc = await startSidecar(backendPort, {
        listen: { host: '127.0.0.1', port: listenPort },
        replication: { frontPikaPorts: true },
        shutdown: { announceDelayMs: 300, replicationTimeoutMs: 20_000, drainTimeoutMs: 20_000, deadlineMs: 60_000 },
      });
      defer(() => sc.shutdown());
      const binlogPort = shiftedPort(listenPort, 'binlog');
      const rsyncPort = shiftedPort(listenPort, 'rsync');

      // The link, open before the shutdown: an echo through the sidecar to the fake +2000.
      const link = await connectRaw(binlogPort);
      defer(() => link.destroy());
      let echoed = '';
      link.on('data', (d: Buffer) => (echoed += d.toString()));
      let sent = '';
      const roundTrip = async (word: string) => {
        sent += `${word};`;
        link.write(`${word};`);
        await waitFor(() => echoed === sent, { what: `the echo of ${word} through the link` });
      };
      await roundTrip('running');
      assert.equal(await metricValue(sc.metrics, 'replication_front_links', { port: 'binlog' }), 1);

      // What holds the phases: a write the stopped replica has not acknowledged, and an open MULTI.
      const writer = await RawClient.connect(sc.listen.port);
      defer(() => writer.close());
      replica.pause();
      defer(() => replica.resume());
      writer.write(resp('SET', 'front:k', 'v'));
      await writer.untilEndsWith('+OK\r\n');
      const tx = await RawClient.connect(sc.listen.port);
      defer(() => tx.close());
      tx.write(resp('MULTI'));
      await tx.untilEndsWith('+OK\r\n');

      const exit = sc.shutdown('test');
      let drainedAt: { links: number; releasedFront: boolean } | undefined;
      void sc.coordinator.whenDrained().then(async () => {
        drainedAt = {
          links: await metricValue(sc.metrics, 'replication_front_links', { port: 'binlog' }),
          releasedFront: sc.logs.some((l) => l['msg'] === 'released front_links'),
        };
      });

      await waitFor(() => sc.coordinator.state === 'intercept', { what: 'intercept' });
      await roundTrip('intercept');
      for (const port of [binlogPort, rsyncPort]) {
        const late = await connectRaw(port);
        late.on('error', () => undefined);
        late.write('must not arrive');
        await closed(late);
      }
      assert.equal(binlogBackend.accepted, 1, 'the refused binlog connection never reached the backend');
      assert.equal(rsyncBackend.accepted, 0, 'nor the refused rsync connection');
      assert.equal(await metricValue(sc.metrics, 'replication_front_refused_total', { port: 'binlog', reason: 'shutting_down' }), 1);
      assert.equal(await metricValue(sc.metrics, 'replication_front_refused_total', { port: 'rsync', reason: 'shutting_down' }), 1);
      assert.ok(
        sc.logs.some((l) => l['event'] === 'front_refused_binlog_shutting_down' && l['peer'] !== undefined),
        'the refusal is logged with the peer',
      );

      await waitFor(() => sc.coordinator.state === 'drain', { what: 'drain, held by the open MULTI' });
      await roundTrip('drain');
      tx.write(resp('EXEC'));

      await waitFor(() => sc.coordinator.state === 'replication_sync', { what: 'replication_sync, held by the stopped replica' });
      await roundTrip('replication_sync');
      assert.equal(
        await metricValue(sc.metrics, 'client_connections', { mode: 'replication_link' }),
        0,
        'a fronted link is not a client session',
      );
      assert.equal(await metricValue(sc.metrics, 'inflight_commands', {}), 0, 'nor in flight');
      replica.resume();

      assert.equal(await exit, 0, 'the shutdown completed');
      assert.deepEqual(drainedAt, { links: 0, releasedFront: true }, 'when the stop gate opened, the fronted link was already closed');
      await closed(link);
      const msgs = sc.logs.map((l) => l['msg']);
      const order = ['released control', 'released front_links', 'stop gate open: the backend may stop now'].map((m) => msgs.indexOf(m));
      assert.ok(order.every((i) => i >= 0) && order[0]! < order[1]! && order[1]! < order[2]!, `release order: ${JSON.stringify(order)}`);
      assert.equal(echoed, sent, 'every byte sent through the link came back');
    },
  );
});
