/** The interleaved rounds: every target runs every workload once per round, order rotated per round. */
import { cpuSeconds } from './processes.js';
import { runRedisBenchmark } from './redis-benchmark.js';
import type { BenchSettings, Workload } from './settings.js';
import { rotated, type Sample } from './stats.js';
import type { Target } from './targets.js';

export async function runRounds(targets: Target[], settings: BenchSettings, log: (line: string) => void): Promise<Sample[]> {
  // Warm-up (not recorded): JIT, pool and socket buffers of each proxy reach steady state.
  const warmup: Workload = { name: 'warm-up', clients: 50, pipeline: 16, requests: Math.max(1000, Math.round(100_000 * settings.scale)) };
  for (const t of targets) await runRedisBenchmark(t.port, warmup);
  const samples: Sample[] = [];
  for (let round = 0; round < settings.rounds; round++) {
    for (const w of settings.workloads) {
      for (const t of rotated(targets, round)) {
        const started = Date.now();
        const cpuBefore = cpuSeconds(t.pid);
        const rows = await runRedisBenchmark(t.port, w);
        const cpuAfter = cpuSeconds(t.pid);
        // redis-benchmark sends w.requests SETs and w.requests GETs.
        const cpuUsPerRequest =
          cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1e6) / (2 * w.requests);
        for (const row of rows) samples.push({ target: t.name, workload: w.name, round, row, cpuUsPerRequest });
        const rps = (test: string): string => Math.round(rows.find((r) => r.test === test)?.rps ?? 0).toLocaleString('en-US');
        log(
          `round ${round + 1}/${settings.rounds}  ${w.name.padEnd(15)} ${t.name.padEnd(9)} ` +
            `SET ${rps('SET')}  GET ${rps('GET')} req/s  (${((Date.now() - started) / 1000).toFixed(1)} s)`,
        );
      }
    }
  }
  return samples;
}
