/**
 * The metrics linger inside the release budget: it always leaves release's reserve (closing the
 * admin server, the final push, the log flush), so a long linger never turns a clean shutdown
 * into a release timeout and exit 2, even when the overall deadline cuts release's budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redisWithSidecar } from '../support/sidecar.js';
import { deferrer } from '../support/defer.js';
import { RELEASE_RESERVE_MS, lingerMs } from '../../src/shutdown/linger.js';
import { EXIT_OK } from '../../src/exit-codes.js';

test('the linger is what was asked when release has room, and is cut to leave the reserve when it has not', () => {
  assert.equal(lingerMs(2000, 10_000, 7000), 2000);
  assert.equal(lingerMs(2000, 10_000, 7000 + 500), 1500);
  assert.equal(lingerMs(2000, 10_000, 10_000 - RELEASE_RESERVE_MS), 0);
  assert.equal(lingerMs(2000, 10_000, 10_500), 0, 'never negative');
  assert.equal(lingerMs(0, 10_000, 0), 0);
});

test('a linger longer than what the deadline leaves for release is cut: release completes and the exit stays 0', async (t) => {
  const defer = deferrer(t);
  // intercept holds 1.2 s (the announce delay), then the 2.7 s deadline leaves release 1.5 s, not its 3 s:
  // the full 2 s linger would run past it, destroy the admin server and exit 2.
  const { sc } = await redisWithSidecar(defer, {
    sidecar: { shutdown: { announceDelayMs: 1200, metricsLingerMs: 2000, releaseTimeoutMs: 3000, deadlineMs: 2700 } },
  });
  const code = await sc.shutdown();
  const release = sc.logs.find((l) => l.phase === 'release' && typeof l.outcome === 'string' && typeof l.durationMs === 'number');
  assert.ok(release, 'release logged its outcome');
  assert.equal(release.outcome, 'completed', JSON.stringify(release));
  assert.equal(code, EXIT_OK);
  const budget = sc.logs.find((l) => l.msg === 'phase release started')?.budgetMs as number;
  assert.ok(budget < 2000, `the deadline cut release's budget to ${budget} ms`);
  assert.ok(
    (release.durationMs as number) <= budget - RELEASE_RESERVE_MS + 400,
    `release took ${String(release.durationMs)} ms of ${budget}`,
  );
});
