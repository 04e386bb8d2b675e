/**
 * The replication watcher against real redis-server processes (master + replicas on loopback):
 * convergence, a replica stopped with SIGSTOP, one that never resumes, one killed mid-wait, a full
 * sync in progress, CLIENT PAUSE WRITE, and the INFO texts captured on the way, parsed for real.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { Redis } from 'ioredis';
import { ReplicationWatcher, type ConvergenceResult } from '../../src/replication/watcher.js';
import { ControlConnection } from '../../src/backend/control-connection.js';
import { parseRedisReplication } from '../../src/replication/redis-info.js';
import { dialectFromInfoServer } from '../../src/replication/dialect.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ReplicationConfig } from '../../src/config/schema.js';
import { DEFAULT_CONFIG } from '../../src/config/keys.js';
import { RedisServer, startReplicationGroup } from '../../harness/redis-server.js';
import { waitFor } from '../../harness/wait.js';

type After = { after: (fn: () => unknown) => void };

/** Replicas attach at once instead of after Redis 7's default 5 s diskless-sync delay. */
const FAST_SYNC = ['repl-diskless-sync-delay', '0'];

function loopbackOnly(host: string): void {
  assert.ok(host === '127.0.0.1' || host === '::1', `the watcher dialled ${host}: only loopback may be dialled in tests`);
}

function watch(t: After, master: RedisServer, over: Partial<ReplicationConfig> = {}) {
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const conn = (host: string, port: number, name: string) => {
    loopbackOnly(host);
    return new ControlConnection({ host, port, connectTimeoutMs: 1000, commandTimeoutMs: 2000, logger, name });
  };
  const control = conn(master.host, master.port, 'control');
  t.after(() => control.destroy());
  const watcher = new ReplicationWatcher({
    control,
    connect: (host, port) => conn(host, port, `replica ${host}:${port}`),
    config: { ...DEFAULT_CONFIG.replication, shutdownPollMinMs: 20, shutdownPollMaxMs: 200, settleMs: 100, ...over },
    backendKind: 'auto',
    logger,
    metrics,
  });
  t.after(() => watcher.destroy());
  return { watcher, registry, lines, control };
}

async function write(port: number, n: number, valueBytes = 16): Promise<void> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const value = 'v'.repeat(valueBytes);
    for (let i = 0; i < n; i += 500) {
      const p = c.pipeline();
      for (let j = i; j < Math.min(n, i + 500); j++) p.set(`key:${j}`, value);
      await p.exec();
    }
  } finally {
    c.disconnect();
  }
}

function infoField(text: string, key: string): string | undefined {
  return new RegExp(`^${key}:(.*?)\\r?$`, 'm').exec(text)?.[1];
}

function byPort(r: ConvergenceResult, port: number) {
  return r.replicas.find((x) => x.address === `127.0.0.1:${port}`);
}

async function gauge(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const v = await registry.getSingleMetric(`pika_sidecar_${name}`)!.get();
  return v.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val))?.value;
}

