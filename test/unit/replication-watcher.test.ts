/**
 * The watcher against scripted control connections (no sockets): what it shows, what it exports,
 * and every way a convergence wait ends.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ReplicationWatcher, type InfoClient, type ConvergenceResult } from '../../src/replication/watcher.js';
import { ErrorReply } from '../../src/backend/control-connection.js';
import { SidecarError } from '../../src/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import type { BackendKind, ReplicationConfig } from '../../src/config/schema.js';
import { DEFAULT_CONFIG } from '../../src/config/keys.js';
import { waitFor } from '../../harness/wait.js';
import { pikaServerInfo, readPikaFixture, withBinlog, withReplicaAddresses } from '../support/fake-pika.js';

type Handler = (args: string[]) => unknown;

class ScriptedClient implements InfoClient {
  readonly calls: string[][] = [];
  closes = 0;
  destroys = 0;
  constructor(public handler: Handler) {}
  call(...args: string[]): Promise<unknown> {
    this.calls.push(args);
    return Promise.resolve().then(() => this.handler(args));
  }
  async close(): Promise<void> {
    this.closes++;
  }
  destroy(): void {
    this.destroys++;
  }
  count(...prefix: string[]): number {
    return this.calls.filter((c) => prefix.every((p, i) => c[i]?.toUpperCase() === p.toUpperCase())).length;
  }
}

const REDIS_SERVER = '# Server\r\nredis_version:7.0.15\r\n';

function redisMaster(offset: bigint | number, replicas: Array<{ port: number; state?: string; offset: bigint | number }>): string {
  return [
    '# Replication',
    'role:master',
    `connected_slaves:${replicas.length}`,
    ...replicas.map((r, i) => `slave${i}:ip=127.0.0.1,port=${r.port},state=${r.state ?? 'online'},offset=${r.offset},lag=0`),
    'master_failover_state:no-failover',
    `master_repl_offset:${offset}`,
    '',
  ].join('\r\n');
}

/** A control connection for a Redis backend: INFO server, INFO replication from `replication()`, CLIENT PAUSE/UNPAUSE. */
function redisControl(replication: () => unknown, pause: () => unknown = () => 'OK'): ScriptedClient {
  return new ScriptedClient((args) => {
    const [cmd, sub] = [args[0]?.toUpperCase(), args[1]?.toUpperCase()];
    if (cmd === 'INFO' && sub === 'SERVER') return REDIS_SERVER;
    if (cmd === 'INFO' && sub === 'REPLICATION') return replication();
    if (cmd === 'CLIENT' && sub === 'PAUSE') return pause();
    if (cmd === 'CLIENT' && sub === 'UNPAUSE') return 'OK';
    return new ErrorReply(`ERR unknown command '${args[0]}'`);
  });
}

function fixture(over: Partial<ReplicationConfig> = {}) {
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const config: ReplicationConfig = {
    ...DEFAULT_CONFIG.replication,
    pollIntervalMs: 20,
    shutdownPollMinMs: 2,
    shutdownPollMaxMs: 10,
    settleMs: 10,
    ...over,
  };
  return { registry, metrics, lines, logger, config };
}

function makeWatcher(
  t: { after: (fn: () => void) => void },
  control: InfoClient,
  opts: { config?: Partial<ReplicationConfig>; backendKind?: BackendKind; connect?: (host: string, port: number) => InfoClient } = {},
) {
  const f = fixture(opts.config);
  const watcher = new ReplicationWatcher({
    control,
    connect: opts.connect ?? (() => assert.fail('no replica probe expected')),
    config: f.config,
    backendKind: opts.backendKind ?? 'auto',
    logger: f.logger,
    metrics: f.metrics,
    random: () => 0.5,
  });
  t.after(() => watcher.destroy());
  return { watcher, ...f };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = registry.getSingleMetric(`pika_sidecar_${name}`);
  assert.ok(m, name);
  const v = await m.get();
  return v.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val))?.value;
}

function verdicts(r: ConvergenceResult): Array<[string, string]> {
  return r.replicas.map((x) => [x.address, x.verdict]);
}

