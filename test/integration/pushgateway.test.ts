/**
 * The final push of the shutdown metrics (a scrape may miss a short shutdown, and never sees the
 * process after its admin server closed): read back from a real prometheus-pushgateway process;
 * and a Pushgateway that is down or never answers costs at most the push's own short timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { redisWithSidecar } from '../support/sidecar.js';
import { deferrer } from '../support/defer.js';
import { freePort } from '../../harness/ports.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { PUSHGATEWAY, PushgatewayProcess, missingBinary } from '../support/prometheus.js';
import { PUSH_JOB, PUSH_TIMEOUT_MS } from '../../src/observability/pushgateway.js';
import { EXIT_OK, EXIT_PHASE_FAILED } from '../../src/exit-codes.js';
import { PHASE_OUTCOMES } from '../../src/observability/names.js';

const noPushgateway = missingBinary(PUSHGATEWAY);

/** `name{labels} value` lines → value of the one line whose name and labels match. */
function sample(lines: readonly string[], name: string, labels: Record<string, string> = {}): number | undefined {
  const line = lines.find((l) => {
    if (!l.startsWith(`${name}{`) && !l.startsWith(`${name} `)) return false;
    return Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`));
  });
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test(
  'a clean shutdown pushes its final state to a real Pushgateway: drained, every outcome, durations, exit code 0',
  { skip: noPushgateway },
  async (t) => {
    const defer = deferrer(t);
    const gw = await PushgatewayProcess.start();
    defer(() => gw.stop());
    const url = new URL(gw.url);
    url.username = 'pusher';
    url.password = 'gw-Secret-42'; // the Pushgateway ignores it; the logs must never show it
    const { sc } = await redisWithSidecar(defer, { sidecar: { shutdown: { pushgatewayUrl: url.href } } });
    assert.equal(await sc.shutdown(), EXIT_OK);

    const lines = await gw.samples(PUSH_JOB, os.hostname());
    assert.equal(sample(lines, 'pika_sidecar_shutdown_phase', { phase: 'drained' }), 1, lines.join('\n'));
    assert.equal(sample(lines, 'pika_sidecar_shutdown_phase', { phase: 'running' }), 0);
    // The four phases before release: one outcome each, completed or skipped (nothing to close, no replica).
    for (const phase of ['intercept', 'drain', 'close_clients', 'replication_sync']) {
      const outcomes = Object.fromEntries(
        PHASE_OUTCOMES.map((o) => [o, sample(lines, 'pika_sidecar_shutdown_phase_outcomes_total', { phase, outcome: o })]),
      );
      assert.equal((outcomes.completed ?? 0) + (outcomes.skipped ?? 0), 1, `${phase}: ${JSON.stringify(outcomes)}`);
      assert.deepEqual([outcomes.timed_out, outcomes.failed, outcomes.forced], [0, 0, 0], phase);
      assert.ok((sample(lines, 'pika_sidecar_shutdown_phase_duration_seconds', { phase }) ?? -1) >= 0, `${phase} has a duration`);
    }
    assert.equal(sample(lines, 'pika_sidecar_shutdown_phase_outcomes_total', { phase: 'intercept', outcome: 'completed' }), 1);
    assert.equal(sample(lines, 'pika_sidecar_commands_abandoned_total'), 0);
    assert.equal(sample(lines, 'pika_sidecar_exit_code'), EXIT_OK);
    assert.ok((sample(lines, 'push_time_seconds') ?? 0) > 0, 'the Pushgateway stamped the push');
    assert.ok(sc.logs.some((l) => l.msg === 'pushed the final metrics to the pushgateway'));
    assert.ok(!sc.rawLogs.join('\n').includes('gw-Secret-42'), "the pushgateway URL's password never reaches a log line");
  },
);

test('a drain that times out pushes exit code 2 and the timed-out phase to the real Pushgateway', { skip: noPushgateway }, async (t) => {
  const defer = deferrer(t);
  const gw = await PushgatewayProcess.start();
  defer(() => gw.stop());
  const { sc } = await redisWithSidecar(defer, { sidecar: { shutdown: { pushgatewayUrl: gw.url, drainTimeoutMs: 300 } } });
  // An open transaction holds the drain until its budget runs out.
  const c = await RawClient.connect(sc.listen.port);
  defer(() => c.close());
  c.write(resp('MULTI'));
  await c.untilEndsWith('+OK\r\n');
  assert.equal(await sc.shutdown(), EXIT_PHASE_FAILED);

  const lines = await gw.samples(PUSH_JOB, os.hostname());
  assert.equal(sample(lines, 'pika_sidecar_exit_code'), EXIT_PHASE_FAILED, lines.join('\n'));
  assert.equal(sample(lines, 'pika_sidecar_shutdown_phase_outcomes_total', { phase: 'drain', outcome: 'timed_out' }), 1);
  assert.equal(sample(lines, 'pika_sidecar_shutdown_phase_outcomes_total', { phase: 'drain', outcome: 'completed' }), 0);
});

/** The release phase's duration from the sidecar's phase log line. */
function releaseMs(logs: ReadonlyArray<Record<string, unknown>>): number {
  const line = logs.find((l) => l.phase === 'release' && l.msg === 'phase release completed');
  assert.ok(line, `release completed; logs: ${logs.map((l) => l.msg).join(' | ')}`);
  return line.durationMs as number;
}

test('with the Pushgateway down (nobody listens on its port) the push fails fast, with a warning, and the exit stays 0', async (t) => {
  const defer = deferrer(t);
  const port = await freePort(); // free: nothing listens there
  const { sc } = await redisWithSidecar(defer, { sidecar: { shutdown: { pushgatewayUrl: `http://127.0.0.1:${port}` } } });
  assert.equal(await sc.shutdown(), EXIT_OK);
  const warn = sc.logs.find((l) => l.msg === 'final push to the pushgateway failed; the exit code is unaffected');
  assert.ok(warn, 'the failed push is logged');
  assert.ok((warn.durationMs as number) <= PUSH_TIMEOUT_MS + 100, `the push gave up after ${String(warn.durationMs)} ms`);
  assert.ok(releaseMs(sc.logs) < PUSH_TIMEOUT_MS + 500, `release took ${releaseMs(sc.logs)} ms`);
});

test('a Pushgateway that accepts and never answers delays the exit by no more than the push timeout', async (t) => {
  const defer = deferrer(t);
  const held: net.Socket[] = [];
  // Reads the request, never writes a byte back.
  const silent = http.createServer(() => undefined);
  silent.on('connection', (s) => held.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  defer(() => {
    for (const s of held) s.destroy();
    return new Promise((r) => silent.close(r));
  });
  const port = (silent.address() as net.AddressInfo).port;
  const { sc } = await redisWithSidecar(defer, { sidecar: { shutdown: { pushgatewayUrl: `http://127.0.0.1:${port}` } } });
  const t0 = Date.now();
  assert.equal(await sc.shutdown(), EXIT_OK);
  const elapsed = Date.now() - t0;
  assert.equal(held.length, 1, 'the push connected');
  const warn = sc.logs.find((l) => l.msg === 'final push to the pushgateway failed; the exit code is unaffected');
  assert.ok(warn, 'the unanswered push is logged');
  assert.ok((warn.durationMs as number) >= PUSH_TIMEOUT_MS - 50, 'it waited for its timeout');
  assert.ok((warn.durationMs as number) <= PUSH_TIMEOUT_MS + 150, `the push gave up after ${String(warn.durationMs)} ms`);
  assert.ok(releaseMs(sc.logs) < PUSH_TIMEOUT_MS + 500, `release took ${releaseMs(sc.logs)} ms`);
  assert.ok(elapsed < PUSH_TIMEOUT_MS + 2000, `the shutdown took ${elapsed} ms`);
});
