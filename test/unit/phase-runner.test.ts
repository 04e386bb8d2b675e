/**
 * The PhaseRunner with fake phases and a manual clock: no real waiting, every duration exact.
 * Time only moves when a test calls `clock.advance(ms)`, which fires the due timers in order and
 * lets the promise chains they start settle before moving on.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { PhaseRunner, type Phase, type PhaseContext, type PhaseResult } from '../../src/shutdown/phase-runner.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import type { PhaseName } from '../../src/observability/names.js';
import { ManualClock } from '../support/manual-clock.js';
import { captureLogs } from '../support/log-capture.js';

// ——— fixtures ———

interface Harness {
  clock: ManualClock;
  runner: PhaseRunner;
  metrics: Metrics;
  registry: Registry;
  logs: Array<Record<string, unknown>>;
  /** The phases onPhase announced, in order. */
  started: PhaseName[];
}

function harness(open: () => Record<string, unknown> = () => ({ sessions: 0 })): Harness {
  const clock = new ManualClock();
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  const logs: Array<Record<string, unknown>> = [];
  const logger = captureLogs('debug', logs).logger;
  const started: PhaseName[] = [];
  const runner = new PhaseRunner({ logger, metrics, clock, openState: open, onPhase: (p) => started.push(p) });
  return { clock, runner, metrics, registry, logs, started };
}

function phase(name: PhaseName, budgetMs: number, run: (ctx: PhaseContext) => Promise<PhaseResult>): Phase {
  return { name, budgetMs, run };
}

/** What each phase saw when it ran. */
interface Seen {
  name: PhaseName;
  budgetMs: number;
  abortedAtStart: boolean;
  forcedAtStart: boolean;
  abortReason?: unknown;
}

/** A phase that works for `workMs` of clock time (ending early on abort) and records what it saw. */
function worker(h: Harness, seen: Seen[], name: PhaseName, budgetMs: number, workMs: number, result: PhaseResult = {}): Phase {
  return phase(name, budgetMs, async (ctx) => {
    const s: Seen = { name, budgetMs: ctx.budgetMs, abortedAtStart: ctx.signal.aborted, forcedAtStart: ctx.forced() };
    seen.push(s);
    await h.clock.sleep(workMs, ctx.signal);
    if (ctx.signal.aborted) s.abortReason = ctx.signal.reason;
    return result;
  });
}

async function gauge(metrics: Metrics, name: 'shutdownPhase' | 'shutdownPhaseDurationSeconds'): Promise<Record<string, number>> {
  const m = await metrics[name].get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.phase), v.value]));
}

async function outcomeCount(metrics: Metrics, phaseName: PhaseName, outcome: string): Promise<number> {
  const m = await metrics.shutdownPhaseOutcomesTotal.get();
  return m.values.find((v) => v.labels.phase === phaseName && v.labels.outcome === outcome)?.value ?? 0;
}

/** The runner's log line for the end of a phase. */
function finishedLine(h: Harness, name: PhaseName): Record<string, unknown> | undefined {
  return h.logs.find((l) => l.phase === name && typeof l.outcome === 'string' && l.durationMs !== undefined);
}

// ——— tests ———