describe('normal-service polling', () => {
  test('a poll of a redis master shows role, positions and replica states in snapshot() and the metrics', async (t) => {
    const control = redisControl(() =>
      redisMaster(100, [
        { port: 7001, offset: 90 },
        { port: 7002, state: 'wait_bgsave', offset: 0 },
      ]),
    );
    const { watcher, registry } = makeWatcher(t, control);
    await watcher.pollOnce();
    const s = watcher.snapshot();
    assert.equal(s.kind, 'redis');
    assert.equal(s.role, 'master');
    assert.equal(s.converged, false);
    assert.equal(s.masterPosition, '100');
    assert.deepEqual(s.replicas, [
      { address: '127.0.0.1:7001', state: 'online', lagBytes: '10', position: '90' },
      { address: '127.0.0.1:7002', state: 'full_sync', lagBytes: null, position: '0' },
    ]);
    assert.equal(s.lastError, null);
    assert.ok(s.lastPollAt !== null && !Number.isNaN(Date.parse(s.lastPollAt)));
    assert.equal(await metric(registry, 'replicas', { state: 'online' }), 1);
    assert.equal(await metric(registry, 'replicas', { state: 'full_sync' }), 1);
    assert.equal(await metric(registry, 'replicas', { state: 'down' }), 0);
    assert.equal(await metric(registry, 'replica_lag_bytes', { replica: '127.0.0.1:7001' }), 10);
    assert.equal(await metric(registry, 'replica_lag_bytes', { replica: '127.0.0.1:7002' }), undefined, 'no lag sample while in full sync');
    assert.equal(await metric(registry, 'replication_converged'), 0);
    assert.equal(await metric(registry, 'backend_role', { role: 'master' }), 1);
    assert.equal(await metric(registry, 'backend_role', { role: 'unknown' }), 0);
  });

  test('the lag series of a replica that disappeared is removed, and convergence is 1 once all reached the master', async (t) => {
    let replicas = [
      { port: 7001, offset: 100 },
      { port: 7002, offset: 40 },
    ];
    const { watcher, registry } = makeWatcher(
      t,
      redisControl(() => redisMaster(100, replicas)),
    );
    await watcher.pollOnce();
    assert.equal(await metric(registry, 'replica_lag_bytes', { replica: '127.0.0.1:7002' }), 60);
    replicas = [{ port: 7001, offset: 100 }];
    await watcher.pollOnce();
    assert.equal(await metric(registry, 'replica_lag_bytes', { replica: '127.0.0.1:7002' }), undefined);
    assert.equal(await metric(registry, 'replica_lag_bytes', { replica: '127.0.0.1:7001' }), 0);
    assert.equal(await metric(registry, 'replication_converged'), 1);
    assert.deepEqual(
      watcher.snapshot().replicas.map((r) => r.address),
      ['127.0.0.1:7001'],
    );
    assert.equal(watcher.snapshot().converged, true);
  });

  test('auto detection reads INFO server once; a configured kind never asks', async (t) => {
    const auto = redisControl(() => redisMaster(0, []));
    const a = makeWatcher(t, auto).watcher;
    await a.pollOnce();
    await a.pollOnce();
    assert.equal(auto.count('INFO', 'server'), 1);
    assert.equal(auto.count('INFO', 'replication'), 2);

    const forced = redisControl(() => redisMaster(0, []));
    const b = makeWatcher(t, forced, { backendKind: 'redis' }).watcher;
    await b.pollOnce();
    assert.equal(forced.count('INFO', 'server'), 0);
    assert.equal(b.snapshot().kind, 'redis');
  });

  test('a replica backend shows role replica, converged unknown, and its own replicas', async (t) => {
    const text =
      'role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7005,state=online,offset=5,lag=0\r\nmaster_repl_offset:5\r\n';
    const { watcher, registry } = makeWatcher(
      t,
      redisControl(() => text),
    );
    await watcher.pollOnce();
    assert.equal(watcher.snapshot().role, 'replica');
    assert.equal(watcher.snapshot().converged, null);
    assert.equal(watcher.snapshot().replicas.length, 1);
    assert.equal(await metric(registry, 'backend_role', { role: 'replica' }), 1);
    assert.equal(await metric(registry, 'replication_converged'), 0);
  });

  test('a failed poll never rejects: it keeps the last replicas and says why in lastError', async (t) => {
    let fail = false;
    const control = redisControl(() => {
      if (fail) throw new SidecarError('ERR_BACKEND_UNREACHABLE', 'cannot connect to backend 127.0.0.1:1: ECONNREFUSED');
      return redisMaster(10, [{ port: 7001, offset: 10 }]);
    });
    const { watcher, registry, lines } = makeWatcher(t, control);
    await watcher.pollOnce();
    fail = true;
    await watcher.pollOnce();
    await watcher.pollOnce();
    const s = watcher.snapshot();
    assert.match(s.lastError ?? '', /ERR_BACKEND_UNREACHABLE/);
    assert.equal(s.converged, null);
    assert.equal(s.replicas.length, 1);
    assert.equal(await metric(registry, 'replication_converged'), 0);
    assert.equal(
      lines.filter((l) => l.level === 'warn' && /could not read the replication state/.test(String(l.msg))).length,
      1,
      'one warning per distinct error',
    );
  });

  test('an INFO text without a role or position shows unknown, never converged', async (t) => {
    const { watcher } = makeWatcher(
      t,
      redisControl(() => 'garbage\r\n'),
      { backendKind: 'redis' },
    );
    await watcher.pollOnce();
    assert.equal(watcher.snapshot().role, 'unknown');
    assert.equal(watcher.snapshot().converged, null);
    assert.equal(watcher.snapshot().masterPosition, null);
  });

  test('start() polls at once and then every interval; concurrent pollOnce calls share one poll', async (t) => {
    const control = redisControl(() => redisMaster(0, []));
    const { watcher } = makeWatcher(t, control, { backendKind: 'redis' });
    const p1 = watcher.pollOnce();
    const p2 = watcher.pollOnce();
    assert.equal(p1, p2);
    await p1;
    assert.equal(control.count('INFO', 'replication'), 1);
    watcher.start();
    watcher.start();
    await waitFor(() => control.count('INFO', 'replication') >= 4, { timeoutMs: 3000, what: 'periodic polls' });
    await watcher.close();
    await watcher.close();
    const r = await watcher.waitForConvergence(1000, new AbortController().signal);
    assert.equal(r.outcome, 'failed');
    assert.match(r.reason, /closed/);
  });
});

