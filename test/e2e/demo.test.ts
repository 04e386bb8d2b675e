/**
 * `make demo` end to end: the real entry point (`node dist/demo/demo.js --json`) as a child
 * process, with its own redis master, replica and sidecar. Asserts the verdict it reports and the
 * shutdown it observed, and that it leaves no process behind — after a full run and after Ctrl-C.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../harness/wait.js';
import { RedisServer } from '../../harness/redis-server.js';
import { demoKey, demoValue, verifyWrites } from '../../harness/write-load.js';
import type { TimelineRow } from '../../demo/demo.js';

// dist/test/e2e/demo.test.js -> dist/demo/demo.js
const DEMO = fileURLToPath(new URL('../../demo/demo.js', import.meta.url));
const PHASE_ORDER = ['intercept', 'drain', 'close_clients', 'replication_sync', 'release'];

type Row = TimelineRow;

interface Summary {
  pass: boolean;
  exitCode: number;
  load: { acknowledged: number; openConnections: number; acknowledgedAfterSigterm: number } | null;
  sidecar: { exitCode: number | null; killed: boolean; report: { exitCode?: number } | null } | null;
  timeline: Row[];
  verdict: {
    acknowledged: number;
    missingOnReplica: number;
    wrongValueOnReplica: number;
    phantomExecutions: number;
    unanswered: number;
  } | null;
  pids: number[];
  error?: string;
}

function startDemo(): {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; ms: number }>;
} {
  const started = Date.now();
  const proc = spawn(process.execPath, ['--enable-source-maps', DEMO, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; ms: number }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, ms: Date.now() - started })),
  );
  return { proc, stdout: () => out, stderr: () => err, exit };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childPids(pid: number): number[] {
  const r = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
}

describe('make demo', () => {
  test('a full run reports every acknowledged write on the replica, no phantom execution, and an ordered clean shutdown', async (t) => {
    const demo = startDemo();
    t.after(() => {
      if (demo.proc.exitCode === null) demo.proc.kill('SIGKILL');
    });
    const { code, ms } = await demo.exit;
    const text = demo.stdout();
    let summary: Summary;
    try {
      summary = JSON.parse(text) as Summary;
    } catch {
      assert.fail(`demo printed no JSON summary (exit ${code}); stdout:\n${text}\nstderr:\n${demo.stderr()}`);
    }
    assert.equal(summary.error, undefined, `demo error: ${summary.error}`);
    assert.equal(code, 0, `demo exit code; summary: ${text}`);
    assert.ok(ms < 60_000, `the demo took ${ms} ms`);
    assert.equal(summary.pass, true);

    const v = summary.verdict;
    assert.ok(v !== null);
    assert.ok(v.acknowledged > 0, 'some writes were acknowledged');
    assert.equal(v.missingOnReplica, 0, 'acknowledged writes missing on the replica');
    assert.equal(v.wrongValueOnReplica, 0, 'acknowledged writes with a wrong value on the replica');
    assert.equal(v.phantomExecutions, 0, 'unanswered writes executed on the master');

    assert.equal(summary.sidecar?.exitCode, 0);
    assert.equal(summary.sidecar?.killed, false);
    assert.equal(summary.sidecar?.report?.exitCode, 0, 'the shutdown report says exit code 0');
    // The sidecar closed every load connection (at a command boundary); the load kept writing
    // through the announce delay after SIGTERM.
    assert.equal(summary.load?.openConnections, 0);
    assert.ok((summary.load?.acknowledgedAfterSigterm ?? 0) > 0, 'writes were still served after SIGTERM');

    const phases = summary.timeline.filter((r) => r.kind === 'phase');
    assert.deepEqual(
      phases.map((r) => r.phase),
      PHASE_ORDER,
    );
    for (const p of phases) {
      const allowed = p.phase === 'close_clients' ? ['completed', 'skipped'] : ['completed'];
      assert.ok(allowed.includes(p.outcome ?? ''), `phase ${p.phase} outcome ${p.outcome}`);
      assert.ok(Number.isFinite(p.atMs) && p.atMs >= -50, `phase ${p.phase} starts after SIGTERM (${p.atMs} ms)`);
    }
    for (let i = 1; i < phases.length; i++) {
      assert.ok(phases[i]!.atMs >= phases[i - 1]!.atMs, `phase ${phases[i]!.phase} starts after ${phases[i - 1]!.phase}`);
    }
    // The replica was stalled from before SIGTERM until 1.5 s after it: replication_sync can only
    // have finished after the replica resumed, i.e. the sidecar really waited for it.
    const resumed = summary.timeline.find((r) => r.kind === 'event' && r.what.startsWith('replica resumed'));
    const stalled = summary.timeline.find((r) => r.kind === 'event' && r.what.includes('stalled'));
    const sync = phases.find((r) => r.phase === 'replication_sync');
    assert.ok(resumed && stalled && sync);
    assert.ok(stalled.atMs < 0, 'the replica stalled before SIGTERM');
    assert.ok(
      sync.atMs + (sync.durationMs ?? 0) >= resumed.atMs,
      `replication_sync ended (${sync.atMs + (sync.durationMs ?? 0)} ms) after the replica resumed (${resumed.atMs} ms)`,
    );

    assert.equal(summary.pids.length, 3, 'master, replica and sidecar were started');
    for (const pid of summary.pids) assert.equal(alive(pid), false, `process ${pid} left behind`);
  });

  test('Ctrl-C while the demo runs stops every process it started and exits 130', async (t) => {
    const demo = startDemo();
    t.after(() => {
      if (demo.proc.exitCode === null) demo.proc.kill('SIGKILL');
    });
    const pid = demo.proc.pid;
    assert.ok(pid !== undefined);
    // Master, replica and sidecar are all up once the demo has three children.
    const children = await waitFor(
      () => {
        const c = childPids(pid);
        return c.length >= 3 ? c : undefined;
      },
      { timeoutMs: 20_000, what: 'the demo to start its three processes' },
    );
    demo.proc.kill('SIGINT');
    const { code } = await demo.exit;
    assert.equal(code, 130, `exit code; stdout: ${demo.stdout()} stderr: ${demo.stderr()}`);
    const summary = JSON.parse(demo.stdout()) as Summary;
    assert.match(summary.error ?? '', /interrupted/);
    for (const c of children) assert.equal(alive(c), false, `process ${c} left behind`);
  });

  test('the verdict counts a lost acknowledged write, a wrong value and an unanswered write that ran', async (t) => {
    const replica = await RedisServer.start();
    t.after(() => replica.stop());
    const master = await RedisServer.start();
    t.after(() => master.stop());
    const bytes = 32;
    // Connection 0 sent 14 SETs and got 10 replies (seq 4 an error): 0-9 answered, 10-13 unanswered.
    const ledger = [{ conn: 0, sent: 14, replies: 10, errorSeqs: [4] }];
    const onReplica: string[] = [];
    for (let seq = 0; seq < 10; seq++) {
      if (seq === 5 || seq === 4) continue; // 5 lost; 4 was an error reply (not checked)
      onReplica.push(`SET ${demoKey(0, seq)} ${seq === 7 ? 'not-the-value' : demoValue(0, seq, bytes)}`);
    }
    for (const cmd of onReplica) assert.match(await replica.raw(cmd), /^\+OK/);
    // seq 12 never got a reply, yet it ran on the master.
    assert.match(await master.raw(`SET ${demoKey(0, 12)} ${demoValue(0, 12, bytes)}`), /^\+OK/);

    const v = await verifyWrites(ledger, { replica, master }, bytes);
    assert.deepEqual(
      { ...v },
      { acknowledged: 9, unanswered: 4, errorReplies: 1, missingOnReplica: 1, wrongValueOnReplica: 1, phantomExecutions: 1, pass: false },
    );
  });
});
