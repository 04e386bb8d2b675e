/**
 * Faults in every phase, with the real CLI and real redis-server processes: the backend killed
 * or stopped, a replica killed, resynced or promoted, clients that never read, half frames and a
 * connection storm. For each: the exit code, the report, and an exit within the deadline.
 * Budgets are short (BUDGETS) so the whole file stays quick.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { RedisServer, startReplicationGroup } from '../../harness/redis-server.js';
import { spawnSidecar, type CliSidecar } from '../../harness/sidecar-process.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';
import { WriteLoad, verifyWrites } from '../../harness/write-load.js';

type Defer = ReturnType<typeof deferrer>;
/** intercept 1s + drain 2s + close_clients 1s + replication_sync 3s + release 1s = 8s <= deadline 10s. */
const DEADLINE_MS = 10_000;
const BUDGETS = [
  '--drain-timeout',
  '2s',
  '--close-timeout',
  '1s',
  '--replication-timeout',
  '3s',
  '--release-timeout',
  '1s',
  '--shutdown-deadline',
  '10s',
  '--health-interval',
  '200ms',
  '--replication-poll-interval',
  '200ms',
];
/** Time allowed past the deadline for the process to exit and be reaped on a loaded machine. */
const EXIT_SLACK_MS = 3000;

async function group(defer: Defer, replicas: number) {
  const g = await startReplicationGroup(replicas);
  defer(() => g.master.stop());
  for (const r of g.replicas) defer(() => r.stop());
  return g;
}

async function sidecarFor(defer: Defer, port: number, args: string[] = []): Promise<CliSidecar> {
  const sc = await spawnSidecar(port, [...BUDGETS, ...args]);
  defer(() => sc.kill());
  return sc;
}

interface Exit {
  code: number | null;
  report: Record<string, unknown>;
  outcomes: Record<string, string>;
  elapsedMs: number;
}

/** Waits for the exit (never longer than the deadline and slack) and returns what the report says. */
async function exitOf(sc: CliSidecar, since: number): Promise<Exit> {
  const exit = await Promise.race([
    sc.exited,
    new Promise<never>((_r, reject) =>
      setTimeout(
        () =>
          reject(
            new Error(
              `no exit within ${DEADLINE_MS + EXIT_SLACK_MS} ms; logs:\n${sc.logs
                .slice(-15)
                .map((l) => JSON.stringify(l))
                .join('\n')}`,
            ),
          ),
        DEADLINE_MS + EXIT_SLACK_MS,
      ).unref(),
    ),
  ]);
  const report = sc.report();
  assert.ok(report, `a shutdown report was logged; stderr: ${sc.stderr()}`);
  assert.ok(sc.logs.at(-1)?.report, 'the report is the last log line');
  assert.equal(report['exitCode'], exit.code, 'the report states the exit code');
  return { code: exit.code, report, outcomes: Object.fromEntries(sc.phaseOutcomes()), elapsedMs: exit.at - since };
}

/** A client with an open MULTI: holds the drain until EXEC. */
async function openMulti(defer: Defer, sc: CliSidecar): Promise<RawClient> {
  const c = await RawClient.connect(sc.port);
  defer(() => c.close());
  c.write(resp('MULTI'));
  await c.untilEndsWith('+OK\r\n');
  return c;
}

