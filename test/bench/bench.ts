/**
 * `make bench` (design §10, docs/benchmark.md): redis-benchmark SET/GET against one redis-server
 * reached directly, through bare Node.js pipes (./bare-pipe.ts), peer proxies (HAProxy, twemproxy)
 * and the sidecar, in interleaved rounds; then memory per idle session of each, and the sidecar's
 * drain of idle sessions after SIGTERM. Prints a markdown report ranking the sidecar among its
 * peers (also written to dist/bench-results.md). A report, not a test: a missed target prints
 * MISS; the exit code is 1 only when something failed to run.
 *
 *   settings.ts         BENCH_* environment → targets, rounds, workloads
 *   processes.ts        child processes (tracked, killed on exit) and probes (/proc CPU and RSS)
 *   targets.ts peers.ts sidecar-process.ts   starting each target
 *   redis-benchmark.ts csv.ts                running one invocation and reading its CSV
 *   rounds.ts stats.ts  the interleaved rounds and the paired statistics
 *   idle-sessions.ts    idle connections: memory, and the sidecar's drain
 *   render.ts           the report
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisServer } from '../../harness/redis-server.js';
import { CLI } from '../../harness/sidecar-process.js';
import { idleMemoryPerSession, measureSidecarDrain, type DrainResult } from './idle-sessions.js';
import { atExit, installCleanupHandlers, LOOPBACK } from './processes.js';
import { renderReport } from './render.js';
import { runRounds } from './rounds.js';
import { readSettings, type TargetName } from './settings.js';
import { missingBinary, startTarget, type Skipped, type Target } from './targets.js';

const RESULTS_MD = fileURLToPath(new URL('../../bench-results.md', import.meta.url));

function log(line: string): void {
  console.error(`bench: ${line}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = os.loadavg()[0] ?? 0;
  installCleanupHandlers(log);
  const settings = readSettings(process.env, CLI);
  log(`targets ${settings.targets.join(', ')}; ${settings.rounds} rounds; request scale ${settings.scale}`);
  // maxclients above the idle sessions plus the sidecar's pool and control connection.
  const redis = await RedisServer.start({ config: ['maxclients', '12000'] });
  atExit(() => rmSync(redis.dir, { recursive: true, force: true }));
  log(`redis-server on ${LOOPBACK}:${redis.port}`);
  const targets: Target[] = [];
  const skipped: Skipped[] = [];
  try {
    for (const name of settings.targets) {
      const reason = missingBinary(name);
      if (reason !== undefined) {
        skipped.push({ name, reason });
        log(`skipping ${name}: ${reason}`);
        continue;
      }
      const t = await startTarget(name, redis, settings);
      targets.push(t);
      log(`${name} listening on ${LOOPBACK}:${t.port}`);
    }
    const samples = await runRounds(targets, settings, log);

    const idleKiB = new Map<TargetName, number | undefined>();
    if (settings.idleSessions > 0) {
      for (const t of targets) {
        idleKiB.set(t.name, await idleMemoryPerSession(t, settings.idleSessions));
        log(`idle memory: ${t.name} ${idleKiB.get(t.name)?.toFixed(1) ?? '?'} KiB per idle connection`);
      }
    }
    for (const t of targets.splice(0)) await t.stop();

    let drain: DrainResult | undefined;
    if (settings.targets.includes('sidecar') && settings.idleSessions > 0) drain = await measureSidecarDrain(redis, settings, log);

    const report = renderReport({
      settings,
      ran: settings.targets.filter((t) => !skipped.some((s) => s.name === t)),
      skipped,
      samples,
      idleKiB,
      drain,
      elapsedS: (Date.now() - started) / 1000,
      loadAtStart,
    });
    process.stdout.write(`\n${report}`);
    mkdirSync(dirname(RESULTS_MD), { recursive: true });
    writeFileSync(RESULTS_MD, report);
    log(`report written to ${RESULTS_MD}`);
  } finally {
    for (const t of targets) await t.stop();
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
