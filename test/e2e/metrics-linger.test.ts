/**
 * The linger and the release budget through the real CLI: a linger that leaves no room for the rest
 * of release is refused at start-up with both keys named; the longest accepted linger keeps the
 * admin server scrapeable after the stop gate (drained, the exit code) and still exits 0 in time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisServer } from '../../harness/redis-server.js';
import { runCli, spawnSidecar } from '../../harness/sidecar-process.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';
import { EXIT_CONFIG, EXIT_OK } from '../../src/exit-codes.js';

test('--metrics-linger 3s with the default --release-timeout 3s is refused at start-up, naming both keys', async () => {
  const { code, stderr } = await runCli(['run', '--backend', '127.0.0.1:1', '--metrics-linger', '3s']);
  assert.equal(code, EXIT_CONFIG);
  assert.match(
    stderr,
    /invalid config: shutdown\.metricsLinger = 3s \(from --metrics-linger\): expected at most shutdown\.releaseTimeout = 3s \(default\) - 1s/,
  );
});

test('the longest accepted linger: scrapes after the gate see drained and exit code 0, and the sidecar exits 0 inside release', async (t) => {
  const defer = deferrer(t);
  const redis = await RedisServer.start();
  defer(() => redis.stop());
  const sc = await spawnSidecar(redis.port, ['--metrics-linger', '2s']);
  defer(() => sc.kill());
  sc.proc.kill('SIGTERM');
  await sc.waitForLog((l) => l.msg === 'stop gate open: the backend may stop now');
  const scraped = await waitFor(
    async () => {
      const text = await (await fetch(`${sc.admin}/metrics`)).text();
      return /pika_sidecar_shutdown_phase\{phase="drained"\} 1/.test(text) ? text : undefined;
    },
    { what: 'a scrape during the linger', timeoutMs: 1500 },
  );
  assert.match(scraped, /^pika_sidecar_exit_code 0$/m, 'the linger shows the exit code the shutdown ends with');
  assert.match(scraped, /pika_sidecar_shutdown_phase\{phase="exited"\} 0/, 'exited is never scrapeable');
  const { code } = await sc.exited;
  assert.equal(code, EXIT_OK);
  const release = sc.logs.find((l) => l.phase === 'release' && l.msg === 'phase release completed');
  assert.ok(release, `release completed: ${JSON.stringify(sc.phaseOutcomes())}`);
  assert.ok((release.durationMs as number) >= 2000, 'the admin server lingered 2 s');
  assert.ok((release.durationMs as number) < 3000, `release took ${String(release.durationMs)} ms of its 3 s`);
});