function phaseStarted(sc: CliSidecar, phase: string): Promise<unknown> {
  return sc.waitForLog((l) => l.msg === `phase ${phase} started`, 10_000, `phase ${phase} to start`);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

describe('faults in every phase (CLI child process, real redis-server processes)', () => {
  test('backend SIGKILL in normal service: readiness fails, new clients are refused with a line, and SIGTERM still exits by the deadline', async (t) => {
    const defer = deferrer(t);
    const backend = await RedisServer.start();
    defer(() => backend.stop());
    const sc = await sidecarFor(defer, backend.port);
    await backend.kill();
    await waitFor(async () => (await fetch(`${sc.admin}/readyz`)).status === 503, { what: 'readiness to fail' });
    const c = await RawClient.connect(sc.port);
    defer(() => c.close());
    c.write(resp('PING'));
    const line = (await c.until((b) => b.includes('\r\n'))).toString();
    assert.match(line, /^-ERR (backend 127\.0\.0\.1:\d+ is unreachable|cannot connect to backend 127\.0\.0\.1:\d+: ECONNREFUSED)/);
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const e = await exitOf(sc, t0);
    // Nothing could be verified about the replicas: data may be at risk.
    assert.equal(e.code, 2);
    assert.deepEqual(e.outcomes, {
      intercept: 'completed',
      drain: 'completed',
      close_clients: 'skipped',
      replication_sync: 'failed',
      release: 'completed',
    });
  });

  for (const phase of ['intercept', 'drain', 'close_clients', 'replication_sync', 'release'] as const) {
    test(`backend SIGKILL during ${phase}: the phases go on, the report says what happened, exit by the deadline`, async (t) => {
      const defer = deferrer(t);
      const g = await group(defer, 1);
      const extra =
        phase === 'intercept'
          ? ['--announce-delay', '2s']
          : phase === 'release'
            ? ['--metrics-linger', '800ms', '--release-timeout', '2s']
            : phase === 'close_clients'
              ? ['--close-spread', '800ms']
              : [];
      const sc = await sidecarFor(defer, g.master.port, extra);
      let multi: RawClient | undefined;
      if (phase === 'drain') multi = await openMulti(defer, sc);
      if (phase === 'close_clients') {
        // A blocked client is unblocked in close_clients; two stragglers spread the closes.
        for (let i = 0; i < 2; i++) {
          const b = await RawClient.connect(sc.port);
          defer(() => b.close());
          b.write(resp('BLPOP', `never:${i}`, '0'));
        }
        await waitFor(async () => (await g.master.raw('CLIENT LIST')).includes('cmd=blpop'), { what: 'the BLPOPs to block' });
      }
      if (phase === 'replication_sync') g.replicas[0]!.pause();
      defer(() => g.replicas[0]!.resume());
      const t0 = Date.now();
      sc.proc.kill('SIGTERM');
      await phaseStarted(sc, phase);
      await g.master.kill();
      if (multi) multi.write(resp('SET', 'k', 'v'));
      const e = await exitOf(sc, t0);
      assert.ok(Object.keys(e.outcomes).length === 5, 'every phase ran');
      if (phase === 'release') {
        // The stop gate opens in release: a backend stopping then is the planned order.
        assert.equal(e.code, 0);
        assert.ok(
          Object.values(e.outcomes).every((o) => o === 'completed' || o === 'skipped'),
          JSON.stringify(e.outcomes),
        );
      } else {
        // Before the gate, a dead master means the replicas cannot be checked: exit 2, the report says where.
        assert.equal(e.code, 2);
        assert.equal(e.outcomes['replication_sync'], 'failed');
        assert.equal(e.outcomes['release'], 'completed');
      }
      if (phase === 'drain') assert.deepEqual(e.report['sessionsClosed'], { backend_closed: 1 });
      if (phase === 'close_clients') assert.equal(e.outcomes['close_clients'], 'completed');
    });
  }

  test('backend SIGSTOP across the drain: the forwarded EXEC never answers, the drain times out, abandoned counted, exit 2', async (t) => {
    const defer = deferrer(t);
    const g = await group(defer, 1);
    const sc = await sidecarFor(defer, g.master.port);
    const multi = await openMulti(defer, sc);
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    await phaseStarted(sc, 'drain');
    g.master.pause();
    defer(() => g.master.resume());
    multi.write(resp('EXEC'));
    const e = await exitOf(sc, t0);
    g.master.resume();
    assert.equal(e.code, 2);
    assert.equal(e.outcomes['drain'], 'timed_out');
    assert.equal(e.report['commandsAbandoned'], 1, 'the EXEC forwarded to the stopped backend is abandoned');
    await waitFor(() => multi.closed, { what: 'the MULTI client to be closed' });
  });

  test('replica SIGKILL during replication_sync: the sync cannot converge, the report names the replica, exit 2', async (t) => {
    const defer = deferrer(t);
    const g = await group(defer, 1);
    const sc = await sidecarFor(defer, g.master.port);
    g.replicas[0]!.pause();
    const c = await RawClient.connect(sc.port);
    defer(() => c.close());
    c.write(resp('SET', 'after-pause', 'x'.repeat(1000)));
    await c.untilEndsWith('+OK\r\n');
    c.close();
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    await sc.waitForLog(
      (l) => String(l.msg).startsWith('recorded the replication target; waiting for 1 replica'),
      10_000,
      'the target to be recorded with the replica',
    );
    await g.replicas[0]!.kill();
    const e = await exitOf(sc, t0);
    assert.equal(e.code, 2);
    assert.equal(e.outcomes['replication_sync'], 'timed_out');
    const replicas = (e.report['replication'] as { replicas: Array<{ address: string; verdict: string }> }).replicas;
    assert.deepEqual(
      replicas.map((r) => [r.address, r.verdict]),
      [[`127.0.0.1:${g.replicas[0]!.port}`, 'unreachable']],
    );
  });

  test('replica promoted with REPLICAOF NO ONE mid-shutdown: it leaves the master, the sync fails, exit 2', async (t) => {
    const defer = deferrer(t);
    const g = await group(defer, 1);
    const sc = await sidecarFor(defer, g.master.port);
    g.replicas[0]!.pause();
    const c = await RawClient.connect(sc.port);
    defer(() => c.close());
    c.write(resp('SET', 'after-pause', 'y'));
    await c.untilEndsWith('+OK\r\n');
    c.close();
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    await sc.waitForLog(
      (l) => String(l.msg).startsWith('recorded the replication target; waiting for 1 replica'),
      10_000,
      'the target to be recorded with the replica',
    );
    g.replicas[0]!.resume();
    assert.equal(await g.replicas[0]!.raw('REPLICAOF NO ONE'), '+OK\r\n');
    const e = await exitOf(sc, t0);
    assert.equal(e.code, 2);
    assert.equal(e.outcomes['replication_sync'], 'timed_out');
    const replicas = (e.report['replication'] as { replicas: Array<{ address: string; verdict: string; detail: string }> }).replicas;
    assert.deepEqual(
      replicas.map((r) => [r.address, r.verdict, r.detail]),
      [[`127.0.0.1:${g.replicas[0]!.port}`, 'unreachable', 'no longer listed by the master']],
    );
  });

  test('replica killed, then restarted empty into a full sync: replication_sync waits for it, every acknowledged write is on it, exit 0', async (t) => {
    const defer = deferrer(t);
    const g = await group(defer, 1);
    const sc = await sidecarFor(defer, g.master.port, ['--replication-timeout', '5s', '--shutdown-deadline', '12s']);
    const replicaPort = g.replicas[0]!.port;
    await g.replicas[0]!.kill();
    const load = await WriteLoad.start({ host: '127.0.0.1', port: sc.port, connections: 4, batch: 64, valueBytes: 512 });
    defer(() => load.destroy());
    await waitFor(() => load.stats().acknowledged >= 20_000, { timeoutMs: 15_000, what: 'writes while the replica is down' });
    // Redis 7 waits repl-diskless-sync-delay (5 s) for more replicas before a full sync starts.
    assert.equal(await g.master.raw('CONFIG SET repl-diskless-sync-delay 0'), '+OK\r\n');
    const fresh = await RedisServer.start({ port: replicaPort, replicaOf: { host: '127.0.0.1', port: g.master.port } });
    defer(() => fresh.stop());
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const e = await exitOf(sc, t0);
    await load.finished;
    assert.equal(e.code, 0, JSON.stringify({ outcomes: e.outcomes, replication: e.report['replication'] }));
    const verdict = await verifyWrites(
      load.ledger(),
      { master: { host: '127.0.0.1', port: g.master.port }, replica: { host: '127.0.0.1', port: replicaPort } },
      load.valueBytes,
    );
    assert.ok(verdict.acknowledged >= 20_000);
    assert.equal(verdict.missingOnReplica, 0, 'every acknowledged write reached the resynced replica');
    assert.equal(verdict.phantomExecutions, 0);
  });

  test('clients that never read: memory stays bounded, the deadline closes them, the replies they never took are counted abandoned, exit 2', async (t) => {
    const defer = deferrer(t);
    const g = await group(defer, 1);
    const sc = await sidecarFor(defer, g.master.port);
    const setup = await RawClient.connect(sc.port);
    defer(() => setup.close());
    setup.write(resp('SET', 'big', 'x'.repeat(1024 * 1024)));
    await setup.untilEndsWith('+OK\r\n');
    setup.close();
    const rssBefore = rssKiB(sc.proc.pid!);
    const readers: net.Socket[] = [];
    const get = resp('GET', 'big');
    for (let i = 0; i < 4; i++) {
      const s = net.connect(sc.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.pause(); // never reads
      defer(() => s.destroy());
      readers.push(s);
      s.on('connect', () => {
        for (let k = 0; k < 400; k++) s.write(get);
      });
    }
    // 4 x 400 x 1 MiB = 1.6 GB of replies asked for: backpressure keeps the sidecar small.
    let peak = 0;
    await waitFor(
      () => {
        peak = Math.max(peak, rssKiB(sc.proc.pid!));
        return false;
      },
      { timeoutMs: 3000, intervalMs: 100 },
    ).catch(() => undefined);
    assert.ok(peak - rssBefore < 200 * 1024, `RSS grew by ${Math.round((peak - rssBefore) / 1024)} MiB`);
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const e = await exitOf(sc, t0);
    assert.equal(e.code, 2);
    assert.equal(e.outcomes['drain'], 'timed_out');
    assert.ok((e.report['commandsAbandoned'] as number) > 0, 'the replies they never took are counted');
    // All four readers were closed by the sidecar (the setup client left by itself).
    const closed = { ...(e.report['sessionsClosed'] as Record<string, number>) };
    delete closed['client_quit'];
    assert.equal(
      Object.values(closed).reduce((a, b) => a + b, 0),
      4,
      JSON.stringify(e.report['sessionsClosed']),
    );
  });

  test('slowloris half frames across the drain: the unfinished command is never forwarded, the connections close, exit by the deadline', async (t) => {
    const defer = deferrer(t);
    const g = await group(defer, 1);
    const sc = await sidecarFor(defer, g.master.port);
    const frame = resp('SET', 'half', 'never');
    const halves: RawClient[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await RawClient.connect(sc.port);
      defer(() => c.close());
      c.write(frame.subarray(0, 10));
      halves.push(c);
    }
    await waitFor(
      async () => ((await (await fetch(`${sc.admin}/status`)).json()) as { sessions: { total: number } }).sessions.total === 5,
      { what: 'five sessions' },
    );
    // One more byte of the frame every 100 ms, never the last.
    let sent = 10;
    const trickle = setInterval(() => {
      if (sent < frame.length - 2) for (const c of halves) if (!c.closed) c.write(frame.subarray(sent, sent + 1));
      sent++;
    }, 100);
    defer(() => clearInterval(trickle));
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const e = await exitOf(sc, t0);
    clearInterval(trickle);
    await waitFor(() => halves.every((c) => c.closed), { what: 'the half-frame clients to be closed' });
    assert.equal(await g.master.raw('EXISTS half'), ':0\r\n', 'the unfinished command never ran');
    // A half frame is not a command in flight: the sessions close at once, nothing is abandoned.
    assert.equal(e.code, 0);
    assert.deepEqual(e.report['sessionsClosed'], { drained: 5 });
    assert.equal(e.report['commandsAbandoned'], 0);
  });

  test('a connection storm at the listener during intercept: every connection is served or closed, the shutdown is on time, exit 0', async (t) => {
    const defer = deferrer(t);
    const g = await group(defer, 1);
    const sc = await sidecarFor(defer, g.master.port, ['--announce-delay', '1500ms']);
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    await phaseStarted(sc, 'intercept');
    const outcomes = { pong: 0, closed: 0, refused: 0, other: 0 };
    const storm = async () => {
      while (Date.now() - t0 < 2500) {
        await new Promise<void>((resolve) => {
          const s = net.connect(sc.port, '127.0.0.1');
          let got = '';
          s.on('connect', () => s.write('*1\r\n$4\r\nPING\r\n'));
          s.on('data', (d: Buffer) => {
            got += d.toString();
            if (got.includes('\r\n')) s.destroy();
          });
          s.on('error', (err: NodeJS.ErrnoException) => {
            if (err.code === 'ECONNREFUSED') outcomes.refused++;
          });
          s.on('close', () => {
            if (got === '+PONG\r\n') outcomes.pong++;
            else if (got === '') outcomes.closed++;
            else outcomes.other++;
            resolve();
          });
        });
      }
    };
    await Promise.all(Array.from({ length: 50 }, storm));
    const e = await exitOf(sc, t0);
    assert.equal(e.code, 0);
    assert.ok(outcomes.pong > 0, 'served while announcing');
    assert.equal(outcomes.other, 0, `every connection got PONG or a close: ${JSON.stringify(outcomes)}`);
    assert.ok(e.elapsedMs < DEADLINE_MS, `exited after ${e.elapsedMs} ms`);
  });
});
