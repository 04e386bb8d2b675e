/**
 * The convergence wait of the replication_sync phase: one bounded loop.
 *
 *   read master (role, kind) ──replica──▶ skipped        no replicas ──▶ skipped
 *        │ master with replicas
 *        ▼
 *   [pauseWrites, supported] CLIENT PAUSE <remaining budget> WRITE, read again
 *        ▼
 *   record TARGET ─▶ assess ─▶ all converged ─▶ settle, read, assess again ─▶ converged
 *                     │  ▲      every open one diverged ─▶ failed
 *                     ▼  │
 *                  sleep (backoff + jitter), read; target moved? ─▶ warn, report
 *
 *   budget exhausted ─▶ timed_out (per-replica detail)    abort signal ─▶ aborted (within one poll)
 *
 * Never throws: a slow, unreachable or garbled backend or replica ends in a result.
 *
 * The write pause — when it is lifted:
 * - aborted or failed: `CLIENT UNPAUSE` at once. The shutdown was called off or went wrong; the
 *   backend may keep serving and must not stay frozen.
 * - converged or timed_out: left in place. The backend is about to stop (release opens the stop
 *   gate next); a write that bypasses the sidecar between now and then would be acknowledged by the
 *   master and never reach the replicas (I3). Held, its client sees the connection close and can
 *   retry elsewhere. The pause cannot outlive the shutdown if the sidecar dies: it was requested for
 *   the remaining budget only and Redis lifts it on its own after that. (Redis's own SIGTERM
 *   handling then pauses writes again while it waits for its replicas.)
 */
