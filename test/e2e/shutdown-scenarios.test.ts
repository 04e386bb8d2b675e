/**
 * Every exit scenario with the real CLI as a child process against real redis-server master and
 * replica processes: exit code, elapsed time, the ordered phase log lines, and the data.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { startReplicationGroup, type RedisServer } from '../../harness/redis-server.js';
import { spawnSidecar, type CliSidecar } from '../../harness/sidecar-process.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';
import { WriteLoad, verifyWrites } from '../../harness/write-load.js';

const PHASE_ORDER = ['intercept', 'drain', 'close_clients', 'replication_sync', 'release'];

async function group(
  t: Parameters<typeof deferrer>[0],
  replicas = 1,
): Promise<{ master: RedisServer; replicas: RedisServer[]; defer: ReturnType<typeof deferrer> }> {
  const defer = deferrer(t);
  const g = await startReplicationGroup(replicas);
  defer(() => g.master.stop());
  for (const r of g.replicas) defer(() => r.stop());
  return { ...g, defer };
}

async function sidecarFor(defer: ReturnType<typeof deferrer>, master: RedisServer, args: string[] = []): Promise<CliSidecar> {
  const sc = await spawnSidecar(master.port, args);
  defer(() => sc.kill());
  return sc;
}

function assertPhasesInOrder(sc: CliSidecar): void {
  assert.deepEqual(
    sc.phaseOutcomes().map(([p]) => p),
    PHASE_ORDER,
    'each phase logs exactly one finished line, in order',
  );
  const last = sc.logs.at(-1);
  assert.ok(last?.report, `the last log line is the shutdown report; it was: ${JSON.stringify(last)}`);
}

/** A client with an open MULTI: the drain lets it finish, so it holds the drain open. */
async function openTransaction(defer: ReturnType<typeof deferrer>, sc: CliSidecar): Promise<RawClient> {
  const c = await RawClient.connect(sc.port);
  defer(() => c.close());
  c.write(resp('MULTI'));
  await c.untilEndsWith('+OK\r\n');
  return c;
}

async function put(load: WriteLoad, atLeast: number): Promise<void> {
  await waitFor(() => load.stats().acknowledged >= atLeast, { timeoutMs: 15_000, what: `${atLeast} acknowledged writes` });
}