describe('convergence wait (redis rules)', () => {
  test('a replica backend is skipped with the reason, and nothing is paused', async (t) => {
    const text = 'role:slave\r\nmaster_host:10.1.2.3\r\nmaster_port:6379\r\nmaster_link_status:up\r\nmaster_repl_offset:5\r\n';
    const control = redisControl(() => text);
    const { watcher } = makeWatcher(t, control);
    const r = await watcher.waitForConvergence(2000, new AbortController().signal);
    assert.equal(r.outcome, 'skipped');
    assert.match(r.reason, /replica of 10\.1\.2\.3:6379; nothing downstream/);
    assert.equal(control.count('CLIENT', 'PAUSE'), 0);
  });

  test('a master without replicas is skipped', async (t) => {
    const { watcher } = makeWatcher(
      t,
      redisControl(() => redisMaster(42, [])),
    );
    const r = await watcher.waitForConvergence(2000, new AbortController().signal);
    assert.equal(r.outcome, 'skipped');
    assert.equal(r.target, '42');
    assert.match(r.reason, /no replicas/);
  });

  test('a replica the last poll listed and the master no longer lists is waited for, and is not converged', async (t) => {
    let replicas: Array<{ port: number; offset: number }> = [{ port: 7001, offset: 42 }];
    const { watcher, lines } = makeWatcher(
      t,
      redisControl(() => redisMaster(42, replicas)),
    );
    await watcher.pollOnce();
    replicas = []; // killed or promoted just before the shutdown: gone from INFO before the target is recorded
    const r = await watcher.waitForConvergence(300, new AbortController().signal);
    assert.equal(r.outcome, 'timed_out', r.reason);
    assert.deepEqual(verdicts(r), [['127.0.0.1:7001', 'unreachable']]);
    assert.ok(lines.some((l) => l.level === 'warn' && /gone from the master/.test(String(l.msg))));
  });

  test('waits until every replica acknowledges the target, re-checks after the settle delay, and leaves the pause in place', async (t) => {
    let polls = 0;
    const control = redisControl(() => {
      polls++;
      const acked = Math.min(100, 40 + polls * 20);
      return redisMaster(100, [
        { port: 7001, offset: acked },
        { port: 7002, offset: 100 },
      ]);
    });
    const { watcher, lines } = makeWatcher(t, control);
    const r = await watcher.waitForConvergence(5000, new AbortController().signal);
    assert.equal(r.outcome, 'converged', r.reason);
    assert.equal(r.kind, 'redis');
    assert.equal(r.target, '100');
    assert.equal(r.targetMoved, false);
    assert.equal(r.writePause, 'applied');
    assert.deepEqual(verdicts(r), [
      ['127.0.0.1:7001', 'converged'],
      ['127.0.0.1:7002', 'converged'],
    ]);
    assert.ok(r.replicas.every((x) => x.behindBytes === '0'));
    assert.ok(polls >= 4, 'polled until 7001 caught up, then once more after the settle delay');
    const pause = control.calls.find((c) => c[0] === 'CLIENT' && c[1] === 'PAUSE');
    assert.ok(
      pause && pause[3] === 'WRITE' && Number(pause[2]) > 0 && Number(pause[2]) <= 5000,
      `pause for the remaining budget: ${pause?.join(' ')}`,
    );
    assert.equal(control.count('CLIENT', 'UNPAUSE'), 0, 'the backend is about to stop: the pause is kept');
    const pauseAt = control.calls.findIndex((c) => c[1] === 'PAUSE');
    const targetRead = control.calls.findIndex((c, i) => i > pauseAt && c[1] === 'replication');
    assert.ok(targetRead > pauseAt, 'the target is read after the pause');
    for (const l of lines) assert.equal(l.component, 'replication');
    assert.ok(lines.some((l) => /^recorded the replication target/.test(String(l.msg))));
  });

  test('a replica that drops out during the settle delay is waited for', async (t) => {
    let polls = 0;
    const control = redisControl(() => {
      polls++;
      return redisMaster(
        100,
        polls === 2
          ? [{ port: 7001, offset: 100 }]
          : [
              { port: 7001, offset: 100 },
              { port: 7002, offset: 100 },
            ],
      );
    });
    const { watcher } = makeWatcher(t, control, { config: { pauseWrites: false } });
    const r = await watcher.waitForConvergence(5000, new AbortController().signal);
    assert.equal(r.outcome, 'converged');
    assert.ok(polls >= 4, `re-checked after the replica came back (${polls} polls)`);
    assert.equal(control.count('CLIENT', 'PAUSE'), 0, 'pauseWrites off');
    assert.equal(r.writePause, 'off');
  });

  test('a replica in full sync is waited for', async (t) => {
    let polls = 0;
    const control = redisControl(() => {
      polls++;
      return redisMaster(100, [{ port: 7001, state: polls < 4 ? 'wait_bgsave' : 'online', offset: polls < 4 ? 0 : 100 }]);
    });
    const { watcher } = makeWatcher(t, control);
    const r = await watcher.waitForConvergence(5000, new AbortController().signal);
    assert.equal(r.outcome, 'converged');
    assert.ok(polls >= 5);
  });

  test('an exhausted budget times out naming each replica and how far behind it is, and keeps the pause', async (t) => {
    const control = redisControl(() =>
      redisMaster(100, [
        { port: 7001, offset: 100 },
        { port: 7002, offset: 30 },
      ]),
    );
    const { watcher } = makeWatcher(t, control);
    const t0 = Date.now();
    const r = await watcher.waitForConvergence(300, new AbortController().signal);
    const took = Date.now() - t0;
    assert.equal(r.outcome, 'timed_out');
    assert.ok(took >= 290 && took < 1500, `bounded by the budget (${took} ms)`);
    assert.deepEqual(verdicts(r), [
      ['127.0.0.1:7001', 'converged'],
      ['127.0.0.1:7002', 'behind'],
    ]);
    assert.equal(r.replicas[1]?.behindBytes, '70');
    assert.match(r.reason, /127\.0\.0\.1:7002 behind \(behind by 70 bytes\)/);
    assert.equal(control.count('CLIENT', 'UNPAUSE'), 0);
  });

  test('an abort ends the wait within one poll and lifts the write pause', async (t) => {
    const control = redisControl(() => redisMaster(100, [{ port: 7001, offset: 30 }]));
    const { watcher } = makeWatcher(t, control, { config: { shutdownPollMinMs: 50, shutdownPollMaxMs: 200 } });
    const ac = new AbortController();
    const waiting = watcher.waitForConvergence(10_000, ac.signal);
    await waitFor(() => control.count('INFO', 'replication') >= 3, { what: 'a few polls' });
    const abortedAt = Date.now();
    ac.abort();
    const r = await waiting;
    assert.equal(r.outcome, 'aborted');
    assert.ok(Date.now() - abortedAt < 200, 'within one poll interval');
    assert.equal(control.count('CLIENT', 'UNPAUSE'), 1);
    assert.deepEqual(verdicts(r), [['127.0.0.1:7001', 'behind']]);
  });

  test('an abort while INFO hangs ends the wait at once', async (t) => {
    let hang = false;
    const control = redisControl(() => (hang ? new Promise(() => undefined) : redisMaster(100, [{ port: 7001, offset: 30 }])));
    const { watcher } = makeWatcher(t, control, { config: { pauseWrites: false } });
    const ac = new AbortController();
    const waiting = watcher.waitForConvergence(10_000, ac.signal);
    await waitFor(() => control.count('INFO', 'replication') >= 2, { what: 'polls' });
    hang = true;
    const before = control.count('INFO', 'replication');
    await waitFor(() => control.count('INFO', 'replication') > before, { what: 'a hung poll' });
    const abortedAt = Date.now();
    ac.abort();
    const r = await waiting;
    assert.equal(r.outcome, 'aborted');
    assert.ok(Date.now() - abortedAt < 100);
  });

  test('an already aborted signal sends nothing', async (t) => {
    const control = redisControl(() => redisMaster(1, [{ port: 7001, offset: 1 }]));
    const { watcher } = makeWatcher(t, control);
    const ac = new AbortController();
    ac.abort();
    const r = await watcher.waitForConvergence(1000, ac.signal);
    assert.equal(r.outcome, 'aborted');
    assert.equal(control.calls.length, 0);
  });

  test('a master that never answers ends in failed within the budget, saying why', async (t) => {
    const control = redisControl(() => new Promise(() => undefined));
    const { watcher } = makeWatcher(t, control, { backendKind: 'redis' });
    const r = await watcher.waitForConvergence(200, new AbortController().signal);
    assert.equal(r.outcome, 'failed');
    assert.equal(r.target, null);
    assert.match(r.reason, /could not read the backend's replication state within 200 ms/);
  });

  test('a transport error on every poll ends in failed with the error, not a throw', async (t) => {
    const control = redisControl(() => {
      throw new SidecarError('ERR_CONTROL_TIMEOUT', 'no reply');
    });
    const { watcher } = makeWatcher(t, control, { backendKind: 'redis' });
    const r = await watcher.waitForConvergence(150, new AbortController().signal);
    assert.equal(r.outcome, 'failed');
    assert.match(r.reason, /ERR_CONTROL_TIMEOUT/);
  });

  test('a backend without client pause write is remembered as unsupported', async (t) => {
    const control = redisControl(
      () => redisMaster(5, [{ port: 7001, offset: 5 }]),
      () => new ErrorReply('ERR CLIENT PAUSE mode must be WRITE or ALL'),
    );
    const { watcher } = makeWatcher(t, control);
    const first = await watcher.waitForConvergence(2000, new AbortController().signal);
    assert.equal(first.outcome, 'converged');
    assert.equal(first.writePause, 'unsupported');
    const second = await watcher.waitForConvergence(2000, new AbortController().signal);
    assert.equal(second.writePause, 'unsupported');
    assert.equal(control.count('CLIENT', 'PAUSE'), 1);
  });

  test('a target that keeps moving is logged and reported; replicas are still held to the recorded target', async (t) => {
    let offset = 1000;
    const control = redisControl(() => {
      offset += 100;
      return redisMaster(offset, [{ port: 7001, offset: offset - 150 }]);
    });
    const { watcher, lines } = makeWatcher(t, control, { config: { pauseWrites: false } });
    const r = await watcher.waitForConvergence(3000, new AbortController().signal);
    assert.equal(r.outcome, 'converged');
    assert.equal(r.targetMoved, true);
    assert.equal(r.target, '1100');
    assert.match(r.reason, /writes bypass the sidecar/);
    assert.equal(lines.filter((l) => l.level === 'warn' && /position moved during the wait/.test(String(l.msg))).length, 1);
  });

  test('master PINGs (14 bytes between polls) are not a moving target', async (t) => {
    let offset = 1000;
    const control = redisControl(() => {
      offset += 14;
      return redisMaster(offset, [{ port: 7001, offset: 1014 }]);
    });
    const { watcher } = makeWatcher(t, control, { config: { pauseWrites: false } });
    const r = await watcher.waitForConvergence(3000, new AbortController().signal);
    assert.equal(r.outcome, 'converged');
    assert.equal(r.targetMoved, false);
  });

  test('a replica ahead of the master ends the wait at once as failed (diverged) and lifts the pause', async (t) => {
    const control = redisControl(() => redisMaster(100, [{ port: 7001, offset: 500 }]));
    const { watcher } = makeWatcher(t, control);
    const r = await watcher.waitForConvergence(10_000, new AbortController().signal);
    assert.equal(r.outcome, 'failed');
    assert.ok(r.durationMs < 1000);
    assert.deepEqual(verdicts(r), [['127.0.0.1:7001', 'diverged']]);
    assert.equal(control.count('CLIENT', 'UNPAUSE'), 1);
  });

  test('progress is logged at info at most about once per second; per-poll detail at debug', async (t) => {
    const control = redisControl(() => redisMaster(100, [{ port: 7001, offset: 1 }]));
    const { watcher, lines } = makeWatcher(t, control, { config: { shutdownPollMinMs: 1, shutdownPollMaxMs: 2, pauseWrites: false } });
    const r = await watcher.waitForConvergence(1500, new AbortController().signal);
    assert.equal(r.outcome, 'timed_out');
    const progress = lines.filter((l) => l.level === 'info' && /^waiting for replicas/.test(String(l.msg)));
    assert.ok(progress.length >= 1 && progress.length <= 2, `${progress.length} progress lines`);
    assert.ok(lines.filter((l) => l.level === 'debug' && l.msg === 'replication poll').length > 10);
    for (const l of lines) assert.match(String(l.msg), /^[a-z]/, 'lowercase sentences');
    assert.ok(lines.some((l) => l.level === 'error' && /^replication wait timed_out/.test(String(l.msg))));
  });

  test('closing the watcher ends a wait in progress', async (t) => {
    const control = redisControl(() => redisMaster(100, [{ port: 7001, offset: 1 }]));
    const { watcher } = makeWatcher(t, control, { config: { pauseWrites: false } });
    const waiting = watcher.waitForConvergence(10_000, new AbortController().signal);
    await waitFor(() => control.count('INFO', 'replication') >= 2, { what: 'polls' });
    await watcher.close();
    const r = await waiting;
    assert.equal(r.outcome, 'aborted');
    assert.match(r.reason, /closed/);
  });
});

describe('pika probes', () => {
  const masterText = readPikaFixture('v4.0.1-master-two-slaves.txt').replace('lag=(db0:full syncing)', 'lag=(db0:0)');
  const caughtUp = withBinlog(readPikaFixture('v4.0.1-captured-replica.txt'), 'db0', 2, 384);

  function pikaControl(replication: () => string): ScriptedClient {
    return new ScriptedClient((args) => {
      const sub = args[1]?.toLowerCase();
      if (args[0] === 'INFO' && sub === 'server') return pikaServerInfo(9221);
      if (args[0] === 'INFO' && sub === 'replication') return replication();
      return new ErrorReply(`ERR unknown or unsupported command '${args[0]?.toLowerCase()} ${sub}'`);
    });
  }

  test('each replica is asked at its announced client port, or at its override', async (t) => {
    const dialled: string[] = [];
    const control = pikaControl(() =>
      withReplicaAddresses(masterText, [
        { host: '10.0.0.2', port: 9221 },
        { host: '127.0.0.1', port: 7002 },
      ]),
    );
    const { watcher, registry } = makeWatcher(t, control, {
      config: { addressOverrides: { '10.0.0.2:9221': '127.0.0.1:7001' } },
      connect: (host, port) => {
        dialled.push(`${host}:${port}`);
        return new ScriptedClient(() => caughtUp);
      },
    });
    await watcher.pollOnce();
    assert.deepEqual(dialled.sort(), ['127.0.0.1:7001', '127.0.0.1:7002']);
    const s = watcher.snapshot();
    assert.equal(s.kind, 'pika');
    assert.equal(s.converged, true);
    assert.equal(s.masterPosition, 'db0=2:384');
    assert.deepEqual(s.replicas, [
      { address: '10.0.0.2:9221', state: 'online', lagBytes: '0', position: 'db0=2:384' },
      { address: '127.0.0.1:7002', state: 'online', lagBytes: '0', position: 'db0=2:384' },
    ]);
    assert.equal(await metric(registry, 'replication_converged'), 1);
    await watcher.pollOnce();
    assert.equal(dialled.length, 2, 'probe connections are kept between polls');
  });

  test('a probe that fails is destroyed, reported unreachable, and replaced on the next poll', async (t) => {
    const probes: ScriptedClient[] = [];
    let refuse = true;
    const control = pikaControl(() =>
      withReplicaAddresses(readPikaFixture('v4.0.1-captured-master.txt'), [{ host: '127.0.0.1', port: 7001 }]),
    );
    const { watcher } = makeWatcher(t, control, {
      connect: () => {
        const c = new ScriptedClient(() => {
          if (refuse) throw new SidecarError('ERR_BACKEND_UNREACHABLE', 'cannot connect to backend 127.0.0.1:7001: ECONNREFUSED');
          return readPikaFixture('v4.0.1-captured-replica.txt');
        });
        probes.push(c);
        return c;
      },
    });
    await watcher.pollOnce();
    assert.equal(watcher.snapshot().replicas[0]?.state, 'down');
    assert.equal(probes[0]?.destroys, 1);
    refuse = false;
    await watcher.pollOnce();
    assert.equal(probes.length, 2);
    assert.equal(watcher.snapshot().replicas[0]?.state, 'online');
    assert.equal(watcher.snapshot().converged, true);
  });

  test('a replica read after the master may be past it: a fresh master read decides, not "diverged"', async (t) => {
    let masterReads = 0;
    const control = pikaControl(() => {
      masterReads++;
      const base = withReplicaAddresses(readPikaFixture('v4.0.1-captured-master.txt'), [{ host: '127.0.0.1', port: 7001 }]);
      return masterReads === 1 ? base : withBinlog(base, 'db0', 0, 1300);
    });
    const { watcher } = makeWatcher(t, control, {
      connect: () => new ScriptedClient(() => withBinlog(readPikaFixture('v4.0.1-captured-replica.txt'), 'db0', 0, 1300)),
    });
    await watcher.pollOnce();
    assert.equal(masterReads, 2);
    assert.equal(watcher.snapshot().converged, true);
    assert.equal(watcher.snapshot().masterPosition, 'db0=0:1300');
  });

  test('replicas that leave the master list lose their probe connection; close() closes the rest', async (t) => {
    const probes = new Map<string, ScriptedClient>();
    let listed = [
      { host: '127.0.0.1', port: 7001 },
      { host: '127.0.0.1', port: 7002 },
    ];
    const control = pikaControl(() => {
      const two = readPikaFixture('v4.0.1-master-two-slaves.txt').replace('lag=(db0:full syncing)', 'lag=(db0:0)');
      const text = listed.length === 2 ? two : two.replace(/^slave1:.*\r\n/m, '').replace('connected_slaves:2', 'connected_slaves:1');
      return withReplicaAddresses(text, listed);
    });
    const { watcher } = makeWatcher(t, control, {
      connect: (host, port) => {
        const c = new ScriptedClient(() => caughtUp);
        probes.set(`${host}:${port}`, c);
        return c;
      },
    });
    await watcher.pollOnce();
    listed = [{ host: '127.0.0.1', port: 7001 }];
    await watcher.pollOnce();
    assert.equal(probes.get('127.0.0.1:7002')?.destroys, 1);
    assert.equal(probes.get('127.0.0.1:7001')?.destroys, 0);
    await watcher.close();
    assert.equal(probes.get('127.0.0.1:7001')?.closes, 1);
    watcher.destroy();
    assert.equal(probes.get('127.0.0.1:7001')?.destroys, 0, 'already closed and forgotten');
  });
});
