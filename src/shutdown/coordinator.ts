/**
 * The shutdown coordinator: one shutdown per process, joined by every trigger (signal, HTTP, gate,
 * trigger file), run as the ordered phase list by the PhaseRunner, ending in a report and an exit
 * code. Only a second *signal* forces; an HTTP or file trigger followed by SIGTERM is one shutdown.
 *
 * State (the `shutdown_phase` gauge, /status `phase`, log field): running → intercept → drain →
 * close_clients → replication_sync → release → drained (the stop gate is open: the backend may
 * stop) → exited.
 *
 * Exit codes: 0 every phase completed (or skipped) and no command was abandoned; 2 a phase timed
 * out or failed, or a forwarded command's reply was not delivered (abandoned: a deadline, a forced
 * close, or the backend cutting a session with replies owed) — data may be at risk, the report's
 * `dataAtRisk` says why; 3 forced by a second signal. (1 is for start-up, in cli.ts.)
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { SHUTDOWN_STATES, type PhaseName, type ShutdownState } from '../observability/names.js';
import { PhaseRunner, type Clock, type Phase, type PhaseRecord, realClock } from './phase-runner.js';
import { EXIT_OK, shutdownExitCode } from '../exit-codes.js';

export { EXIT_OK, EXIT_CONFIG, EXIT_PHASE_FAILED, EXIT_FORCED } from '../exit-codes.js';

export interface ShutdownReport {
  reason: string;
  startedAt: string;
  durationMs: number;
  phases: PhaseRecord[];
  forced: boolean;
  exitCode: number;
  [extra: string]: unknown;
}

export interface CoordinatorOptions {
  logger: Logger;
  metrics: Metrics;
  deadlineMs: number;
  /** Built when the shutdown starts (phases read live state). */
  phases: () => Phase[];
  openState: () => Record<string, unknown>;
  /** Extra report fields (sessions closed, abandoned, replicas), read after release. */
  reportExtras: () => Record<string, unknown>;
  clock?: Clock;
}

/** One shutdown, from its trigger to its report. */
interface Underway {
  reason: string;
  startedAtMs: number;
  deadlineAt: number;
  deadlineTimer: { clear(): void };
}

export class ShutdownCoordinator extends EventEmitter {
  private current: ShutdownState = 'running';
  /** The shutdown under way (undefined while running normally): what started it and its bounds. */
  private underway: Underway | undefined;
  /** The run's promise: the report, once every phase has run. */
  private running: Promise<ShutdownReport> | undefined;
  private signals = 0;
  private readonly runner: PhaseRunner;
  private readonly log: Logger;
  /** The stop gate opened (markDrained): the backend may stop. */
  private gateOpen = false;
  private gateWaiters: Array<(r: 'drained' | 'deadline') => void> = [];
  /** Set once the shutdown ran to its end: nobody will open the gate any more. */
  private finalReport: ShutdownReport | undefined;
  /** The first uncaught exception or unhandled rejection (see onFault). */
  private firstFault: { kind: string; message: string } | undefined;
  private resolveFinished!: (r: ShutdownReport) => void;
  /** Resolves with the report once a shutdown, whatever started it, has run to its end. */
  readonly finished: Promise<ShutdownReport> = new Promise((r) => {
    this.resolveFinished = r;
  });

  constructor(private readonly opts: CoordinatorOptions) {
    super();
    this.log = opts.logger.child({ component: 'shutdown' });
    this.runner = new PhaseRunner({
      logger: this.log,
      metrics: opts.metrics,
      ...(opts.clock ? { clock: opts.clock } : {}),
      openState: opts.openState,
      onPhase: (p: PhaseName) => this.setState(p),
    });
    this.writeGauge('running');
  }

  private get clock(): Clock {
    return this.opts.clock ?? realClock;
  }

  get state(): ShutdownState {
    return this.current;
  }

  get isShuttingDown(): boolean {
    return this.underway !== undefined;
  }

  get records(): readonly PhaseRecord[] {
    return this.runner.records;
  }

  /** The exit code what happened so far leads to (the gauge at the stop gate and the final push carry it). */
  expectedExitCode(): number {
    return this.exitCodeFor(this.runner.records, this.opts.reportExtras());
  }

  private exitCodeFor(records: readonly PhaseRecord[], extras: Record<string, unknown>): number {
    return shutdownExitCode({
      forced: this.runner.forced,
      outcomes: records.map((r) => r.outcome),
      abandoned: abandonedOf(extras),
      fault: this.firstFault !== undefined,
    });
  }

  /**
   * An uncaught exception or unhandled rejection: the first is recorded (the report names it and
   * the exit code is at least 2), then the orderly shutdown starts, or the one under way goes on.
   */
  onFault(kind: string, message: string): Promise<ShutdownReport> {
    this.firstFault ??= { kind, message };
    return this.start(kind);
  }

  /** The report, once the shutdown has run to its end. */
  get report(): ShutdownReport | undefined {
    return this.finalReport;
  }

  get shutdownReason(): string | undefined {
    return this.underway?.reason;
  }

  get startedAt(): number {
    return this.underway?.startedAtMs ?? 0;
  }

  private setState(to: ShutdownState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.writeGauge(to);
    this.log.debug({ from, to }, 'shutdown state changed');
    this.emit('state', to, from);
  }

  /** shutdown_phase is one-hot on the current state; this is its only writer. */
  private writeGauge(state: ShutdownState): void {
    for (const s of SHUTDOWN_STATES) this.opts.metrics.shutdownPhase.set({ phase: s }, s === state ? 1 : 0);
  }

