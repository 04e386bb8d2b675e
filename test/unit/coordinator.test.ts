/**
 * The ShutdownCoordinator with fake phases and a manual clock: triggers join into one shutdown,
 * the second signal forces, exit codes, the stop-gate wait, and the final report.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ShutdownCoordinator, EXIT_OK, EXIT_PHASE_FAILED, EXIT_FORCED, type ShutdownReport } from '../../src/shutdown/coordinator.js';
import type { Phase, PhaseContext, PhaseResult } from '../../src/shutdown/phase-runner.js';
import { ManualClock } from '../support/manual-clock.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { PHASES, type PhaseName, type ShutdownState } from '../../src/observability/names.js';
import { captureLogs } from '../support/log-capture.js';

// ——— fixtures ———

type Behaviour = (ctx: PhaseContext, clock: ManualClock) => Promise<PhaseResult>;

interface Harness {
  clock: ManualClock;
  coordinator: ShutdownCoordinator;
  metrics: Metrics;
  logs: Array<Record<string, unknown>>;
  /** Phase names in the order their run() was called. */
  ran: PhaseName[];
  /** How many times the phase list was built. */
  built: () => number;
}

const quick: Behaviour = async () => ({});

function harness(
  opts: {
    behaviours?: Partial<Record<PhaseName, Behaviour>>;
    deadlineMs?: number;
    budgetMs?: number;
    markDrainedIn?: PhaseName | null;
  } = {},
): Harness {
  const clock = new ManualClock();
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const logs: Array<Record<string, unknown>> = [];
  const logger = captureLogs('debug', logs).logger;
  const ran: PhaseName[] = [];
  let built = 0;
  const markIn = opts.markDrainedIn === undefined ? 'release' : opts.markDrainedIn;
  const coordinator: ShutdownCoordinator = new ShutdownCoordinator({
    logger,
    metrics,
    clock,
    deadlineMs: opts.deadlineMs ?? 45_000,
    openState: () => ({ sessions: 0 }),
    reportExtras: () => ({ sessionsClosed: { drained: 3 }, commandsAbandoned: 0 }),
    phases: () => {
      built++;
      return PHASES.map((name): Phase => ({
        name,
        budgetMs: opts.budgetMs ?? 1000,
        async run(ctx) {
          ran.push(name);
          const r = await (opts.behaviours?.[name] ?? quick)(ctx, clock);
          if (name === markIn) coordinator.markDrained();
          return r;
        },
      }));
    },
  });
  return { clock, coordinator, metrics, logs, ran, built: () => built };
}

/** A phase that waits on the clock until aborted (or `ms` passes). */
const waits =
  (ms = 1_000_000): Behaviour =>
  async (ctx, clock) => {
    await clock.sleep(ms, ctx.signal);
    return {};
  };

// ——— tests ———

