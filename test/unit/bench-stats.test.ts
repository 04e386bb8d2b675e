/** The bench's paired checks against the bare pipe, the A/A noise call, and the peers' generated configs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haproxyConfig, twemproxyConfig } from '../bench/peers.js';
import { readSettings, type TargetName } from '../bench/settings.js';
import { checkTargets, compare, geomean, type Sample } from '../bench/stats.js';

const settings = readSettings({ BENCH_TARGETS: 'direct,pipe,pipe2,sidecar' }, 'cli.js');
const P1 = 'c50 P1';

/** One SET and one GET sample of `target` in round `round` of the c50 P1 workload. */
function samples(target: TargetName, round: number, rps: number, p99Ms: number, cpuUs: number): Sample[] {
  return ['SET', 'GET'].map((t) => ({
    target,
    workload: P1,
    round,
    cpuUsPerRequest: cpuUs,
    row: { test: t, rps, avgMs: 1, p50Ms: 1, p95Ms: 1, p99Ms, maxMs: 2 },
  }));
}

test('ratios pair runs of the same round, so a slow round moves both targets alike', () => {
  const s = [
    ...samples('pipe', 0, 100, 2, 20),
    ...samples('sidecar', 0, 120, 2, 18),
    ...samples('pipe', 1, 50, 2, 20),
    ...samples('sidecar', 1, 60, 2, 18),
  ];
  const [c] = compare(s, 'sidecar', 'pipe', settings);
  assert.equal(c?.pairs, 4);
  assert.ok(Math.abs((c?.rpsRatio ?? 0) - 1.2) < 1e-9);
  assert.ok(Math.abs((c?.cpuRatio ?? 0) - 0.9) < 1e-9);
});

test('a sidecar difference no larger than the A/A pair is called within the noise; a larger one is not', () => {
  const s = [...samples('pipe', 0, 100, 2, 20), ...samples('pipe2', 0, 108, 2, 20), ...samples('sidecar', 0, 105, 3, 20)];
  const checks = checkTargets(s, settings);
  const thr = checks.find((c) => c.what === `${P1} throughput`);
  const p99 = checks.find((c) => c.what === `${P1} p99 latency`);
  assert.deepEqual([thr?.pass, thr?.withinNoise], [false, true]);
  assert.deepEqual([p99?.pass, p99?.withinNoise], [false, false]);
});

test('without the A/A pair a check says so instead of judging the noise', () => {
  const s = [...samples('pipe', 0, 100, 2, 20), ...samples('sidecar', 0, 120, 1.5, 17)];
  const checks = checkTargets(s, settings);
  assert.ok(checks.length > 0);
  for (const c of checks) assert.deepEqual([c.pass, c.withinNoise, c.noise], [true, undefined, 'no A/A pair']);
});

test('the geometric mean ignores missing ratios', () => {
  assert.ok(Math.abs(geomean([2, 0.5]) - 1) < 1e-12);
  assert.equal(geomean([4, NaN]), 4);
  assert.ok(Number.isNaN(geomean([])));
});

test('HAProxy is configured as a one-thread TCP relay to the backend on loopback', () => {
  const cfg = haproxyConfig(7001, 6379);
  for (const line of ['nbthread 1', 'mode tcp', 'bind 127.0.0.1:7001', 'server backend 127.0.0.1:6379'])
    assert.ok(cfg.includes(line), line);
});

test('twemproxy gets one redis pool with the backend as its only server', () => {
  const cfg = twemproxyConfig(7002, 6379);
  for (const line of ['listen: 127.0.0.1:7002', 'redis: true', '- 127.0.0.1:6379:1']) assert.ok(cfg.includes(line), line);
});

test('BENCH_QUICK shortens the run unless rounds are given; an unknown target is refused', () => {
  const quick = readSettings({ BENCH_QUICK: '1', BENCH_ROUNDS: '3' }, 'cli.js');
  assert.deepEqual([quick.rounds, quick.scale, quick.idleSessions], [3, 0.2, 300]);
  assert.ok(quick.targets.includes('haproxy') && quick.targets.includes('pipe2'));
  assert.throws(() => readSettings({ BENCH_TARGETS: 'direct,nginx' }, 'cli.js'), /unknown target 'nginx'/);
});

test('sidecar-b inherits the first sidecar launch unless given its own', () => {
  const s = readSettings({ BENCH_SIDECAR_NODE_FLAGS: '--max-semi-space-size=16', BENCH_SIDECAR_B_NODE_FLAGS: '' }, 'cli.js');
  assert.deepEqual(s.sidecar.nodeFlags, ['--max-semi-space-size=16']);
  assert.deepEqual(s.sidecarB.nodeFlags, []);
  assert.equal(s.sidecarB.cli, 'cli.js');
});
