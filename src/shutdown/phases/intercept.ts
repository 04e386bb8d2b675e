/**
 * Phase 1, intercept: readiness turns 503 (the coordinator's state is no longer `running`), new
 * replica sync requests are refused, clients keep being served for the announce delay while the
 * endpoint removal propagates, then the listener closes.
 */
import type { Phase } from '../phase-runner.js';
import { delay } from '../phase-runner.js';

export interface InterceptDeps {
  announceDelayMs: number;
  budgetMs: number;
  refuseReplication(): void;
  closeListener(): Promise<void>;
}

export function interceptPhase(d: InterceptDeps): Phase {
  return {
    name: 'intercept',
    budgetMs: d.budgetMs,
    async run(ctx) {
      d.refuseReplication();
      ctx.log.info({ announceDelayMs: ctx.forced() ? 0 : d.announceDelayMs }, 'readiness is failing; still serving while endpoints update');
      if (!ctx.forced()) await delay(d.announceDelayMs, ctx.signal);
      await d.closeListener();
      return { detail: { announceDelayMs: d.announceDelayMs } };
    },
  };
}