describe('PhaseRunner', () => {
  test('phases run in order, each with min(its budget, time left before the deadline)', async () => {
    const h = harness();
    const seen: Seen[] = [];
    const start = h.clock.now();
    const running = h.runner.runAll(
      [
        worker(h, seen, 'intercept', 1000, 300),
        worker(h, seen, 'drain', 5000, 100), // starts at +300: 1700 left before the deadline
        worker(h, seen, 'close_clients', 3000, 200), // starts at +400: 1600 left
      ],
      start + 2000,
    );
    await h.clock.advance(600);
    const records = await running;
    assert.deepEqual(
      seen.map((s) => [s.name, s.budgetMs]),
      [
        ['intercept', 1000],
        ['drain', 1700],
        ['close_clients', 1600],
      ],
    );
    assert.deepEqual(
      records.map((r) => [r.phase, r.outcome, r.durationMs]),
      [
        ['intercept', 'completed', 300],
        ['drain', 'completed', 100],
        ['close_clients', 'completed', 200],
      ],
    );
    assert.deepEqual(h.clock.armed(), [], 'every budget timer was cleared');
  });

  test('a phase started after the deadline gets a zero budget and is timed out; the phases after it still run', async () => {
    const h = harness();
    const seen: Seen[] = [];
    const start = h.clock.now();
    const running = h.runner.runAll(
      [worker(h, seen, 'intercept', 5000, 10_000), worker(h, seen, 'drain', 3000, 10_000), worker(h, seen, 'release', 3000, 0)],
      start + 1000,
    );
    await h.clock.advance(1000);
    await h.clock.advance(0);
    const records = await running;
    assert.deepEqual(
      seen.map((s) => s.budgetMs),
      [1000, 0, 0],
    );
    assert.deepEqual(
      records.map((r) => r.outcome),
      ['timed_out', 'timed_out', 'completed'],
    );
  });

  test('a phase that overruns its budget is aborted with reason timeout, recorded timed_out, and the next phase still runs', async () => {
    const h = harness();
    const seen: Seen[] = [];
    const running = h.runner.runAll(
      [worker(h, seen, 'drain', 500, 10_000), worker(h, seen, 'close_clients', 3000, 50)],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(499);
    assert.equal(seen.length, 1, 'drain still runs one tick before its budget ends');
    await h.clock.advance(1);
    await h.clock.advance(50);
    const records = await running;
    assert.equal(seen[0]!.abortReason, 'timeout');
    assert.deepEqual(
      records.map((r) => [r.phase, r.outcome, r.durationMs]),
      [
        ['drain', 'timed_out', 500],
        ['close_clients', 'completed', 50],
      ],
    );
    assert.equal(seen[1]!.abortedAtStart, false, 'a timeout is not a force: the next phase starts with a live signal');
  });

  test('a phase that throws is recorded failed with the error, and the next phase still runs', async () => {
    const h = harness();
    const seen: Seen[] = [];
    const running = h.runner.runAll(
      [
        phase('replication_sync', 1000, async () => {
          throw new Error('control connection lost');
        }),
        worker(h, seen, 'release', 1000, 10),
      ],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(10);
    const records = await running;
    assert.equal(records[0]!.outcome, 'failed');
    assert.deepEqual(records[0]!.detail, { error: 'control connection lost' });
    assert.equal(records[1]!.outcome, 'completed');
    const line = finishedLine(h, 'replication_sync');
    assert.equal(line?.level, 50, 'a failed phase logs at error');
  });

  test('a phase that returns failed, timed_out or skipped is recorded with that outcome and its detail', async () => {
    const h = harness();
    const running = h.runner.runAll(
      [
        phase('intercept', 1000, async () => ({ outcome: 'skipped', detail: { reason: 'nothing to intercept' } })),
        phase('drain', 1000, async () => ({ outcome: 'timed_out', detail: { left: 3 } })),
        phase('close_clients', 1000, async () => ({ outcome: 'failed' })),
        phase('release', 1000, async () => ({})),
      ],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(0);
    const records = await running;
    assert.deepEqual(
      records.map((r) => r.outcome),
      ['skipped', 'timed_out', 'failed', 'completed'],
    );
    assert.deepEqual(records[0]!.detail, { reason: 'nothing to intercept' });
    assert.deepEqual(records[1]!.detail, { left: 3 });
    assert.equal(records[3]!.detail, undefined, 'no detail, no detail field');
  });

  test('force() during a phase aborts it as forced; later phases run with an already-aborted signal and forced() true', async () => {
    const h = harness();
    const seen: Seen[] = [];
    const running = h.runner.runAll(
      [
        worker(h, seen, 'intercept', 1000, 10),
        worker(h, seen, 'drain', 10_000, 10_000),
        worker(h, seen, 'close_clients', 3000, 3000),
        worker(h, seen, 'release', 3000, 0, { outcome: 'skipped' }),
      ],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(10);
    await h.clock.advance(100);
    assert.equal(seen.at(-1)?.name, 'drain');
    assert.equal(h.runner.forced, false);
    h.runner.force();
    h.runner.force(); // idempotent
    assert.equal(h.runner.forced, true);
    await h.clock.advance(0);
    const records = await running;
    assert.equal(seen[1]!.abortReason, 'forced');
    assert.deepEqual(
      seen.slice(2).map((s) => [s.name, s.abortedAtStart, s.forcedAtStart]),
      [
        ['close_clients', true, true],
        ['release', true, true],
      ],
    );
    assert.deepEqual(
      records.map((r) => [r.phase, r.outcome]),
      [
        ['intercept', 'completed'],
        ['drain', 'forced'],
        ['close_clients', 'forced'],
        ['release', 'skipped'],
      ],
    );
    assert.equal(records[1]!.durationMs, 100);
    assert.equal(records[2]!.durationMs, 0, 'a forced phase does not wait');
    assert.equal(finishedLine(h, 'drain')?.level, 40, 'a forced phase logs at warn');
  });

  test('a run() that ignores its abort signal is left behind after the abort grace; the runner goes on', async () => {
    const h = harness();
    const seen: Seen[] = [];
    let hungRuns = 0;
    const running = h.runner.runAll(
      [
        phase('drain', 500, () => {
          hungRuns++;
          return new Promise<PhaseResult>(() => undefined); // never settles, never looks at the signal
        }),
        worker(h, seen, 'close_clients', 3000, 20),
      ],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(500);
    assert.deepEqual(h.clock.armed(), [250], 'after the abort, one grace timer is armed');
    await h.clock.advance(249);
    assert.equal(seen.length, 0, 'still inside the grace period');
    await h.clock.advance(1);
    assert.equal(seen.length, 1, 'the next phase started once the grace ran out');
    await h.clock.advance(20);
    const records = await running;
    assert.equal(hungRuns, 1);
    assert.deepEqual(
      records.map((r) => [r.phase, r.outcome, r.durationMs]),
      [
        ['drain', 'timed_out', 750],
        ['close_clients', 'completed', 20],
      ],
    );
  });

  test('a forced run() that ignores its signal is also left behind after the grace', async () => {
    const h = harness();
    const running = h.runner.runAll(
      [phase('replication_sync', 20_000, () => new Promise<PhaseResult>(() => undefined)), phase('release', 3000, async () => ({}))],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(1000);
    h.runner.force();
    await h.clock.advance(250);
    const records = await running;
    assert.deepEqual(
      records.map((r) => [r.phase, r.outcome, r.durationMs]),
      [
        ['replication_sync', 'forced', 1250],
        ['release', 'forced', 0],
      ],
    );
  });

  test('onPhase announces each phase before it runs, and outcomes and durations are exported', async () => {
    const h = harness();
    const announced: Array<[PhaseName, PhaseName | undefined]> = [];
    const watch = (name: PhaseName, budgetMs: number, workMs: number) =>
      phase(name, budgetMs, async (ctx) => {
        announced.push([name, h.started.at(-1)]);
        await h.clock.sleep(workMs, ctx.signal);
        return {};
      });
    const running = h.runner.runAll(
      [watch('intercept', 1000, 250), watch('drain', 500, 10_000), watch('close_clients', 1000, 0)],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(250);
    await h.clock.advance(500);
    await h.clock.advance(0);
    await running;
    for (const [name, last] of announced) assert.equal(last, name, `${name} was announced before it ran`);
    assert.deepEqual(h.started, ['intercept', 'drain', 'close_clients']);
    assert.equal(await outcomeCount(h.metrics, 'intercept', 'completed'), 1);
    assert.equal(await outcomeCount(h.metrics, 'drain', 'timed_out'), 1);
    assert.equal(await outcomeCount(h.metrics, 'drain', 'completed'), 0);
    assert.equal(await outcomeCount(h.metrics, 'close_clients', 'completed'), 1);
    const durations = await gauge(h.metrics, 'shutdownPhaseDurationSeconds');
    assert.equal(durations.intercept, 0.25);
    assert.equal(durations.drain, 0.5);
    assert.equal(durations.close_clients, 0);
    const text = await h.registry.getSingleMetricAsString('pika_sidecar_shutdown_phase_outcomes_total');
    assert.match(text, /pika_sidecar_shutdown_phase_outcomes_total\{phase="drain",outcome="timed_out"\} 1/);
  });

  test('the phase-finished log line carries phase, outcome, durationMs and what is still open', async () => {
    let open = 7;
    const h = harness(() => ({ sessions: open, inflight: open * 2 }));
    const running = h.runner.runAll(
      [
        phase('drain', 2000, async (ctx) => {
          await h.clock.sleep(1200, ctx.signal);
          open = 1;
          return { detail: { sessionsAtStart: 7 } };
        }),
      ],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(1200);
    await running;
    const started = h.logs.find((l) => l.msg === 'phase drain started');
    assert.equal(started?.budgetMs, 2000);
    assert.equal(started?.forced, false);
    const line = finishedLine(h, 'drain');
    assert.ok(line, 'a phase-finished line was logged');
    assert.equal(line.msg, 'phase drain completed');
    assert.equal(line.phase, 'drain');
    assert.equal(line.outcome, 'completed');
    assert.equal(line.durationMs, 1200);
    assert.deepEqual(line.open, { sessions: 1, inflight: 2 }, 'open is read when the phase ends');
    assert.deepEqual(line.detail, { sessionsAtStart: 7 });
    assert.equal(line.level, 30);
  });

  test('a phase that rejects with a non-Error value is recorded failed with that value as text', async () => {
    const h = harness();
    const running = h.runner.runAll(
      [phase('drain', 1000, () => Promise.reject('plain string')), phase('release', 1000, async () => ({}))],
      h.clock.now() + 45_000,
    );
    await h.clock.advance(0);
    const records = await running;
    assert.equal(records[0]!.outcome, 'failed');
    assert.deepEqual(records[0]!.detail, { error: 'plain string' });
  });

  for (const thrown of [undefined, null]) {
    test(`a phase that throws ${String(thrown)} is recorded failed, and the runner does not crash`, async () => {
      const h = harness();
      const running = h.runner
        .runAll(
          [
            phase('drain', 1000, async () => {
              throw thrown;
            }),
            phase('release', 1000, async () => ({})),
          ],
          h.clock.now() + 45_000,
        )
        .then(
          (records) => ({ records, crash: undefined }),
          (crash: unknown) => ({ records: [], crash }),
        );
      await h.clock.advance(0);
      const { records, crash } = await running;
      assert.equal(crash, undefined, 'runAll resolves');
      assert.deepEqual(
        records.map((r) => [r.phase, r.outcome]),
        [
          ['drain', 'failed'],
          ['release', 'completed'],
        ],
      );
    });
  }
});
