/** One redis-benchmark invocation (SET then GET) against a port, bounded in time. */
import { parseBenchmarkCsv, type BenchRow } from './csv.js';
import { exitWithin, killChild, spawnTracked, tail } from '../../harness/processes.js';
import { LOOPBACK } from './processes.js';
import type { Workload } from './settings.js';

export function redisBenchmarkArgs(port: number | string, w: Workload): string[] {
  return [
    '-h',
    LOOPBACK,
    '-p',
    String(port),
    '-c',
    String(w.clients),
    '-n',
    String(w.requests),
    '-P',
    String(w.pipeline),
    '-t',
    'set,get',
    '--csv',
  ];
}

export async function runRedisBenchmark(port: number, w: Workload): Promise<BenchRow[]> {
  const args = redisBenchmarkArgs(port, w);
  const proc = spawnTracked('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = tail(proc.stdout, 20_000);
  const err = tail(proc.stderr);
  // Generous: assumes at least 10k requests/s per test, plus start-up.
  const timeoutMs = 20_000 + (2 * w.requests) / 10;
  const exit = await exitWithin(proc, timeoutMs);
  const what = `redis-benchmark ${args.join(' ')}`;
  if (exit === undefined) {
    await killChild(proc);
    throw new Error(`${what}: no result within ${Math.round(timeoutMs / 1000)} s\n${err()}`);
  }
  if (exit.code !== 0) throw new Error(`${what}: exit ${exit.code ?? exit.signal}\n${err()}${out()}`);
  const rows = parseBenchmarkCsv(out());
  for (const test of ['SET', 'GET']) {
    const row = rows.find((r) => r.test === test);
    if (row === undefined || row.rps <= 0) throw new Error(`${what}: no ${test} result\n${out()}\n${err()}`);
  }
  return rows;
}
