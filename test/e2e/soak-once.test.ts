/**
 * The soak's run (test/soak/soak.ts), once per trigger: the fast part of `make soak` that CI runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TRIGGERS, runOnce, summaryTable, random } from '../soak/soak.js';

for (const trigger of TRIGGERS) {
  test(`a soak run triggered by ${trigger}: mixed load, no acknowledged write lost, no unacknowledged write ran, exit in time`, async () => {
    const r = await runOnce(trigger, 800);
    assert.ok(r.ok, r.problem);
    assert.ok(r.acknowledged > 1000, `only ${r.acknowledged} writes acknowledged`);
    assert.equal(r.lost, 0);
    assert.equal(r.phantom, 0);
    // The reader that never reads is abandoned at the deadline by design.
    assert.equal(r.exitCode, 2, r.outcomes);
    assert.match(r.outcomes, /^intercept:completed drain:timed_out close_clients:\w+ replication_sync:completed release:completed$/);
  });
}

test('the summary table counts runs, triggers and writes, with p50/p99 shutdown times', () => {
  const base = { triggerAfterMs: 1, exitCode: 2, acknowledged: 10, lost: 0, phantom: 0, outcomes: '', ok: true };
  const table = summaryTable([
    { ...base, trigger: 'SIGTERM', shutdownMs: 1000 },
    { ...base, trigger: 'gate', shutdownMs: 3000 },
  ]);
  assert.match(table, /\| runs \| 2 \(2 passed\) \|/);
  assert.match(table, /\| triggers \| SIGTERM 1, http 0, file 0, gate 1 \|/);
  assert.match(table, /\| shutdown time p50 \| 1\.00 s \|/);
  assert.match(table, /\| shutdown time p99 \| 3\.00 s \|/);
  assert.match(table, /\| writes acknowledged \| 20 \|/);
  const a = random(7);
  const b = random(7);
  assert.deepEqual([a(), a(), a()], [b(), b(), b()], 'a seed repeats the choices');
});
