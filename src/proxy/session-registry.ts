/**
 * Every open client session, with counts by mode kept incrementally (so /metrics and /status are
 * O(1) in the common case) and one 'change' event that the drain waits on (never a poll).
 */
import type net from 'node:net';
import { EventEmitter } from 'node:events';
import { Session, type SessionCloseInfo, type SessionContext } from './session.js';
import { SESSION_MODES, type CloseReason, type SessionMode } from '../observability/names.js';
import type { CommandTable } from '../resp/command-table.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { LogSummary } from '../observability/log-summary.js';

export interface SessionRegistryOptions {
  table: CommandTable;
  limits: { maxBulkBytes: number; maxInlineBytes: number };
  metrics: Metrics;
  logger: Logger;
}

export class SessionRegistry extends EventEmitter {
  private readonly sessions = new Set<Session>();
  private readonly counts = Object.fromEntries(SESSION_MODES.map((m) => [m, 0])) as Record<SessionMode, number>;
  private readonly ctx: SessionContext;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private refusing = false;
  /** Refusals and other per-command events: the first logged, then one summary per interval. */
  readonly events: LogSummary;
  private draining = false;
  /** Totals since start, for the shutdown report. */
  readonly closedByReason: Partial<Record<CloseReason, number>> = {};
  abandonedTotal = 0;

  constructor(opts: SessionRegistryOptions) {
    super();
    this.metrics = opts.metrics;
    this.log = opts.logger.child({ component: 'sessions' });
    this.events = new LogSummary(this.log);
    this.ctx = {
      table: opts.table,
      limits: opts.limits,
      hot: opts.metrics.hot,
      logger: this.log,
      events: this.events,
      refuseReplication: () => this.refusing,
      onModeChange: (_s, from, to) => {
        this.counts[from]--;
        this.counts[to]++;
        this.emit('change');
      },
    };
  }

  /** Starts a session over a client socket and its (already connected) backend socket. */
  add(client: net.Socket, backend: net.Socket): Session {
    const session = new Session(client, backend, this.ctx);
    this.sessions.add(session);
    this.counts[session.mode]++;
    this.metrics.clientConnectionsTotal.inc();
    session.once('closed', (info: SessionCloseInfo) => this.remove(session, info));
    if (this.draining) session.drain();
    this.emit('change');
    return session;
  }

  private remove(session: Session, info: SessionCloseInfo): void {
    if (!this.sessions.delete(session)) return;
    this.counts[session.mode]--;
    this.closedByReason[info.reason] = (this.closedByReason[info.reason] ?? 0) + 1;
    this.metrics.clientConnectionsClosedTotal.inc({ reason: info.reason });
    if (info.abandoned > 0) {
      this.abandonedTotal += info.abandoned;
      this.metrics.commandsAbandonedTotal.inc(info.abandoned);
      this.log.warn(
        { session: session.id, abandoned: info.abandoned, reason: info.reason },
        'session closed with commands whose replies were not delivered',
      );
    }
    this.emit('change');
  }

  /** Records a client turned away before it had a session (backend unreachable). */
  countRejected(reason: CloseReason): void {
    this.closedByReason[reason] = (this.closedByReason[reason] ?? 0) + 1;
    this.metrics.clientConnectionsClosedTotal.inc({ reason });
  }

  get size(): number {
    return this.sessions.size;
  }

  byMode(): Record<SessionMode, number> {
    return { ...this.counts };
  }

  inflight(): number {
    let n = 0;
    for (const s of this.sessions) n += s.inflight;
    return n;
  }

  all(): Session[] {
    return [...this.sessions];
  }

  inMode(mode: SessionMode): Session[] {
    return [...this.sessions].filter((s) => s.mode === mode);
  }

  /** From `intercept` on: SYNC/PSYNC/SLAVEOF/REPLICAOF are refused with -ERR. */
  refuseReplication(): void {
    this.refusing = true;
  }

  /** Every session stops taking new commands and closes once idle (replication links excepted). */
  drainAll(): void {
    this.draining = true;
    for (const s of this.sessions) s.drain();
  }

  /** Sessions other than replication links (which the drain leaves open). */
  clientSessionCount(): number {
    return this.sessions.size - this.counts.replication_link;
  }

  /**
   * Resolves once `done()` holds, re-checked on every session change; rejects with the signal's
   * reason when aborted.
   */
  waitUntil(done: () => boolean, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) {
          cleanup();
          resolve();
        }
      };
      const onAbort = () => {
        cleanup();
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const cleanup = () => {
        this.off('change', check);
        signal.removeEventListener('abort', onAbort);
      };
      if (signal.aborted) return onAbort();
      this.on('change', check);
      signal.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  /** Forced: every client session now (replication links close after replication_sync). */
  destroyClients(reason: CloseReason): void {
    for (const s of [...this.sessions]) if (s.mode !== 'replication_link') s.destroy(reason);
  }
}
