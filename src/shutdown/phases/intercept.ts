/**
 * Phase 1, intercept: readiness turns 503 (the coordinator's state is no longer `running`), new
 * replica sync requests are refused (SYNC/PSYNC through the client port, and new connections on the
 * fronted Pika replication ports; links already open keep flowing), clients keep being served for the announce delay while the
 * endpoint removal propagates, then the listener closes.
 */
import type { Phase } from '../phase-runner.js';
import { delay } from '../phase-runner.js';

export interface InterceptDeps {
  announceDelayMs: number;
  budgetMs: number;
  refuseReplication(): void;
  /** replication.frontPikaPorts: new connections on +2000/+10001 are closed at accept from now on. */
  refuseFrontLinks?(): void;
  closeListener(): Promise<void>;
}

export function interceptPhase(d: InterceptDeps): Phase {
  return {
    name: 'intercept',
    budgetMs: d.budgetMs,
    async run(ctx) {
      d.refuseReplication();
      d.refuseFrontLinks?.();
      ctx.log.info({ announceDelayMs: ctx.forced() ? 0 : d.announceDelayMs }, 'readiness is failing; still serving while endpoints update');
      if (!ctx.forced()) await delay(d.announceDelayMs, ctx.signal);
      await d.closeListener();
      return { detail: { announceDelayMs: d.announceDelayMs } };
    },
  };
}
