/**
 * Runs the shutdown phases in order, each inside its own budget and all inside one deadline.
 * The runner owns the timers, the log lines and the metrics; a phase is only a name, a budget and
 * one `run()` that honours its AbortSignal. Later phases always run, whatever the earlier ones did.
 *
 * Outcomes (never swallowed):
 *   completed  run() finished its work in time
 *   skipped    run() found nothing to do (it says why)
 *   failed     run() threw or reported failure
 *   timed_out  the phase budget (or the overall deadline) ran out; run() was aborted
 *   forced     a second signal arrived; run() was aborted and later phases run without waiting
 */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PhaseName, PhaseOutcome } from '../observability/names.js';

export interface PhaseContext {
  /** Aborted on timeout or force; `signal.reason` is 'timeout' or 'forced'. */
  signal: AbortSignal;
  /** True when the shutdown is forced: do the minimum, do not wait. */
  forced(): boolean;
  budgetMs: number;
  log: Logger;
}

export interface PhaseResult {
  outcome?: 'completed' | 'skipped' | 'failed' | 'timed_out';
  /** Anything worth reporting (why skipped, what was left). */
  detail?: Record<string, unknown>;
}

export interface Phase {
  name: PhaseName;
  budgetMs: number;
  run(ctx: PhaseContext): Promise<PhaseResult>;
}

export interface PhaseRecord {
  phase: PhaseName;
  outcome: PhaseOutcome;
  durationMs: number;
  detail?: Record<string, unknown>;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { clear(): void };
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { clear: () => clearTimeout(t) };
  },
};

/** How long an aborted run() may take to return before the runner moves on without it. */
const ABORT_GRACE_MS = 250;

export class PhaseRunner {
  private forcedFlag = false;
  private currentAbort: AbortController | undefined;
  readonly records: PhaseRecord[] = [];

  constructor(
    private readonly opts: {
      logger: Logger;
      metrics: Metrics;
      clock?: Clock;
      /** What is still open, for every phase-finished log line. */
      openState: () => Record<string, unknown>;
      /** Called as each phase starts: the coordinator owns the shutdown state and its gauge. */
      onPhase: (phase: PhaseName) => void;
    },
  ) {}

  private get clock(): Clock {
    return this.opts.clock ?? realClock;
  }

  get forced(): boolean {
    return this.forcedFlag;
  }

  /** Second signal: abort the current phase; the rest run with an already-aborted signal. */
  force(): void {
    if (this.forcedFlag) return;
    this.forcedFlag = true;
    this.currentAbort?.abort('forced');
  }

  async runAll(phases: readonly Phase[], deadlineAt: number): Promise<PhaseRecord[]> {
    for (const phase of phases) this.records.push(await this.runOne(phase, deadlineAt));
    return this.records;
  }

  private async runOne(phase: Phase, deadlineAt: number): Promise<PhaseRecord> {
    const { logger, metrics } = this.opts;
    const log = logger.child({ phase: phase.name });
    const started = this.clock.now();
    const budgetMs = Math.max(0, Math.min(phase.budgetMs, deadlineAt - started));
    const ac = new AbortController();
    this.currentAbort = ac;
    this.opts.onPhase(phase.name);
    log.info({ budgetMs, forced: this.forcedFlag }, `phase ${phase.name} started`);
    if (this.forcedFlag) ac.abort('forced');
    // The timer is armed before run() so a run that blocks cannot escape its budget.
    const timer = this.clock.setTimeout(() => ac.abort('timeout'), budgetMs);

    let result: PhaseResult | undefined;
    let error: unknown;
    let threw = false; // `throw undefined` and `throw null` are failures too
    const ctx: PhaseContext = { signal: ac.signal, forced: () => this.forcedFlag, budgetMs, log };
    const running = Promise.resolve()
      .then(() => phase.run(ctx))
      .then(
        (r) => {
          result = r;
        },
        (e: unknown) => {
          threw = true;
          error = e;
        },
      );
    // Wait for run(); if it was aborted, give it a short grace to clean up, then move on.
    await Promise.race([
      running,
      new Promise<void>((resolve) => {
        const onAbort = () => this.clock.setTimeout(resolve, ABORT_GRACE_MS);
        if (ac.signal.aborted) onAbort();
        else ac.signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    timer.clear();
    this.currentAbort = undefined;

    const durationMs = this.clock.now() - started;
    let outcome: PhaseOutcome;
    if (ac.signal.aborted) outcome = ac.signal.reason === 'forced' ? 'forced' : 'timed_out';
    else if (threw) outcome = 'failed';
    else outcome = result?.outcome ?? 'completed';
    // A run that finished before the abort keeps its own outcome.
    if (ac.signal.aborted && result !== undefined && result.outcome === 'skipped') outcome = 'skipped';

    const record: PhaseRecord = { phase: phase.name, outcome, durationMs };
    const detail = { ...(result?.detail ?? {}), ...(threw ? { error: error instanceof Error ? error.message : String(error) } : {}) };
    if (Object.keys(detail).length > 0) record.detail = detail;
    metrics.shutdownPhaseDurationSeconds.set({ phase: phase.name }, durationMs / 1000);
    metrics.shutdownPhaseOutcomesTotal.inc({ phase: phase.name, outcome });
    // `phase` comes from the child logger's bindings.
    const line = { outcome, durationMs, open: this.opts.openState(), ...(record.detail ? { detail: record.detail } : {}) };
    if (outcome === 'completed' || outcome === 'skipped') log.info(line, `phase ${phase.name} ${outcome}`);
    else if (outcome === 'forced') log.warn(line, `phase ${phase.name} forced by a second signal`);
    else log.error(line, `phase ${phase.name} ${outcome === 'timed_out' ? 'timed out' : 'failed'}; data may be at risk`);
    return record;
  }
}

/** Resolves after `ms`, or at once when the signal aborts (never rejects). */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
