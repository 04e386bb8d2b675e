/**
 * A manual clock for the shutdown machinery's unit tests: no real waiting, every duration exact.
 * Time only moves when a test calls `clock.advance(ms)`, which fires the due timers in order and
 * lets the promise chains they start settle before moving on.
 */
import type { Clock } from '../../src/shutdown/phase-runner.js';

/** Lets every promise chain that is ready run (a macrotask turn drains the microtask queue). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  cleared: boolean;
}

export class ManualClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private timers: FakeTimer[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): { clear(): void } {
    const timer: FakeTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cleared: false };
    this.timers.push(timer);
    return {
      clear: () => {
        timer.cleared = true;
      },
    };
  }

  /** Delays (from now) of the timers still armed, soonest first. */
  armed(): number[] {
    return this.timers
      .filter((x) => !x.cleared)
      .map((x) => x.at - this.t)
      .sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing each due timer at its own time, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (let i = 0; i < 10_000; i++) {
      await settle();
      const due = this.timers.filter((x) => !x.cleared && x.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      due.cleared = true;
      this.t = due.at;
      due.fn();
    }
    this.t = target;
    this.timers = this.timers.filter((x) => !x.cleared);
    await settle();
  }

  /** A sleep on this clock that ends early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || ms <= 0) return resolve();
      const timer = this.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        timer.clear();
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
