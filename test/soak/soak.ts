/**
 * `make soak`: a bounded random soak of the whole exit. Each run starts a master, a replica and the
 * sidecar (the CLI as a child process), puts mixed load through it (harness/write-load.ts's pipelined
 * writers, a reconnecting writer that retries unanswered commands, MULTI/EXEC, pub/sub, BLPOP, one
 * client that never reads), and at a random moment triggers the shutdown by one of SIGTERM,
 * POST /drain, the trigger file and GET /drain/gate. After the exit it checks that no acknowledged
 * write is missing on the replica and no unacknowledged write ran on the master.
 *
 *   SOAK_SECONDS  how long to keep starting runs (default 300)
 *   SOAK_SEED     the random seed (default: fresh, printed)
 *
 * The never-reading client asks for more than socket buffers hold, so its replies are abandoned at
 * the deadline and a run's exit code is 2 by design; 0 or 2 are accepted, anything else fails.
 * Exit status: 0 when every run lost nothing, ran nothing unacknowledged and exited in time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReplicationGroup } from '../../harness/redis-server.js';
import { spawnSidecar } from '../../harness/sidecar-process.js';
import { WriteLoad, verifyWrites } from '../../harness/write-load.js';
import { RespClient } from '../../harness/resp-client.js';
import { PubSubPair, RetryingWriter, TransactionLoop, blockingLoop, neverReader } from './clients.js';
import { prng } from '../support/prng.js';

export const TRIGGERS = ['SIGTERM', 'http', 'file', 'gate'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** intercept 1.3s + drain 2s + close_clients 1s + replication_sync 5s + release 1s = 10.3s <= 12s. */
const BUDGETS = [
  '--announce-delay',
  '300ms',
  '--drain-timeout',
  '2s',
  '--close-timeout',
  '1s',
  '--replication-timeout',
  '5s',
  '--release-timeout',
  '1s',
  '--shutdown-deadline',
  '12s',
  '--log-level',
  'info',
];
const DEADLINE_MS = 12_000;
const BIG_VALUE_BYTES = 64 * 1024;

export interface RunResult {
  trigger: Trigger;
  triggerAfterMs: number;
  exitCode: number | null;
  shutdownMs: number;
  acknowledged: number;
  lost: number;
  phantom: number;
  outcomes: string;
  ok: boolean;
  problem?: string;
}

/** The soak's generator: seedable, so SOAK_SEED replays a run. */
export const random = prng;

async function countExisting(port: number, keys: readonly string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const c = await RespClient.connect('127.0.0.1', port);
  try {
    let n = 0;
    for (let i = 0; i < keys.length; i += 1000) {
      const [r] = await c.pipeline([['EXISTS', ...keys.slice(i, i + 1000)]], 30_000);
      n += Number(r);
    }
    return n;
  } finally {
    c.close();
  }
}