  /** A termination signal: the first starts (or joins) the shutdown, the second forces it. */
  onSignal(signal: string): Promise<ShutdownReport> {
    this.signals++;
    if (this.signals >= 2) {
      this.force(signal);
      return this.running ?? this.start(signal);
    }
    if (this.underway) this.log.info({ signal, reason: this.underway.reason }, 'signal joins the shutdown already under way');
    return this.start(signal);
  }

  /** Starts the shutdown, or returns the one under way. Idempotent. */
  start(reason: string): Promise<ShutdownReport> {
    if (this.running) return this.running;
    const startedAtMs = this.clock.now();
    const deadlineAt = startedAtMs + this.opts.deadlineMs;
    this.opts.metrics.shutdownStartedTimestampSeconds.set(startedAtMs / 1000);
    this.log.info({ reason, deadlineMs: this.opts.deadlineMs }, `shutdown started by ${reason}`);
    const deadlineTimer = this.clock.setTimeout(() => this.releaseGateWaiters('deadline'), this.opts.deadlineMs);
    this.underway = { reason, startedAtMs, deadlineAt, deadlineTimer };
    this.running = this.run(this.underway);
    return this.running;
  }

  /** Second signal: the current phase aborts; the rest run without waiting. */
  force(source: string): void {
    if (this.runner.forced) return;
    this.log.warn({ source, state: this.current }, 'second signal: forcing the shutdown; remaining phases run without waiting');
    this.runner.force();
  }

  /** The stop gate opened (called from release): the backend may stop now. */
  markDrained(): void {
    if (this.gateOpen) return;
    this.gateOpen = true;
    this.setState('drained');
    this.releaseGateWaiters('drained');
  }

  /** For the stop gate and `POST /drain?wait=true`. */
  whenDrained(): Promise<'drained' | 'deadline'> {
    if (this.gateOpen) return Promise.resolve('drained');
    const u = this.underway;
    if (this.finalReport !== undefined || (u && this.clock.now() >= u.deadlineAt)) return Promise.resolve('deadline');
    return new Promise((resolve) => this.gateWaiters.push(resolve));
  }

  private releaseGateWaiters(r: 'drained' | 'deadline'): void {
    for (const w of this.gateWaiters.splice(0)) w(r);
  }

  private async run(u: Underway): Promise<ShutdownReport> {
    const phases = this.opts.phases();
    const records = await this.runner.runAll(phases, u.deadlineAt);
    u.deadlineTimer.clear();
    const forced = this.runner.forced;
    const extras = this.opts.reportExtras();
    const dataAtRisk = atRisk(records, extras, this.firstFault);
    const exitCode = this.exitCodeFor(records, extras);
    this.opts.metrics.exitCode.set(exitCode);
    this.setState('exited');
    const report: ShutdownReport = {
      reason: u.reason,
      startedAt: new Date(u.startedAtMs).toISOString(),
      durationMs: this.clock.now() - u.startedAtMs,
      phases: records,
      forced,
      ...extras,
      ...(this.firstFault ? { fault: this.firstFault } : {}),
      exitCode,
      dataAtRisk,
    };
    const level = exitCode === EXIT_OK ? 'info' : 'error';
    this.finalReport = report;
    this.releaseGateWaiters(this.gateOpen ? 'drained' : 'deadline');
    this.resolveFinished(report);
    this.log[level](
      { report },
      exitCode === EXIT_OK
        ? 'shutdown complete; every phase completed'
        : forced
          ? 'shutdown forced by a second signal'
          : failureMessage(dataAtRisk),
    );
    return report;
  }
}

/** Exit 0 means nothing was abandoned: an abandoned command turns a clean exit into exit 2. */
function abandonedOf(extras: Record<string, unknown>): number {
  return typeof extras['commandsAbandoned'] === 'number' ? extras['commandsAbandoned'] : 0;
}

function failureMessage(dataAtRisk: readonly string[]): string {
  if (dataAtRisk.some((r) => r.startsWith('phase '))) return 'shutdown finished with phases that timed out or failed; data may be at risk';
  if (!dataAtRisk.some((r) => r.includes(' abandoned')))
    return `shutdown finished after a fault; data may be at risk (${dataAtRisk.join('; ')})`;
  return `shutdown finished with commands abandoned; data may be at risk (${dataAtRisk.join('; ')})`;
}

/**
 * Why the exit is not clean, one sentence each: phases that timed out or failed, and commands
 * abandoned (`commandsAbandoned` of the report extras, with `sessionsClosed` naming the reasons
 * sessions ended). Empty means exit 0 may be claimed.
 */
export function atRisk(
  records: readonly PhaseRecord[],
  extras: Record<string, unknown>,
  fault?: { kind: string; message: string },
): string[] {
  const out: string[] = [];
  if (fault) out.push(`${fault.kind.replace('_', ' ')}: ${fault.message}`);
  for (const r of records) if (r.outcome === 'timed_out' || r.outcome === 'failed') out.push(`phase ${r.phase} ${r.outcome}`);
  const abandoned = abandonedOf(extras);
  if (abandoned > 0) {
    const closed = (extras['sessionsClosed'] ?? {}) as Record<string, number>;
    const cut = closed['backend_closed'] ?? 0;
    const how = cut > 0 ? ` (${cut} session${cut === 1 ? '' : 's'} closed by the backend since start)` : '';
    out.push(`${abandoned} command${abandoned === 1 ? '' : 's'} abandoned: forwarded, reply not delivered${how}`);
  }
  return out;
}
