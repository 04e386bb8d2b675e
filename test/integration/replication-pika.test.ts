/**
 * The Pika dialect end to end: the watcher, over real control connections, against fake Pika
 * servers (test/support/fake-pika.ts) answering from the fixtures, rewritten to loopback and the
 * fakes' real ports. The watcher must behave exactly as against Pika: it reads the master, then asks
 * each replica for its own position at the client port the master announces.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ReplicationWatcher, type ConvergenceResult } from '../../src/replication/watcher.js';
import { ControlConnection, ErrorReply } from '../../src/backend/control-connection.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ReplicationConfig } from '../../src/config/schema.js';
import { DEFAULT_CONFIG } from '../../src/config/keys.js';
import {
  fakePika as fake,
  pikaGroup as group,
  readPikaFixture,
  withBinlog,
  withLag,
  withMasterAddress,
  withReplicaAddresses,
  type FakePika,
} from '../support/fake-pika.js';
import { freePort } from '../../harness/ports.js';
import { waitFor } from '../../harness/wait.js';

type After = { after: (fn: () => unknown) => void };

const MASTER = readPikaFixture('v4.0.1-master-two-slaves.txt'); // db0 (2, 384); slave1 in full sync
const CAUGHT_UP = readPikaFixture('v4.0.1-slave-caught-up.txt'); // db0 (2, 384), db1 (0, 0), link up
const FULL_SYNC = readPikaFixture('v4.0.1-slave-full-sync.txt');

/** A master fake listing two replica fakes (both caught up unless told otherwise). */
const pikaGroup = (
  t: After,
  replicaTexts: [string, string] = [CAUGHT_UP, CAUGHT_UP],
  masterLags: [string, string] = ['(db0:0)', '(db0:0)'],
) => group(t, MASTER, replicaTexts, masterLags);

function watch(t: After, master: FakePika, over: Partial<ReplicationConfig> = {}) {
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const dialled: string[] = [];
  const conn = (host: string, port: number, name: string) => {
    assert.ok(host === '127.0.0.1' || host === '::1', `the watcher dialled ${host}: only loopback may be dialled in tests`);
    return new ControlConnection({ host, port, connectTimeoutMs: 1000, commandTimeoutMs: 1000, logger, name });
  };
  const control = conn(master.host, master.port, 'control');
  t.after(() => control.destroy());
  const watcher = new ReplicationWatcher({
    control,
    connect: (host, port) => {
      dialled.push(`${host}:${port}`);
      return conn(host, port, `replica ${host}:${port}`);
    },
    config: { ...DEFAULT_CONFIG.replication, shutdownPollMinMs: 10, shutdownPollMaxMs: 100, settleMs: 50, ...over },
    backendKind: 'auto',
    logger,
    metrics,
  });
  t.after(() => watcher.destroy());
  return { watcher, registry, lines, dialled, control };
}

function byPort(r: ConvergenceResult, port: number) {
  return r.replicas.find((x) => x.address === `127.0.0.1:${port}`);
}

