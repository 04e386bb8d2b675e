/**
 * The refusal flood of issue 9, measured: four clients that never read their replies send a
 * denied command (`SHUTDOWN`) in a loop for FLOOD_SECONDS (default 15) through a sidecar process
 * (the CLI, logging at FLOOD_LOG_LEVEL, default info). Prints the sidecar's peak RSS, its log line count and how many
 * refusals it issued; exits 1 when the peak RSS is over FLOOD_MAX_RSS_MB (default 300).
 * A script, not a test: it takes its full duration. Run it by hand:
 *
 *   node dist/test/bench/refusal-flood.js
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { RedisServer } from '../../harness/redis-server.js';
import { spawnSidecar } from '../../harness/sidecar-process.js';
import { resp } from '../../harness/raw-client.js';

const SECONDS = Number(process.env['FLOOD_SECONDS'] ?? '15');
const MAX_RSS_MB = Number(process.env['FLOOD_MAX_RSS_MB'] ?? '300');
const CLIENTS = 4;
/** info: every refusal is a log candidate (LogSummary); warn: the data path runs unthrottled by logging. */
const LOG_LEVEL = process.env['FLOOD_LOG_LEVEL'] ?? 'info';

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const redis = await RedisServer.start();
  const sc = await spawnSidecar(redis.port, ['--log-level', LOG_LEVEL]);
  const pid = sc.proc.pid!;
  const startRss = rssMb(pid);
  const batch = Buffer.concat(Array.from({ length: 1000 }, () => resp('SHUTDOWN')));
  const sockets: net.Socket[] = [];
  let written = 0;
  let stop = false;
  for (let i = 0; i < CLIENTS; i++) {
    const s = net.connect(sc.port, '127.0.0.1');
    s.pause(); // never reads
    s.on('error', () => undefined);
    const pump = () => {
      while (!stop && s.write(batch)) written += batch.length;
      if (!stop) written += batch.length;
    };
    s.on('connect', pump);
    s.on('drain', pump);
    sockets.push(s);
  }
  let peak = startRss;
  const started = Date.now();
  const samples: string[] = [];
  let lastSample = -1;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const rss = rssMb(pid);
      peak = Math.max(peak, rss);
      const t = Math.round((Date.now() - started) / 1000);
      if (t !== lastSample && t % 3 === 0) {
        lastSample = t;
        samples.push(`${t}s ${rss.toFixed(0)} MB`);
      }
      if (Date.now() - started >= SECONDS * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 250);
  });
  stop = true;
  const metrics = await (await fetch(`${sc.admin}/metrics`)).text();
  const denied = /_denied_commands_total(?:\{[^}]*\})? (\d+)/.exec(metrics)?.[1] ?? '?';
  const refusalLines = sc.logs.filter((l) => l.msg?.startsWith('refused a command')).length;
  for (const s of sockets) s.destroy();
  sc.proc.kill('SIGTERM');
  await sc.exited;
  await redis.stop();
  console.log(`refusal flood: ${CLIENTS} non-reading clients sending SHUTDOWN for ${SECONDS} s (log level ${LOG_LEVEL})`);
  console.log(
    `  sidecar RSS: start ${startRss.toFixed(0)} MB, peak ${peak.toFixed(0)} MB (limit ${MAX_RSS_MB} MB); samples: ${samples.join(', ')}`,
  );
  console.log(`  bytes the clients got into their sockets: ${(written / 1e6).toFixed(1)} MB; refusals issued: ${denied}`);
  console.log(`  log lines: ${sc.logs.length} in total, ${refusalLines} about refusals`);
  if (!(peak <= MAX_RSS_MB)) {
    console.log('  FAIL: peak RSS over the limit');
    process.exitCode = 1;
  }
}

await main();