describe('ShutdownCoordinator', () => {
  test('start() is idempotent: every caller joins the one shutdown and gets the same promise', async () => {
    const h = harness();
    assert.equal(h.coordinator.isShuttingDown, false);
    assert.equal(h.coordinator.state, 'running');
    const a = h.coordinator.start('http');
    const b = h.coordinator.start('gate');
    const c = h.coordinator.start('file');
    assert.equal(a, b);
    assert.equal(a, c);
    assert.equal(h.coordinator.isShuttingDown, true);
    assert.equal(h.coordinator.shutdownReason, 'http', 'the first trigger names the shutdown');
    const report = await a;
    assert.equal(h.built(), 1, 'the phases were built once');
    assert.deepEqual(h.ran, [...PHASES]);
    assert.equal(report.reason, 'http');
    assert.equal(h.coordinator.start('late'), a, 'a trigger after the end still gets the same shutdown');
  });

  test('the state walks running → each phase → drained → exited, and each change is emitted once', async () => {
    const h = harness();
    const states: Array<[ShutdownState, ShutdownState]> = [];
    h.coordinator.on('state', (to: ShutdownState, from: ShutdownState) => states.push([from, to]));
    await h.coordinator.start('test');
    assert.deepEqual(
      states.map(([, to]) => to),
      ['intercept', 'drain', 'close_clients', 'replication_sync', 'release', 'drained', 'exited'],
    );
    assert.equal(states[0]![0], 'running');
    assert.equal(h.coordinator.state, 'exited');
    const gauge = await h.metrics.shutdownPhase.get();
    assert.deepEqual(
      gauge.values.filter((v) => v.value === 1).map((v) => v.labels.phase),
      ['exited'],
    );
    const started = await h.metrics.shutdownStartedTimestampSeconds.get();
    assert.equal(started.values[0]?.value, h.coordinator.startedAt / 1000);
  });

  test('shutdown_phase is one-hot on the phase that runs, written by the coordinator alone', async () => {
    const seen: Array<[PhaseName, string[]]> = [];
    const onlyOne =
      (name: PhaseName): Behaviour =>
      async () => {
        const g = await metricsOf().shutdownPhase.get();
        seen.push([name, g.values.filter((v) => v.value === 1).map((v) => String(v.labels.phase))]);
        return {};
      };
    const h = harness({ behaviours: Object.fromEntries(PHASES.map((p) => [p, onlyOne(p)])) });
    const metricsOf = () => h.metrics;
    assert.deepEqual(
      (await h.metrics.shutdownPhase.get()).values.filter((v) => v.value === 1).map((v) => v.labels.phase),
      ['running'],
    );
    await h.coordinator.start('test');
    assert.deepEqual(
      seen,
      PHASES.map((p) => [p, [p]]),
    );
  });

  test('a fault starts the shutdown; every phase runs and the exit code is 2, the report naming the first fault', async () => {
    const h = harness();
    const a = h.coordinator.onFault('uncaught_exception', 'boom');
    const b = h.coordinator.onFault('unhandled_rejection', 'later');
    assert.equal(b, a, 'a later fault joins the same shutdown');
    const report = await a;
    assert.deepEqual(
      report.phases.map((p) => p.outcome),
      ['completed', 'completed', 'completed', 'completed', 'completed'],
    );
    assert.equal(report.exitCode, EXIT_PHASE_FAILED);
    assert.equal(report.reason, 'uncaught_exception');
    assert.deepEqual(report['fault'], { kind: 'uncaught_exception', message: 'boom' });
    assert.deepEqual(report['dataAtRisk'], ['uncaught exception: boom']);
    assert.equal((await h.metrics.exitCode.get()).values[0]?.value, EXIT_PHASE_FAILED, 'the gauge says the same');
  });

  test('a fault during a shutdown forced by a second signal still exits 3', async () => {
    const h = harness({ behaviours: { drain: waits() } });
    const first = h.coordinator.onSignal('SIGTERM');
    await h.clock.advance(100);
    void h.coordinator.onFault('unhandled_rejection', 'x');
    void h.coordinator.onSignal('SIGTERM');
    assert.equal((await first).exitCode, EXIT_FORCED);
  });

  test('the first signal starts the shutdown; the second signal forces it (exit 3)', async () => {
    const h = harness({ behaviours: { drain: waits() } });
    const first = h.coordinator.onSignal('SIGTERM');
    await h.clock.advance(100);
    assert.equal(h.coordinator.state, 'drain');
    const second = h.coordinator.onSignal('SIGINT');
    assert.equal(second, first, 'the second signal returns the same shutdown');
    const report = await first;
    assert.equal(report.forced, true);
    assert.equal(report.exitCode, EXIT_FORCED);
    assert.equal(report.reason, 'SIGTERM');
    assert.deepEqual(report.phases.map((p) => [p.phase, p.outcome]).slice(0, 2), [
      ['intercept', 'completed'],
      ['drain', 'forced'],
    ]);
    assert.ok(
      h.logs.some((l) => l.msg === 'second signal: forcing the shutdown; remaining phases run without waiting' && l.source === 'SIGINT'),
    );
  });

  test('a SIGTERM after an HTTP start joins the shutdown and does not force it; only a second signal forces', async () => {
    const h = harness({ behaviours: { drain: waits(5000) }, budgetMs: 10_000 });
    const running = h.coordinator.start('http');
    await h.clock.advance(100);
    const joined = h.coordinator.onSignal('SIGTERM');
    assert.equal(joined, running);
    assert.ok(h.logs.some((l) => l.msg === 'signal joins the shutdown already under way' && l.reason === 'http'));
    await h.clock.advance(5000);
    const report = await running;
    assert.equal(report.forced, false);
    assert.equal(report.exitCode, EXIT_OK);
    assert.equal(report.reason, 'http');
    assert.ok(report.phases.every((p) => p.outcome === 'completed'));
  });

  test('an HTTP start, then two signals: the second signal forces', async () => {
    const h = harness({ behaviours: { replication_sync: waits() } });
    const running = h.coordinator.start('gate');
    await h.clock.advance(10);
    void h.coordinator.onSignal('SIGTERM');
    await h.clock.advance(10);
    assert.equal(h.coordinator.state, 'replication_sync');
    void h.coordinator.onSignal('SIGTERM');
    const report = await running;
    assert.equal(report.exitCode, EXIT_FORCED);
    assert.equal(report.phases.find((p) => p.phase === 'replication_sync')?.outcome, 'forced');
  });

  test('exit code 0 when every phase completed or was skipped', async () => {
    const h = harness({
      behaviours: { replication_sync: async () => ({ outcome: 'skipped', detail: { reason: 'backend is a replica' } }) },
    });
    const report = await h.coordinator.start('test');
    assert.equal(report.exitCode, EXIT_OK);
    assert.equal(report.phases.find((p) => p.phase === 'replication_sync')?.outcome, 'skipped');
  });

  test('exit code 2 when a phase timed out', async () => {
    const h = harness({ behaviours: { drain: waits() }, budgetMs: 500 });
    const running = h.coordinator.start('test');
    await h.clock.advance(500);
    const report = await running;
    assert.equal(report.exitCode, EXIT_PHASE_FAILED);
    assert.equal(report.forced, false);
    assert.deepEqual(
      report.phases.map((p) => p.outcome),
      ['completed', 'timed_out', 'completed', 'completed', 'completed'],
    );
  });

  test('exit code 2 when a phase failed', async () => {
    const h = harness({
      behaviours: {
        close_clients: async () => {
          throw new Error('control connection refused');
        },
      },
    });
    const report = await h.coordinator.start('test');
    assert.equal(report.exitCode, EXIT_PHASE_FAILED);
    assert.equal(report.phases.find((p) => p.phase === 'close_clients')?.outcome, 'failed');
    assert.deepEqual(h.ran, [...PHASES], 'the phases after the failed one still ran');
  });

  test('whenDrained() resolves drained once markDrained() is called', async () => {
    const h = harness({ behaviours: { release: waits(300) } });
    const early = h.coordinator.whenDrained();
    let result: string | undefined;
    void early.then((r) => {
      result = r;
    });
    const running = h.coordinator.start('gate');
    await h.clock.advance(299);
    assert.equal(result, undefined, 'not drained before release marks it');
    await h.clock.advance(1);
    await running;
    assert.equal(result, 'drained');
    assert.equal(await h.coordinator.whenDrained(), 'drained', 'later callers are answered at once');
  });

  test('whenDrained() resolves deadline when the overall deadline passes before the gate opens', async () => {
    const h = harness({ deadlineMs: 2000, budgetMs: 10_000, behaviours: { replication_sync: waits() } });
    const running = h.coordinator.start('gate');
    const waiting = h.coordinator.whenDrained();
    let result: string | undefined;
    void waiting.then((r) => {
      result = r;
    });
    await h.clock.advance(1999);
    assert.equal(result, undefined);
    await h.clock.advance(1);
    assert.equal(result, 'deadline');
    const report = await running;
    assert.equal(await h.coordinator.whenDrained(), 'drained', 'release still opened the gate, late');
    assert.equal(report.exitCode, EXIT_PHASE_FAILED);
    assert.equal(report.phases.find((p) => p.phase === 'replication_sync')?.outcome, 'timed_out');
  });

  test('whenDrained() after a shutdown that ended without opening the gate does not hang', async () => {
    const h = harness({ markDrainedIn: null });
    const report = await h.coordinator.start('test');
    assert.equal(report.exitCode, EXIT_OK);
    const answer = await Promise.race([h.coordinator.whenDrained(), h.clock.advance(60_000).then(() => 'still waiting')]);
    assert.notEqual(answer, 'still waiting');
  });

  test('`finished` resolves with the report, which is also the last log line with reason, phases, exit code and extras', async () => {
    const h = harness({ behaviours: { close_clients: async () => ({ outcome: 'timed_out', detail: { destroyed: 2 } }) } });
    const running = h.coordinator.start('SIGTERM');
    await h.clock.advance(0);
    const [fromStart, fromFinished] = await Promise.all([running, h.coordinator.finished]);
    assert.equal(fromStart, fromFinished);
    const last = h.logs.at(-1)!;
    const report = last.report as ShutdownReport;
    assert.ok(report, 'the last log line carries the report');
    assert.equal(last.level, 50, 'a report with exit code 2 is logged at error');
    assert.equal(last.msg, 'shutdown finished with phases that timed out or failed; data may be at risk');
    assert.equal(report.reason, 'SIGTERM');
    assert.equal(report.exitCode, EXIT_PHASE_FAILED);
    assert.equal(report.forced, false);
    assert.deepEqual(
      report.phases.map((p) => p.phase),
      [...PHASES],
    );
    assert.deepEqual(report.phases.find((p) => p.phase === 'close_clients')?.detail, { destroyed: 2 });
    assert.deepEqual(report.sessionsClosed, { drained: 3 });
    assert.equal(report.commandsAbandoned, 0);
    assert.equal(report.startedAt, new Date(h.coordinator.startedAt).toISOString());
    assert.equal(typeof report.durationMs, 'number');
    assert.deepEqual(JSON.parse(JSON.stringify(fromStart)), report, 'the logged report is the returned one');
  });

  test('a clean shutdown logs its report at info as the last line', async () => {
    const h = harness();
    const report = await h.coordinator.start('test');
    const last = h.logs.at(-1)!;
    assert.equal(last.level, 30);
    assert.equal(last.msg, 'shutdown complete; every phase completed');
    assert.equal((last.report as ShutdownReport).exitCode, report.exitCode);
  });
});
