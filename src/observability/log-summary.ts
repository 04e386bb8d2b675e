/**
 * Aggregated logging for per-event lines on the data path (refused commands, refused
 * connections, EMFILE): the first occurrence of each kind is logged at once, later ones are
 * counted and logged as one summary line per interval. Metrics carry the exact totals; this only
 * keeps a flood of events from becoming a flood of log lines (a client looping on a denied
 * command would otherwise write hundreds of thousands of lines a second).
 *
 * Pure bookkeeping plus one unref()ed timer; `close()` flushes what is pending and stops it.
 */
import type { Logger } from './logger.js';

type Level = 'info' | 'warn' | 'error';

interface Pending {
  level: Level;
  message: string;
  count: number;
  /** The fields of the last suppressed occurrence (no secrets: callers pass no arguments). */
  last: Record<string, unknown>;
}

export interface LogSummaryOptions {
  /** How often suppressed occurrences are summarised (default 10 s). */
  intervalMs?: number;
  /** Injected for tests. */
  setInterval?: (fn: () => void, ms: number) => { unref(): unknown };
  clearInterval?: (timer: unknown) => void;
}

export class LogSummary {
  private readonly seen = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  private timer: { unref(): unknown } | undefined;
  private closed = false;
  private readonly intervalMs: number;
  private readonly setIntervalFn: NonNullable<LogSummaryOptions['setInterval']>;
  private readonly clearIntervalFn: NonNullable<LogSummaryOptions['clearInterval']>;

  constructor(
    private readonly logger: Logger,
    opts: LogSummaryOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.setIntervalFn = opts.setInterval ?? ((fn, ms) => setInterval(fn, ms));
    this.clearIntervalFn = opts.clearInterval ?? ((t) => clearInterval(t as NodeJS.Timeout));
  }

  /**
   * One occurrence of the event `kind`. The first is logged now with `fields` and `message`;
   * the rest are counted until the next summary.
   */
  event(level: Level, kind: string, fields: Record<string, unknown>, message: string): void {
    if (!this.seen.has(kind)) {
      this.seen.add(kind);
      this.logger[level]({ ...fields, event: kind }, message);
      return;
    }
    const p = this.pending.get(kind);
    if (p) {
      p.count++;
      p.last = fields;
    } else {
      this.pending.set(kind, { level, message, count: 1, last: fields });
    }
    if (!this.timer && !this.closed) {
      this.timer = this.setIntervalFn(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Logs one summary line per kind with suppressed occurrences since the last flush. */
  flush(): void {
    for (const [kind, p] of this.pending) {
      this.logger[p.level](
        { ...p.last, event: kind, suppressed: p.count, intervalMs: this.intervalMs },
        `${p.message} (${p.count} more since the last summary)`,
      );
    }
    this.pending.clear();
    if (this.timer) {
      this.clearIntervalFn(this.timer);
      this.timer = undefined;
    }
  }

  /** Flushes and stops the timer; later repeats are only counted by the metrics (idempotent). */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }
}
