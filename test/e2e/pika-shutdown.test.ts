/**
 * The Pika dialect through the real CLI: the sidecar in front of a fake Pika master (answering
 * INFO from the fixtures, rewritten to loopback) whose `slaveN` lines name fake Pika replicas. The
 * sidecar detects the dialect from `INFO server`, asks each replica for its own binlog position,
 * and lets the backend stop only once every db position equals the master's.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pikaGroup, readPikaFixture, withBinlog } from '../support/fake-pika.js';
import { spawnSidecar } from '../../harness/sidecar-process.js';
import { deferrer } from '../support/defer.js';

const MASTER = readPikaFixture('v4.0.1-master-two-slaves.txt'); // db0 (2, 384)
const CAUGHT_UP = readPikaFixture('v4.0.1-slave-caught-up.txt'); // db0 (2, 384), link up

describe('Pika dialect, end to end through the CLI', () => {
  test('replication_sync waits for a Pika replica whose binlog position is behind, then exits 0 once it matches', async (t) => {
    const defer = deferrer(t);
    const behind = withBinlog(CAUGHT_UP, 'db0', 2, 100);
    const g = await pikaGroup(t, MASTER, [CAUGHT_UP, behind]);
    const sc = await spawnSidecar(g.master.port, ['--replication-settle', '50ms']);
    defer(() => sc.kill());
    sc.proc.kill('SIGTERM');
    await sc.waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('waiting for replicas: 1 of 2 reached the target'),
      10_000,
      'the wait to name one replica behind',
    );
    assert.equal(sc.proc.exitCode, null, 'still waiting for the replica behind');
    g.setReplica(1, CAUGHT_UP);
    const { code } = await sc.exited;
    assert.equal(code, 0);
    const report = sc.report() as {
      replication: { outcome: string; target: string; replicas: Array<{ address: string; verdict: string; position: string }> };
    };
    assert.equal(report.replication.outcome, 'converged');
    assert.deepEqual(
      report.replication.replicas.map((r) => [r.address, r.verdict]).sort(),
      g.replicas.map((r) => [`127.0.0.1:${r.port}`, 'converged']).sort(),
    );
    assert.ok(
      sc.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('backend kind is pika')),
      'the dialect was detected from INFO server',
    );
  });

  test('a Pika replica ahead of the master is reported diverged at once: replication_sync fails, exit 2', async (t) => {
    const defer = deferrer(t);
    const ahead = withBinlog(CAUGHT_UP, 'db0', 3, 0);
    const g = await pikaGroup(t, MASTER, [CAUGHT_UP, ahead]);
    const sc = await spawnSidecar(g.master.port);
    defer(() => sc.kill());
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const { code, at } = await sc.exited;
    assert.equal(code, 2);
    assert.ok(at - t0 < 5000, `a diverged replica is not waited for (exited in ${at - t0} ms; the budget is 20 s)`);
    assert.equal(Object.fromEntries(sc.phaseOutcomes()).replication_sync, 'failed');
    const report = sc.report() as { replication: { replicas: Array<{ address: string; verdict: string }> } };
    assert.equal(report.replication.replicas.find((r) => r.address === `127.0.0.1:${g.replicas[1]!.port}`)?.verdict, 'diverged');
  });
});