describe('replication watcher with real redis-server processes', () => {
  test('a master and two replicas converge once writes stop, each replica holding the recorded target', async (t) => {
    const { master, replicas } = await startReplicationGroup(2, { config: FAST_SYNC });
    t.after(() => Promise.all([master, ...replicas].map((s) => s.stop())));
    await write(master.port, 2000);
    const { watcher, registry } = watch(t, master);

    const r = await watcher.waitForConvergence(15_000, new AbortController().signal);
    assert.equal(r.outcome, 'converged', r.reason);
    assert.equal(r.kind, 'redis');
    assert.equal(r.writePause, 'applied');
    assert.deepEqual(
      r.replicas.map((x) => x.verdict),
      ['converged', 'converged'],
    );
    const target = BigInt(r.target!);
    for (const replica of replicas) {
      assert.ok(byPort(r, replica.port), `replica ${replica.port} in the result`);
      const own = parseRedisReplication(await replica.info('replication'));
      assert.ok(own.upstream?.replOffset !== null && own.upstream!.replOffset! >= target, 'the replica itself processed the target');
    }
    assert.equal(await gauge(registry, 'replicas', { state: 'online' }), 2);
    assert.equal(await gauge(registry, 'replication_converged', {}), 1);
    assert.equal(watcher.snapshot().converged, true);
    await master.raw('CLIENT UNPAUSE');
  });

  test('INFO captured from real servers parses: master with online replicas, replica in sync, chained replica, INFO server', async (t) => {
    const { master, replicas } = await startReplicationGroup(1, { config: FAST_SYNC });
    t.after(() => Promise.all([master, ...replicas].map((s) => s.stop())));
    const replica = replicas[0]!;
    const chained = await RedisServer.start({ replicaOf: { host: replica.host, port: replica.port }, config: FAST_SYNC });
    t.after(() => chained.stop());
    await write(master.port, 100);
    await waitFor(async () => (await chained.info('replication')).includes('master_link_status:up'), { what: 'chained replica in sync' });

    // The replica reports its link up a moment before the master lists it online.
    const masterText = await waitFor(
      async () => {
        const text = await master.info('replication');
        return text.includes('state=online') ? text : false;
      },
      { what: 'the master to list its replica online' },
    );
    const m = parseRedisReplication(masterText);
    assert.equal(m.role, 'master');
    assert.equal(m.masterReplOffset, BigInt(infoField(masterText, 'master_repl_offset')!));
    assert.equal(m.connectedReplicas, 1);
    assert.equal(m.replicas[0]?.address, `127.0.0.1:${replica.port}`);
    assert.equal(m.replicas[0]?.state, 'online');
    assert.ok(m.replicas[0]?.offset !== null);
    assert.equal(m.replId, infoField(masterText, 'master_replid'));

    const mid = parseRedisReplication(await replica.info('replication'));
    assert.equal(mid.role, 'replica');
    assert.deepEqual(
      [mid.upstream?.host, mid.upstream?.port, mid.upstream?.linkUp, mid.upstream?.syncInProgress],
      ['127.0.0.1', master.port, true, false],
    );
    assert.equal(mid.replicas.length, 1, 'a chained replica lists its own replica');
    assert.equal(mid.replicas[0]?.port, chained.port);

    const leaf = parseRedisReplication(await chained.info('replication'));
    assert.equal(leaf.role, 'replica');
    assert.equal(leaf.upstream?.port, replica.port);
    assert.equal(leaf.replicas.length, 0);

    assert.equal(dialectFromInfoServer(await master.info('server')).dialect, 'redis');

    // The watcher on the chained replica: nothing downstream to wait for.
    const { watcher } = watch(t, replica);
    const r = await watcher.waitForConvergence(5000, new AbortController().signal);
    assert.equal(r.outcome, 'skipped');
    assert.match(r.reason, new RegExp(`replica of 127\\.0\\.0\\.1:${master.port}`));
  });

  test('a replica stopped with SIGSTOP holds convergence until SIGCONT', async (t) => {
    const { master, replicas } = await startReplicationGroup(2, { config: FAST_SYNC });
    t.after(() => Promise.all([master, ...replicas].map((s) => s.stop())));
    const stalled = replicas[1]!;
    stalled.pause();
    t.after(() => stalled.resume());
    await write(master.port, 1000);
    const { watcher } = watch(t, master);

    let settled = false;
    const waiting = watcher.waitForConvergence(20_000, new AbortController().signal).finally(() => (settled = true));
    const lagging = () => watcher.snapshot().replicas.find((x) => x.address === `127.0.0.1:${stalled.port}`);
    await waitFor(() => Number(lagging()?.lagBytes ?? 0) > 0, { what: 'the watcher to see the stalled replica behind' });
    const firstSeen = watcher.snapshot().lastPollAt;
    await waitFor(() => watcher.snapshot().lastPollAt !== firstSeen, { what: 'another poll' });
    assert.equal(settled, false, 'not converged while the replica is stopped');
    const resumedAt = Date.now();
    stalled.resume();
    const r = await waiting;
    assert.equal(r.outcome, 'converged', r.reason);
    assert.equal(byPort(r, stalled.port)?.verdict, 'converged');
    assert.ok(Date.now() >= resumedAt);
    await master.raw('CLIENT UNPAUSE');
  });

  test('a replica that never resumes ends in a timed-out result naming it and how far behind it is', async (t) => {
    const { master, replicas } = await startReplicationGroup(2, { config: FAST_SYNC });
    t.after(() => Promise.all([master, ...replicas].map((s) => s.stop())));
    const stalled = replicas[0]!;
    stalled.pause();
    await write(master.port, 1000);
    const { watcher } = watch(t, master, { pauseWrites: false });
    const r = await watcher.waitForConvergence(2500, new AbortController().signal);
    assert.equal(r.outcome, 'timed_out');
    assert.ok(r.durationMs >= 2400 && r.durationMs < 5000, `bounded by its budget (${r.durationMs} ms)`);
    const behind = byPort(r, stalled.port);
    assert.equal(behind?.verdict, 'behind');
    assert.ok(behind?.behindBytes != null && BigInt(behind.behindBytes) > 0n);
    assert.match(r.reason, new RegExp(`127\\.0\\.0\\.1:${stalled.port} behind \\(behind by \\d+ bytes\\)`));
    assert.equal(byPort(r, replicas[1]!.port)?.verdict, 'converged');
  });

  test('a replica killed mid-wait is reported unreachable, and down in the metrics', async (t) => {
    const { master, replicas } = await startReplicationGroup(2, { config: FAST_SYNC });
    t.after(() => Promise.all([master, ...replicas].map((s) => s.stop())));
    const doomed = replicas[1]!;
    doomed.pause();
    await write(master.port, 500);
    const { watcher, registry } = watch(t, master, { pauseWrites: false });
    const waiting = watcher.waitForConvergence(3000, new AbortController().signal);
    const entry = () => watcher.snapshot().replicas.find((x) => x.address === `127.0.0.1:${doomed.port}`);
    await waitFor(() => entry()?.state === 'online', { what: 'the stalled replica listed' });
    await doomed.kill();
    await waitFor(() => entry()?.state === 'down', { what: 'the killed replica shown down' });
    assert.equal(await gauge(registry, 'replicas', { state: 'down' }), 1);
    const r = await waiting;
    assert.equal(r.outcome, 'timed_out');
    assert.equal(byPort(r, doomed.port)?.verdict, 'unreachable');
    assert.equal(byPort(r, replicas[0]!.port)?.verdict, 'converged');
  });

  test('a full sync in progress (diskless, 1 s delay, a few MB) is waited for', async (t) => {
    const master = await RedisServer.start({ config: ['repl-diskless-sync', 'yes', 'repl-diskless-sync-delay', '1'] });
    t.after(() => master.stop());
    await write(master.port, 1500, 2048);
    const replica = await RedisServer.start();
    t.after(() => replica.stop());
    const { watcher, lines } = watch(t, master, { pauseWrites: false });
    assert.match(await replica.raw(`REPLICAOF 127.0.0.1 ${master.port}`), /^\+OK/);
    await waitFor(async () => (await master.info('replication')).includes('state=wait_bgsave'), {
      what: 'the replica listed in full sync',
    });

    const waiting = watcher.waitForConvergence(20_000, new AbortController().signal);
    // Captured mid full sync, on both sides.
    const m = parseRedisReplication(await master.info('replication'));
    const syncing = m.replicas.find((x) => x.port === replica.port);
    assert.ok(syncing && ['wait_bgsave', 'send_bulk'].includes(syncing.state), `master shows the full sync (${syncing?.state})`);
    const own = parseRedisReplication(await replica.info('replication'));
    assert.equal(own.role, 'replica');
    assert.equal(own.upstream?.linkUp, false);
    assert.notEqual(own.upstream?.syncInProgress, null);

    const r = await waiting;
    assert.equal(r.outcome, 'converged', r.reason);
    assert.equal(byPort(r, replica.port)?.verdict, 'converged');
    const polls = lines.filter((l) => l.component === 'replication' && l.msg === 'replication poll');
    assert.ok(
      polls.some((l) => JSON.stringify(l.replicas).includes('full_sync')),
      'the wait saw the full sync',
    );
    assert.equal(infoField(await replica.info('keyspace'), 'db0'), infoField(await master.info('keyspace'), 'db0'));
  });

  test('CLIENT PAUSE WRITE holds bypassing writes during the wait and is lifted on abort', async (t) => {
    const { master, replicas } = await startReplicationGroup(1, { config: FAST_SYNC });
    t.after(() => Promise.all([master, ...replicas].map((s) => s.stop())));
    replicas[0]!.pause();
    await write(master.port, 10);
    const { watcher, control } = watch(t, master);
    const ac = new AbortController();
    const waiting = watcher.waitForConvergence(20_000, ac.signal);
    await waitFor(() => watcher.snapshot().replicas.length === 1, { what: 'a poll during the wait' });

    const bypass = new Redis({ port: master.port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null });
    bypass.on('error', () => undefined);
    t.after(() => bypass.disconnect());
    let acknowledged = false;
    const pending = bypass.set('bypass', '1').then(() => (acknowledged = true));
    await waitFor(async () => infoField(await master.info('clients'), 'blocked_clients') === '1', { what: 'the bypassing write held' });
    assert.equal(acknowledged, false);

    ac.abort();
    const r = await waiting;
    assert.equal(r.outcome, 'aborted');
    assert.equal(r.writePause, 'applied');
    await pending;
    assert.equal(acknowledged, true, 'released by CLIENT UNPAUSE');
    assert.equal(await control.call('GET', 'bypass'), '1');
  });

  test('after convergence the write pause is left in place until its budget runs out', async (t) => {
    const { master, replicas } = await startReplicationGroup(1, { config: FAST_SYNC });
    t.after(() => Promise.all([master, ...replicas].map((s) => s.stop())));
    const { watcher } = watch(t, master);
    const r = await watcher.waitForConvergence(2500, new AbortController().signal);
    assert.equal(r.outcome, 'converged', r.reason);
    const bypass = new Redis({ port: master.port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null });
    bypass.on('error', () => undefined);
    t.after(() => bypass.disconnect());
    const pending = bypass.set('late', '1');
    await waitFor(async () => infoField(await master.info('clients'), 'blocked_clients') === '1', { what: 'the late write held' });
    // The pause was asked for the remaining budget only: it lapses on its own.
    assert.equal(await pending, 'OK');
  });
});