import type { ReplicationConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { pollDelayMs } from './backoff.js';
import {
  describeReplica,
  summarizeVerdicts,
  type ConvergenceResult,
  type ReplicaAssessment,
  type WritePauseOutcome,
} from './convergence.js';
import { errorText, raceAbort } from './info-client.js';
import { isSidecarError } from '../errors.js';
import {
  assessReplicas,
  formatTarget,
  listedReplicas,
  targetMovedBetween,
  targetOf,
  type Observation,
  type Target,
} from './observation.js';
import type { WritePause } from './write-pause.js';

export interface WaitDeps {
  /** One poll; rejects on failure or when `signal` aborts. */
  read(signal: AbortSignal): Promise<Observation>;
  /** Shows a poll's assessments in /status and the metrics. */
  publish(obs: Observation, target: Target, assessments: readonly ReplicaAssessment[]): void;
  /** Null when pauseWrites is off. */
  pause: WritePause | null;
  config: ReplicationConfig;
  logger: Logger;
  random: () => number;
  /** Aborts when the watcher is closed or destroyed. */
  lifetime: AbortSignal;
  /**
   * Replicas the last normal-service poll listed. One that has left the master's list since (killed,
   * promoted, cut off just before the shutdown) is still expected: it may lack acknowledged writes.
   */
  known: readonly string[];
}

type StopKind = 'deadline' | 'aborted' | 'closed' | 'backend_gone';

/**
 * A backend that refuses connections this long has stopped: its replicas can receive nothing more,
 * so waiting out the budget would only delay the exit. (Timeouts are not counted: a slow backend
 * may still answer.)
 */
export const BACKEND_GONE_MS = 1000;

class WaitStopped extends Error {
  constructor(readonly kind: StopKind) {
    super(`convergence wait stopped: ${kind}`);
  }
}

const PROGRESS_LOG_INTERVAL_MS = 1000;
const UNPAUSE_WAIT_MS = 250;

export async function runConvergenceWait(deps: WaitDeps, budgetMs: number, signal: AbortSignal): Promise<ConvergenceResult> {
  const run = new ConvergenceWait(deps, budgetMs, signal);
  return run.run();
}

class ConvergenceWait {
  private readonly t0 = performance.now();
  private readonly deadline: number;
  private readonly ctl = new AbortController();
  private kind: ConvergenceResult['kind'] = 'unknown';
  private target: Target | null = null;
  private lastMaster: Target | null = null;
  private targetMoved = false;
  private assessments: readonly ReplicaAssessment[] = [];
  private readonly expected = new Set<string>();
  private attempt = 0;
  private polls = 0;
  private lastError: string | null = null;
  /** When the backend first refused a connection in the current run of failures. */
  private unreachableSince: number | null = null;
  private writePause: WritePauseOutcome = 'off';
  private lastProgressLogAt = -Infinity;

  constructor(
    private readonly deps: WaitDeps,
    private readonly budgetMs: number,
    private readonly signal: AbortSignal,
  ) {
    this.deadline = this.t0 + Math.max(0, budgetMs);
  }

  async run(): Promise<ConvergenceResult> {
    const { logger } = this.deps;
    const timer = setTimeout(() => this.ctl.abort(new WaitStopped('deadline')), Math.max(0, this.budgetMs));
    const onAbort = () => this.ctl.abort(new WaitStopped('aborted'));
    const onClose = () => this.ctl.abort(new WaitStopped('closed'));
    this.signal.addEventListener('abort', onAbort, { once: true });
    this.deps.lifetime.addEventListener('abort', onClose, { once: true });
    if (this.signal.aborted) onAbort();
    if (this.deps.lifetime.aborted) onClose();
    let result: ConvergenceResult;
    try {
      result = await this.loop();
    } catch (err) {
      result = this.stopped(err);
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener('abort', onAbort);
      this.deps.lifetime.removeEventListener('abort', onClose);
    }
    if ((result.outcome === 'aborted' || result.outcome === 'failed') && this.deps.pause?.isActive) {
      // Sent at once; waited for briefly only, so a hung control connection cannot delay an abort.
      await Promise.race([this.deps.pause.unpause(), new Promise<void>((r) => setTimeout(r, UNPAUSE_WAIT_MS).unref())]);
    }
    const level = result.outcome === 'converged' || result.outcome === 'skipped' ? 'info' : result.outcome === 'aborted' ? 'warn' : 'error';
    logger[level](
      {
        outcome: result.outcome,
        kind: result.kind,
        target: result.target,
        targetMoved: result.targetMoved,
        writePause: result.writePause,
        durationMs: result.durationMs,
        replicas: result.replicas,
      },
      `replication wait ${result.outcome}: ${result.reason}`,
    );
    return result;
  }

  private remaining(): number {
    return this.deadline - performance.now();
  }

  private async loop(): Promise<ConvergenceResult> {
    const { logger } = this.deps;
    // 1. Role and kind, retried within the budget.
    let obs = await this.readUntil((o) => o.info.role !== 'unknown' && (o.info.role === 'replica' || targetOf(o) !== null));
    if (obs.info.role === 'replica') {
      const up = obs.info.upstream;
      const of = up && up.host !== null ? ` of ${up.host}:${up.port ?? '?'}` : '';
      const downstream = obs.info.replicas.length > 0 ? `; its own ${obs.info.replicas.length} replica(s) follow the same stream` : '';
      return this.result('skipped', `the backend is a replica${of}; nothing downstream to wait for${downstream}`);
    }
    if (obs.info.replicas.length === 0 && (obs.info.connectedReplicas ?? 0) === 0 && this.deps.known.length === 0) {
      this.target = targetOf(obs);
      return this.result('skipped', 'the backend is a master with no replicas; nothing to wait for');
    }

    // 2. Hold writes that bypass the sidecar, then read the position they can no longer move. Tried
    // on every backend: support is a capability (Redis ≥ 6.2 has it, Pika answers -ERR), found once.
    if (this.deps.pause) {
      this.writePause = await raceAbort(this.deps.pause.pause(this.remaining()), this.ctl.signal);
      if (this.writePause === 'applied') obs = await this.readUntil((o) => o.info.role === 'master' && targetOf(o) !== null);
    }

    // 3. The target.
    this.target = targetOf(obs)!;
    this.lastMaster = this.target;
    for (const a of listedReplicas(obs)) this.expected.add(a);
    const gone = this.deps.known.filter((a) => !this.expected.has(a));
    for (const a of gone) this.expected.add(a);
    if (gone.length > 0)
      logger.warn(
        { replicas: gone },
        'replicas listed before the shutdown are gone from the master; they are waited for and count as not converged',
      );
    logger.info(
      { kind: this.kind, target: formatTarget(this.target), replicas: [...this.expected], writePause: this.writePause },
      `recorded the replication target; waiting for ${this.expected.size} replica(s) to reach it`,
    );

    // 4. Poll until converged, diverged, out of budget or aborted.
    for (;;) {
      this.assess(obs);
      const summary = summarizeVerdicts(this.assessments.map((a) => a.result));
      if (summary === 'diverged') return this.result('failed', `every replica not converged has diverged: ${this.openList()}`);
      if (summary === 'converged') {
        const settle = Math.max(0, Math.min(this.deps.config.settleMs, this.remaining() / 2));
        logger.debug({ settleMs: Math.round(settle) }, 'every replica reached the target; checking again after the settle delay');
        await this.sleep(settle);
        const again = await this.readOnce();
        if (again) {
          obs = again;
          this.assess(obs);
          if (summarizeVerdicts(this.assessments.map((a) => a.result)) === 'converged') {
            return this.result('converged', `${this.assessments.length} replica(s) reached the target`);
          }
          logger.info({ replicas: this.openList() }, 'a replica fell back below the target during the settle delay; waiting on');
        }
        continue;
      }
      this.logProgress();
      await this.sleep(
        pollDelayMs(this.attempt++, this.deps.config.shutdownPollMinMs, this.deps.config.shutdownPollMaxMs, this.deps.random),
      );
      obs = (await this.readOnce()) ?? obs;
    }
  }

  /** Assesses a poll against the target, notes a moving target, publishes. */
  private assess(obs: Observation): void {
    const target = this.target!;
    for (const a of listedReplicas(obs)) this.expected.add(a);
    const now = targetOf(obs);
    if (now && this.lastMaster && targetMovedBetween(this.lastMaster, now)) {
      if (!this.targetMoved) {
        this.deps.logger.warn(
          { target: formatTarget(target), master: formatTarget(now) },
          "the master's position moved during the wait: writes bypass the sidecar; replicas are still held to the recorded target",
        );
      }
      this.targetMoved = true;
    }
    if (now) this.lastMaster = now;
    this.assessments = assessReplicas(obs, target, this.expected);
    this.deps.publish(obs, target, this.assessments);
    this.deps.logger.debug(
      { poll: this.polls, master: now ? formatTarget(now) : null, replicas: this.assessments.map((a) => describeReplica(a.result)) },
      'replication poll',
    );
  }

  /** One read; a failure is remembered and the loop carries on with the previous poll. */
  private async readOnce(): Promise<Observation | null> {
    this.throwIfStopped();
    try {
      const obs = await this.deps.read(this.ctl.signal);
      this.polls++;
      this.kind = obs.dialect;
      this.lastError = null;
      this.unreachableSince = null;
      return obs;
    } catch (err) {
      this.throwIfStopped();
      const text = errorText(err);
      if (text !== this.lastError) this.deps.logger.warn({ err: text }, 'could not read the replication state; retrying within the budget');
      this.lastError = text;
      if (isSidecarError(err, 'ERR_BACKEND_UNREACHABLE')) {
        this.unreachableSince ??= performance.now();
        if (performance.now() - this.unreachableSince >= BACKEND_GONE_MS) {
          this.ctl.abort(new WaitStopped('backend_gone'));
          throw this.ctl.signal.reason;
        }
      } else this.unreachableSince = null;
      return null;
    }
  }

  /** Reads until `ok` holds, with backoff between attempts; the budget bounds it. */
  private async readUntil(ok: (o: Observation) => boolean): Promise<Observation> {
    for (;;) {
      const obs = await this.readOnce();
      if (obs && ok(obs)) return obs;
      if (obs) this.lastError = `the backend's INFO replication shows no usable ${obs.info.role === 'unknown' ? 'role' : 'position'}`;
      await this.sleep(
        pollDelayMs(this.attempt++, this.deps.config.shutdownPollMinMs, this.deps.config.shutdownPollMaxMs, this.deps.random),
      );
    }
  }

  /** Always yields to the event loop (even for 0 ms), so a backend that answers from memory cannot
   * starve the deadline timer. */
  private async sleep(ms: number): Promise<void> {
    this.throwIfStopped();
    await new Promise<void>((resolve, reject) => {
      const signal = this.ctl.signal;
      const onAbort = () => {
        clearTimeout(t);
        reject(signal.reason);
      };
      const t = setTimeout(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The deadline is also checked here, not only by its timer: the loop never outlives the budget. */
  private throwIfStopped(): void {
    if (!this.ctl.signal.aborted && this.remaining() <= 0) this.ctl.abort(new WaitStopped('deadline'));
    if (this.ctl.signal.aborted) throw this.ctl.signal.reason;
  }

  private logProgress(): void {
    const now = performance.now();
    if (now - this.lastProgressLogAt < PROGRESS_LOG_INTERVAL_MS) return;
    this.lastProgressLogAt = now;
    const converged = this.assessments.filter((a) => a.result.verdict === 'converged').length;
    this.deps.logger.info(
      { remainingMs: Math.max(0, Math.round(this.remaining())), targetMoved: this.targetMoved },
      `waiting for replicas: ${converged} of ${this.assessments.length} reached the target; ${this.openList()}`,
    );
  }

  private openList(): string {
    return this.assessments
      .filter((a) => a.result.verdict !== 'converged')
      .map((a) => describeReplica(a.result))
      .join('; ');
  }

  private stopped(err: unknown): ConvergenceResult {
    const kind =
      err instanceof WaitStopped
        ? err.kind
        : this.ctl.signal.aborted && this.ctl.signal.reason instanceof WaitStopped
          ? this.ctl.signal.reason.kind
          : null;
    if (kind === 'aborted') return this.result('aborted', 'the wait was aborted');
    if (kind === 'closed') return this.result('aborted', 'the replication watcher was closed during the wait');
    if (kind === 'backend_gone') {
      return this.result(
        'failed',
        `the backend has refused connections for ${BACKEND_GONE_MS} ms (${this.lastError ?? 'unreachable'}): it has stopped, so its replicas can receive nothing more`,
      );
    }
    if (kind === 'deadline') {
      if (!this.target) {
        const why = this.lastError ?? 'no reply from the backend';
        return this.result('failed', `could not read the backend's replication state within ${this.budgetMs} ms: ${why}`);
      }
      const open = this.assessments.filter((a) => a.result.verdict !== 'converged').length;
      const last = this.lastError !== null ? `; last poll failed: ${this.lastError}` : '';
      return this.result(
        'timed_out',
        `budget of ${this.budgetMs} ms exhausted with ${open} of ${this.assessments.length} replica(s) not at the target: ${this.openList()}${last}`,
      );
    }
    return this.result('failed', `unexpected error during the wait: ${errorText(err)}`);
  }

  private result(outcome: ConvergenceResult['outcome'], reason: string): ConvergenceResult {
    const moved = this.targetMoved ? "; the master's position moved during the wait (writes bypass the sidecar)" : '';
    return {
      outcome,
      reason: reason + moved,
      kind: this.kind,
      target: this.target ? formatTarget(this.target) : null,
      targetMoved: this.targetMoved,
      replicas: this.assessments.map((a) => ({ ...a.result })),
      durationMs: Math.round(performance.now() - this.t0),
      writePause: this.writePause,
    };
  }
}