describe('shutdown scenarios (CLI child process, real redis-server processes)', () => {
  test('idle: SIGTERM walks the five phases in order and exits 0 quickly', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master);
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const { code, at } = await sc.exited;
    assert.equal(code, 0);
    assert.ok(at - t0 < 3000, `exited in ${at - t0} ms`);
    assertPhasesInOrder(sc);
    const report = sc.report()!;
    assert.equal(report.exitCode, 0);
    assert.equal(report.reason, 'SIGTERM');
    assert.deepEqual(
      sc.phaseOutcomes().map(([, o]) => o),
      ['completed', 'completed', 'skipped', 'completed', 'completed'],
    );
  });

  test('pipelined write load from many connections: every acknowledged write is on the replica, no unacknowledged write ran', async (t) => {
    const { master, replicas, defer } = await group(t);
    const sc = await sidecarFor(defer, master);
    const load = await WriteLoad.start({ host: '127.0.0.1', port: sc.port, connections: 16, batch: 64 });
    defer(() => load.destroy());
    await put(load, 20_000);
    sc.proc.kill('SIGTERM');
    const { code } = await sc.exited;
    await load.finished;
    assert.equal(code, 0);
    assertPhasesInOrder(sc);
    const verdict = await verifyWrites(
      load.ledger(),
      { master: { host: '127.0.0.1', port: master.port }, replica: { host: '127.0.0.1', port: replicas[0]!.port } },
      load.valueBytes,
    );
    assert.ok(verdict.acknowledged >= 20_000);
    assert.equal(verdict.missingOnReplica, 0, 'no acknowledged write is missing on the replica');
    assert.equal(verdict.wrongValueOnReplica, 0);
    assert.equal(verdict.phantomExecutions, 0, 'no write without a reply was executed');
    assert.equal(sc.report()!.commandsAbandoned, 0);
  });

  test('a MULTI in progress is let through to EXEC during the drain, then the connection closes', async (t) => {
    const { master, replicas, defer } = await group(t);
    const sc = await sidecarFor(defer, master);
    const c = await RawClient.connect(sc.port);
    defer(() => c.close());
    c.write(Buffer.concat([resp('MULTI'), resp('SET', 'tx:a', '1')]));
    await c.untilEndsWith('+QUEUED\r\n');
    sc.proc.kill('SIGTERM');
    await sc.waitForLog((l) => l.msg === 'phase drain started');
    c.write(Buffer.concat([resp('INCR', 'tx:a'), resp('EXEC'), resp('SET', 'after-exec', 'x')]));
    await c.waitClosed();
    assert.equal(c.received.toString(), '+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n');
    assert.equal((await sc.exited).code, 0);
    assert.equal(await master.raw('GET tx:a'), '$1\r\n2\r\n');
    assert.equal(await master.raw('EXISTS after-exec'), ':0\r\n', 'the command after EXEC was never forwarded');
    assert.equal(await replicas[0]!.raw('GET tx:a'), '$1\r\n2\r\n');
  });

  test('subscribers are closed during the drain at a frame boundary', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master);
    const sub = await RawClient.connect(sc.port);
    defer(() => sub.close());
    sub.write(resp('SUBSCRIBE', 'ch'));
    await sub.untilEndsWith(':1\r\n');
    sc.proc.kill('SIGTERM');
    await sub.waitClosed();
    assert.equal((await sc.exited).code, 0);
    assert.deepEqual(sc.report()!.sessionsClosed, { drained: 1 });
  });

  test('a BLPOP blocked forever is unblocked in close_clients: the client gets its timeout reply, then the close', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master);
    const c = await RawClient.connect(sc.port);
    defer(() => c.close());
    c.write(resp('BLPOP', 'nothing', '0'));
    await waitFor(
      async () => (await (await fetch(`${sc.admin}/metrics`)).text()).includes('pika_sidecar_client_connections{mode="blocked"} 1'),
      { what: 'a blocked session' },
    );
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    await c.waitClosed();
    assert.equal(c.received.toString(), '*-1\r\n', 'the client got the reply BLPOP gives on timeout');
    const { code, at } = await sc.exited;
    assert.equal(code, 0);
    assert.ok(at - t0 < 3000);
    const outcomes = Object.fromEntries(sc.phaseOutcomes());
    assert.equal(outcomes.drain, 'completed', 'a blocked session does not hold the drain');
    assert.equal(outcomes.close_clients, 'completed');
    assert.equal(sc.report()!.commandsAbandoned, 0);
    assert.deepEqual(sc.report()!.sessionsClosed, { unblocked: 1 });
  });

  test('a replica stalled with SIGSTOP holds replication_sync until it resumes; then exit 0 and nothing is lost', async (t) => {
    const { master, replicas, defer } = await group(t);
    const replica = replicas[0]!;
    const sc = await sidecarFor(defer, master);
    const load = await WriteLoad.start({ host: '127.0.0.1', port: sc.port, connections: 8, batch: 64 });
    defer(() => load.destroy());
    await put(load, 5_000);
    replica.pause();
    defer(() => replica.resume());
    await put(load, load.stats().acknowledged + 5_000);
    sc.proc.kill('SIGTERM');
    await sc.waitForLog((l) => l.msg === 'phase replication_sync started', 15_000);
    const stalledAt = Date.now();
    await waitFor(() => Date.now() - stalledAt >= 1000, { what: 'a second of stall', intervalMs: 50 });
    assert.equal(sc.proc.exitCode, null, 'still waiting for the stalled replica');
    replica.resume();
    const { code } = await sc.exited;
    assert.equal(code, 0);
    const rs = sc.logs.find(
      (l) => l.phase === 'replication_sync' && typeof l.outcome === 'string' && l.durationMs !== undefined && l.msg?.startsWith('phase'),
    )!;
    assert.equal(rs.outcome, 'completed');
    assert.ok((rs.durationMs as number) >= 900);
    const verdict = await verifyWrites(
      load.ledger(),
      { master: { host: '127.0.0.1', port: master.port }, replica: { host: '127.0.0.1', port: replica.port } },
      load.valueBytes,
    );
    assert.equal(verdict.missingOnReplica, 0);
    assert.equal(verdict.phantomExecutions, 0);
  });

  test('a replica that never resumes: replication_sync times out on its budget, the report names it, exit 2', async (t) => {
    const { master, replicas, defer } = await group(t);
    const replica = replicas[0]!;
    const sc = await sidecarFor(defer, master, ['--replication-timeout', '1500ms']);
    const c = await RawClient.connect(sc.port);
    replica.pause();
    defer(() => replica.resume());
    c.write(resp('SET', 'late', 'write'));
    await c.untilEndsWith('+OK\r\n');
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const { code, at } = await sc.exited;
    assert.equal(code, 2);
    assert.ok(at - t0 < 4000, `exited in ${at - t0} ms`);
    assert.equal(Object.fromEntries(sc.phaseOutcomes()).replication_sync, 'timed_out');
    const report = sc.report() as { replication: { replicas: Array<{ address: string; verdict: string }> } };
    assert.ok(
      report.replication.replicas.some((r) => r.address.endsWith(`:${replica.port}`) && r.verdict !== 'converged'),
      JSON.stringify(report.replication),
    );
    assertPhasesInOrder(sc);
  });

  test('the backend killed mid-drain: its clients are closed, the shutdown finishes within budget with exit 2', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master); // the default 20 s replication budget
    const c = await openTransaction(defer, sc); // holds the drain open
    sc.proc.kill('SIGTERM');
    await sc.waitForLog((l) => l.msg === 'phase drain started');
    const killedAt = Date.now();
    await master.kill();
    await c.waitClosed();
    const { code, at } = await sc.exited;
    assert.equal(code, 2);
    assert.ok(at - killedAt < 8000, `a dead backend is not waited for until the budget ends (exited ${at - killedAt} ms after the kill)`);
    assertPhasesInOrder(sc);
    assert.equal(Object.fromEntries(sc.phaseOutcomes()).replication_sync, 'failed');
    assert.match(String((sc.report()!.replication as { reason: string }).reason), /refused connections/);
    assert.equal((sc.report()!.sessionsClosed as Record<string, number>).backend_closed, 1);
  });

  test('a second signal forces: the current phase aborts, the rest run without waiting, exit 3 within 2 s', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master);
    await openTransaction(defer, sc); // holds the drain open
    sc.proc.kill('SIGTERM');
    await sc.waitForLog((l) => l.msg === 'phase drain started');
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const { code, at } = await sc.exited;
    assert.equal(code, 3);
    assert.ok(at - t0 < 2000, `exited ${at - t0} ms after the second signal`);
    assert.equal(Object.fromEntries(sc.phaseOutcomes()).drain, 'forced');
    assertPhasesInOrder(sc);
  });

  test('POST /drain starts the shutdown (202); a SIGTERM during it joins it instead of forcing; exit 0', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master);
    const c = await openTransaction(defer, sc); // holds the drain open
    const r = await fetch(`${sc.admin}/drain`, { method: 'POST' });
    assert.equal(r.status, 202);
    assert.equal((await fetch(`${sc.admin}/drain`, { method: 'POST' })).status, 202, 'idempotent');
    await sc.waitForLog((l) => l.msg === 'phase drain started');
    assert.equal((await fetch(`${sc.admin}/readyz`)).status, 503);
    assert.equal((await fetch(`${sc.admin}/healthz`)).status, 200);
    sc.proc.kill('SIGTERM');
    await sc.waitForLog((l) => l.msg === 'signal joins the shutdown already under way');
    c.write(resp('EXEC'));
    await c.waitClosed();
    const { code } = await sc.exited;
    assert.equal(code, 0);
    assert.equal(sc.report()!.reason, 'http');
  });

  test('POST /drain?wait=true answers 200 once drained', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master, ['--metrics-linger', '500ms']);
    const r = await fetch(`${sc.admin}/drain?wait=true`, { method: 'POST' });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { result: string; status: { phase: string } };
    assert.equal(body.result, 'drained');
    assert.equal(body.status.phase, 'drained');
    assert.equal((await sc.exited).code, 0);
  });

  test('--hold-until-signal: after an HTTP-triggered shutdown the process stays up, probes answering, until its SIGTERM; then exit 0', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master, ['--hold-until-signal']);
    assert.equal((await fetch(`${sc.admin}/drain?wait=true`, { method: 'POST' })).status, 200);
    await sc.waitForLog((l) => l.report !== undefined);
    // Still running after the report: a native sidecar must not exit before its own SIGTERM.
    assert.equal((await fetch(`${sc.admin}/healthz`)).status, 200);
    assert.equal((await fetch(`${sc.admin}/readyz`)).status, 503);
    const status = (await (await fetch(`${sc.admin}/status`)).json()) as { phase: string; shutdown: { exitCode: number | null } };
    assert.deepEqual([status.phase, status.shutdown.exitCode], ['exited', 0], '/status shows the finished shutdown and its exit code');
    assert.equal(sc.proc.exitCode, null);
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const { code, at } = await sc.exited;
    assert.equal(code, 0);
    assert.ok(at - t0 < 1500, `exited ${at - t0} ms after SIGTERM`);
    assertPhasesInOrder(sc);
    assert.equal(sc.report()!.reason, 'http');
  });

  test('the trigger file starts the shutdown and the drained marker appears when the gate opens', async (t) => {
    const { master, defer } = await group(t);
    const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-gate-'));
    defer(() => rmSync(dir, { recursive: true, force: true }));
    const sc = await sidecarFor(defer, master, ['--trigger-dir', dir]);
    writeFileSync(join(dir, 'drain'), '');
    await waitFor(() => existsSync(join(dir, 'drained')), { what: 'the drained marker', timeoutMs: 10_000 });
    const marker = JSON.parse(readFileSync(join(dir, 'drained'), 'utf8')) as { phases: Array<{ phase: string }> };
    assert.deepEqual(
      marker.phases.map((p) => p.phase),
      ['intercept', 'drain', 'close_clients', 'replication_sync'],
    );
    assert.equal((await sc.exited).code, 0);
    assert.equal(sc.report()!.reason, 'file');
  });

  test('GET /drain/gate starts the drain and answers 200 only once the sidecar is drained', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master, ['--metrics-linger', '500ms']);
    const c = await openTransaction(defer, sc); // holds the drain open
    let answered = false;
    const gate = fetch(`${sc.admin}/drain/gate`).then((r) => {
      answered = true;
      return r;
    });
    await sc.waitForLog((l) => l.msg === 'phase drain started');
    assert.equal(answered, false, 'the gate holds while a transaction is open');
    c.write(resp('EXEC'));
    const r = await gate;
    assert.equal(r.status, 200);
    const body = (await r.json()) as { status: { phase: string } };
    assert.equal(body.status.phase, 'drained');
    assert.equal((await sc.exited).code, 0);
    assert.equal(sc.report()!.reason, 'gate');
  });

  test('a Prometheus scrape held open during the drain does not delay the exit', async (t) => {
    const { master, defer } = await group(t);
    const sc = await sidecarFor(defer, master, ['--metrics-linger', '200ms']);
    // A scraper that opened a keep-alive connection and sent only half a request.
    const slow = net.connect(sc.adminPort, '127.0.0.1');
    defer(() => slow.destroy());
    slow.on('error', () => undefined);
    await new Promise((r) => slow.once('connect', r));
    slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    const done = await fetch(`${sc.admin}/metrics`, { headers: { connection: 'keep-alive' } });
    await done.text();
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const { code, at } = await sc.exited;
    assert.equal(code, 0);
    assert.ok(at - t0 < 2500, `exited in ${at - t0} ms with a scrape held open`);
  });
});