describe('replication watcher against fake pika servers', () => {
  test('the fake answers PING, INFO sections, and -ERR for what Pika lacks', async (t) => {
    const f = await fake(t, readPikaFixture('v4.0.1-standalone.txt'));
    const { control } = watch(t, f);
    assert.equal(await control.call('PING'), 'PONG');
    assert.match(String(await control.call('INFO', 'server')), /^# Server\r\npika_version:4\.0\.0\r\n/);
    assert.match(String(await control.call('INFO', 'replication')), /^# Replication\(MASTER\)\r\nrole:master\r\n/);
    assert.match(String(await control.call('INFO')), /pika_version:[\s\S]*role:master/);
    for (const cmd of [['CLIENT', 'PAUSE', '100', 'WRITE'], ['WAIT', '1', '0'], ['ROLE'], ['REPLICAOF', 'no', 'one']]) {
      const reply = await control.call(...cmd);
      assert.ok(reply instanceof ErrorReply, cmd.join(' '));
      assert.match(reply.message, /^ERR unknown or unsupported command/);
    }
    f.setInfo('replication', 'role:slave\n');
    assert.equal(await control.call('INFO', 'replication'), 'role:slave\r\n', 'text changed at run time, CRLF applied');
  });

  test('converges when every replica reports link up, no full sync and the master position; pause is found unsupported once', async (t) => {
    const g = await pikaGroup(t);
    const { watcher, registry, dialled } = watch(t, g.master);
    const r = await watcher.waitForConvergence(10_000, new AbortController().signal);
    assert.equal(r.outcome, 'converged', r.reason);
    assert.equal(r.kind, 'pika');
    assert.equal(r.target, 'db0=2:384');
    assert.equal(r.targetMoved, false);
    assert.equal(r.writePause, 'unsupported');
    for (const rep of g.replicas) {
      const x = byPort(r, rep.port);
      assert.equal(x?.verdict, 'converged');
      assert.equal(x?.position, 'db0=2:384,db1=0:0');
    }
    assert.deepEqual(
      dialled.sort(),
      g.replicas.map((x) => `127.0.0.1:${x.port}`).sort(),
      'each replica asked at its announced client port',
    );
    assert.ok(g.replicas.every((x) => x.commands.some((c) => c[0] === 'info' && c[1] === 'replication')));
    assert.ok(
      g.master.commands.some((c) => c[0] === 'info' && c[1] === 'server'),
      'dialect from INFO server',
    );

    const again = await watcher.waitForConvergence(10_000, new AbortController().signal);
    assert.equal(again.outcome, 'converged');
    assert.equal(g.master.commands.filter((c) => c[0] === 'client' && c[1] === 'PAUSE').length, 1, 'unsupported is remembered');
    const v = await registry.getSingleMetric('pika_sidecar_replicas')!.get();
    assert.equal(v.values.find((x) => x.labels.state === 'online')?.value, 2);
  });

  test('a replica in full sync is waited for, then converges when it has caught up', async (t) => {
    const g = await pikaGroup(t, [CAUGHT_UP, FULL_SYNC], ['(db0:0)', '(db0:full syncing)']);
    const { watcher } = watch(t, g.master);
    let settled = false;
    const waiting = watcher.waitForConvergence(15_000, new AbortController().signal).finally(() => (settled = true));
    const second = `127.0.0.1:${g.replicas[1]!.port}`;
    await waitFor(() => watcher.snapshot().replicas.find((x) => x.address === second)?.state === 'full_sync', { what: 'full sync seen' });
    // The master finished sending; the replica still reports its own full sync.
    g.master.setInfo('replication', g.masterText(['(db0:0)', '(db0:0)']));
    const before = watcher.snapshot().lastPollAt;
    await waitFor(() => watcher.snapshot().lastPollAt !== before, { what: 'a poll' });
    await waitFor(() => watcher.snapshot().replicas.find((x) => x.address === second)?.state === 'full_sync', {
      what: 'the replica-side full sync',
    });
    assert.equal(settled, false);
    g.setReplica(1, CAUGHT_UP);
    const r = await waiting;
    assert.equal(r.outcome, 'converged', r.reason);
    assert.equal(byPort(r, g.replicas[1]!.port)?.verdict, 'converged');
  });

  test('a replica behind holds convergence and shows its lag until it reaches the target', async (t) => {
    const g = await pikaGroup(t, [CAUGHT_UP, withBinlog(CAUGHT_UP, 'db0', 2, 100)]);
    const { watcher, registry } = watch(t, g.master);
    let settled = false;
    const waiting = watcher.waitForConvergence(15_000, new AbortController().signal).finally(() => (settled = true));
    const second = `127.0.0.1:${g.replicas[1]!.port}`;
    await waitFor(() => watcher.snapshot().replicas.find((x) => x.address === second)?.lagBytes === '284', { what: 'the lag shown' });
    const lag = await registry.getSingleMetric('pika_sidecar_replica_lag_bytes')!.get();
    assert.equal(lag.values.find((x) => x.labels.replica === second)?.value, 284);
    assert.equal(settled, false);
    g.setReplica(1, withBinlog(CAUGHT_UP, 'db0', 2, 300));
    await waitFor(() => watcher.snapshot().replicas.find((x) => x.address === second)?.lagBytes === '84', { what: 'progress' });
    assert.equal(settled, false);
    g.setReplica(1, CAUGHT_UP);
    const r = await waiting;
    assert.equal(r.outcome, 'converged');
  });

  test('a replica ahead of the master is diverged: the wait ends at once as failed', async (t) => {
    const g = await pikaGroup(t, [CAUGHT_UP, withBinlog(CAUGHT_UP, 'db0', 3, 0)]);
    const { watcher } = watch(t, g.master);
    const r = await watcher.waitForConvergence(15_000, new AbortController().signal);
    assert.equal(r.outcome, 'failed');
    assert.ok(r.durationMs < 2000, `${r.durationMs} ms`);
    assert.equal(byPort(r, g.replicas[1]!.port)?.verdict, 'diverged');
    assert.equal(byPort(r, g.replicas[0]!.port)?.verdict, 'converged');
    assert.match(r.reason, /diverged/);
  });

  test('a replica nobody answers for is unreachable, and the budget ends as timed_out naming it', async (t) => {
    const g = await pikaGroup(t);
    const deadPort = await freePort();
    g.master.setInfo(
      'replication',
      withReplicaAddresses(g.masterText(), [
        { host: '127.0.0.1', port: g.replicas[0]!.port },
        { host: '127.0.0.1', port: deadPort },
      ]),
    );
    const { watcher, registry } = watch(t, g.master);
    const r = await watcher.waitForConvergence(1500, new AbortController().signal);
    assert.equal(r.outcome, 'timed_out');
    const dead = byPort(r, deadPort);
    assert.equal(dead?.verdict, 'unreachable');
    assert.match(dead?.detail ?? '', /ERR_BACKEND_UNREACHABLE/);
    assert.match(r.reason, new RegExp(`127\\.0\\.0\\.1:${deadPort} unreachable`));
    const v = await registry.getSingleMetric('pika_sidecar_replicas')!.get();
    assert.equal(v.values.find((x) => x.labels.state === 'down')?.value, 1);
  });

  test('a target that moves during the wait (writes bypassing the sidecar) is detected and reported', async (t) => {
    const g = await pikaGroup(t, [CAUGHT_UP, withBinlog(CAUGHT_UP, 'db0', 2, 300)]);
    const { watcher, lines } = watch(t, g.master);
    const waiting = watcher.waitForConvergence(15_000, new AbortController().signal);
    const second = `127.0.0.1:${g.replicas[1]!.port}`;
    await waitFor(() => watcher.snapshot().replicas.find((x) => x.address === second)?.lagBytes === '84', {
      what: 'a poll with the replica behind',
    });
    g.master.setInfo('replication', withBinlog(g.masterText(), 'db0', 2, 400));
    g.setReplica(0, withBinlog(CAUGHT_UP, 'db0', 2, 400));
    g.setReplica(1, withBinlog(CAUGHT_UP, 'db0', 2, 400));
    const r = await waiting;
    assert.equal(r.outcome, 'converged', r.reason);
    assert.equal(r.targetMoved, true);
    assert.equal(r.target, 'db0=2:384', 'held to the recorded target');
    assert.match(r.reason, /writes bypass the sidecar/);
    assert.ok(lines.some((l) => l.level === 'warn' && /position moved during the wait/.test(String(l.msg))));
  });

  test('address overrides reach replicas whose announced address is not reachable from the pod', async (t) => {
    const g = await pikaGroup(t);
    // The fixture's own announced addresses (10.0.0.2 / 10.0.0.3) stay as text; only overrides are dialled.
    g.master.setInfo('replication', withLag(MASTER, 'slave1', '(db0:0)'));
    const { watcher, dialled } = watch(t, g.master, {
      addressOverrides: { '10.0.0.2:9221': `127.0.0.1:${g.replicas[0]!.port}`, '10.0.0.3:9221': `127.0.0.1:${g.replicas[1]!.port}` },
    });
    const r = await watcher.waitForConvergence(10_000, new AbortController().signal);
    assert.equal(r.outcome, 'converged', r.reason);
    assert.deepEqual(
      r.replicas.map((x) => [x.address, x.verdict]),
      [
        ['10.0.0.2:9221', 'converged'],
        ['10.0.0.3:9221', 'converged'],
      ],
    );
    assert.deepEqual(dialled.sort(), g.replicas.map((x) => `127.0.0.1:${x.port}`).sort());
  });

  test('a pika replica backend is skipped: nothing downstream to wait for', async (t) => {
    const master = await fake(t, readPikaFixture('v4.0.1-standalone.txt'));
    const replica = await fake(t, withMasterAddress(CAUGHT_UP, '127.0.0.1', master.port));
    const { watcher } = watch(t, replica);
    const r = await watcher.waitForConvergence(5000, new AbortController().signal);
    assert.equal(r.outcome, 'skipped');
    assert.match(r.reason, new RegExp(`replica of 127\\.0\\.0\\.1:${master.port}`));
    assert.equal(replica.commands.filter((c) => c[0] === 'client').length, 0);
  });

  test('normal-service polling probes the replicas and close() closes the probe connections', async (t) => {
    const g = await pikaGroup(t);
    const { watcher } = watch(t, g.master, { pollIntervalMs: 20 });
    watcher.start();
    await waitFor(() => watcher.snapshot().converged === true && watcher.snapshot().replicas.length === 2, {
      what: 'a normal-service poll',
    });
    const s = watcher.snapshot();
    assert.equal(s.kind, 'pika');
    assert.equal(s.role, 'master');
    assert.equal(s.masterPosition, 'db0=2:384');
    assert.ok(
      g.replicas.every((r) => r.connections === 1),
      'one probe connection per replica, kept between polls',
    );
    await watcher.close();
    await waitFor(() => g.replicas.every((r) => r.connections === 0), { what: 'probe connections closed' });
  });
});