/** One run: servers, sidecar, load, a trigger `triggerAfterMs` after the load starts, checks. */
export async function runOnce(trigger: Trigger, triggerAfterMs: number): Promise<RunResult> {
  const cleanup: Array<() => unknown> = [];
  const triggerDir = mkdtempSync(join(tmpdir(), 'pika-sidecar-soak-'));
  cleanup.push(() => rmSync(triggerDir, { recursive: true, force: true }));
  try {
    const g = await startReplicationGroup(1);
    const replica = g.replicas[0]!;
    cleanup.push(
      () => g.master.stop(),
      () => replica.stop(),
    );
    const setup = await RespClient.connect('127.0.0.1', g.master.port);
    await setup.pipeline([['SET', 'soak:big', 'x'.repeat(BIG_VALUE_BYTES)]], 5000);
    setup.close();
    const sc = await spawnSidecar(g.master.port, [...BUDGETS, '--trigger-dir', triggerDir]);
    cleanup.push(() => sc.kill());

    const load = await WriteLoad.start({ host: '127.0.0.1', port: sc.port, connections: 4, batch: 32, maxWritesPerSec: 20_000 });
    cleanup.push(() => load.destroy());
    const writer = new RetryingWriter(sc.port);
    cleanup.push(() => writer.stop());
    const tx = await TransactionLoop.start(sc.port);
    const pubsub = await PubSubPair.start(sc.port);
    cleanup.push(() => pubsub.destroy());
    const blocked = await blockingLoop(sc.port);
    cleanup.push(() => blocked.destroy());
    const silent = await neverReader(sc.port, 'soak:big', 400);
    cleanup.push(() => silent.destroy());

    await new Promise((r) => setTimeout(r, triggerAfterMs));
    const t0 = Date.now();
    switch (trigger) {
      case 'SIGTERM':
        sc.proc.kill('SIGTERM');
        break;
      case 'http':
        await fetch(`${sc.admin}/drain`, { method: 'POST' });
        break;
      case 'file':
        writeFileSync(join(triggerDir, 'drain'), '');
        break;
      case 'gate':
        void fetch(`${sc.admin}/drain/gate`).catch(() => undefined);
        break;
    }
    const exit = await Promise.race([sc.exited, new Promise<null>((r) => setTimeout(() => r(null), DEADLINE_MS + 5000).unref())]);
    const shutdownMs = (exit?.at ?? Date.now()) - t0;
    // The clients: no new work; the writer stops once nothing answers any more.
    writer.stop();
    tx.stopSending();
    await Promise.race([Promise.all([load.finished, writer.done, tx.done]), new Promise((r) => setTimeout(r, 5000))]);

    const verdict = await verifyWrites(
      load.ledger(),
      { master: { host: '127.0.0.1', port: g.master.port }, replica: { host: '127.0.0.1', port: replica.port } },
      load.valueBytes,
    );
    const txKeys = (ns: readonly number[]) => ns.flatMap((n) => [`soak:tx:${n}:a`, `soak:tx:${n}:b`]);
    const writerLost = writer.acked.length - (await countExisting(replica.port, writer.acked));
    const txLost = 2 * tx.committed.length - (await countExisting(replica.port, txKeys(tx.committed)));
    const writerPhantom = await countExisting(g.master.port, writer.unanswered);
    const txPhantom = await countExisting(g.master.port, txKeys(tx.unanswered));
    const lost = verdict.missingOnReplica + verdict.wrongValueOnReplica + writerLost + txLost;
    const phantom = verdict.phantomExecutions + writerPhantom + txPhantom;
    const report = sc.report();
    const outcomes = sc
      .phaseOutcomes()
      .map(([p, o]) => `${p}:${o}`)
      .join(' ');
    const problems: string[] = [];
    if (exit === null) problems.push(`no exit within ${DEADLINE_MS + 5000} ms`);
    else if (exit.code !== 0 && exit.code !== 2) problems.push(`exit code ${exit.code}`);
    if (report === undefined) problems.push('no shutdown report');
    if (lost > 0) problems.push(`${lost} acknowledged writes missing on the replica`);
    if (phantom > 0) problems.push(`${phantom} unacknowledged writes ran`);
    return {
      trigger,
      triggerAfterMs,
      exitCode: exit?.code ?? null,
      shutdownMs,
      acknowledged: verdict.acknowledged + writer.acked.length + 2 * tx.committed.length,
      lost,
      phantom,
      outcomes,
      ok: problems.length === 0,
      ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
    };
  } finally {
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function summaryTable(results: readonly RunResult[]): string {
  const times = results.map((r) => r.shutdownMs).sort((a, b) => a - b);
  const triggers = TRIGGERS.map((t) => `${t} ${results.filter((r) => r.trigger === t).length}`).join(', ');
  const codes = [...new Set(results.map((r) => r.exitCode))]
    .sort()
    .map((c) => `${c}: ${results.filter((r) => r.exitCode === c).length}`)
    .join(', ');
  const sum = (f: (r: RunResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const rows: Array<[string, string]> = [
    ['runs', `${results.length} (${results.filter((r) => r.ok).length} passed)`],
    ['triggers', triggers],
    ['exit codes', codes],
    ['shutdown time p50', `${(percentile(times, 50) / 1000).toFixed(2)} s`],
    ['shutdown time p99', `${(percentile(times, 99) / 1000).toFixed(2)} s`],
    ['writes acknowledged', String(sum((r) => r.acknowledged))],
    ['lost', String(sum((r) => r.lost))],
    ['phantom', String(sum((r) => r.phantom))],
  ];
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

async function main(): Promise<number> {
  const seconds = Number(process.env['SOAK_SECONDS'] ?? 300);
  const seed = process.env['SOAK_SEED'] !== undefined ? Number(process.env['SOAK_SEED']) : Math.floor(Math.random() * 2 ** 32);
  const rnd = random(seed);
  console.log(`soak: ${seconds} s, seed ${seed} (SOAK_SEED=${seed} repeats the choices)`);
  const until = Date.now() + seconds * 1000;
  const results: RunResult[] = [];
  while (Date.now() < until) {
    const trigger = TRIGGERS[Math.floor(rnd() * TRIGGERS.length)]!;
    const after = Math.round(300 + rnd() * 2700);
    let r: RunResult;
    try {
      r = await runOnce(trigger, after);
    } catch (err) {
      r = {
        trigger,
        triggerAfterMs: after,
        exitCode: null,
        shutdownMs: 0,
        acknowledged: 0,
        lost: 0,
        phantom: 0,
        outcomes: '',
        ok: false,
        problem: `run failed: ${(err as Error).message}`,
      };
    }
    results.push(r);
    console.log(
      `run ${String(results.length).padStart(3)}  ${r.trigger.padEnd(7)} at ${String(r.triggerAfterMs).padStart(4)} ms  exit ${r.exitCode}  ` +
        `shutdown ${(r.shutdownMs / 1000).toFixed(2)} s  acknowledged ${r.acknowledged}  lost ${r.lost}  phantom ${r.phantom}  ${r.ok ? 'pass' : `FAIL: ${r.problem}`}`,
    );
  }
  console.log(`\n${summaryTable(results)}`);
  return results.length > 0 && results.every((r) => r.ok) ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(await main());
