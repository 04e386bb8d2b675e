/**
 * Phase 4, replication_sync: the replication watcher's convergence wait (design §6), then the
 * replication links that run through the sidecar are closed (their replicas have every write).
 */
import type { Phase } from '../phase-runner.js';
import type { SessionRegistry } from '../../proxy/session-registry.js';

/** The slice of the watcher's result this phase reads (see src/replication/watcher.ts). */
export interface ConvergenceOutcome {
  outcome: 'converged' | 'timed_out' | 'aborted' | 'skipped' | 'failed';
  reason: string;
  replicas: ReadonlyArray<{ address: string; verdict: string; behindBytes: string | null; position: string | null; detail?: string }>;
  target: string | null;
  targetMoved: boolean;
}

export interface ReplicationSyncDeps {
  budgetMs: number;
  registry: SessionRegistry;
  waitForConvergence(budgetMs: number, signal: AbortSignal): Promise<ConvergenceOutcome>;
  /** Receives the result for the shutdown report. */
  onResult(r: ConvergenceOutcome): void;
}

export function replicationSyncPhase(d: ReplicationSyncDeps): Phase {
  return {
    name: 'replication_sync',
    budgetMs: d.budgetMs,
    async run(ctx) {
      const links = () => d.registry.inMode('replication_link');
      try {
        if (ctx.forced()) return { outcome: 'failed', detail: { reason: 'forced: replicas were not waited for' } };
        const r = await d.waitForConvergence(ctx.budgetMs, ctx.signal);
        d.onResult(r);
        const detail = { reason: r.reason, target: r.target, targetMoved: r.targetMoved, replicas: r.replicas };
        switch (r.outcome) {
          case 'converged':
            return { outcome: 'completed', detail };
          case 'skipped':
            return { outcome: 'skipped', detail };
          case 'timed_out':
          case 'aborted':
            return { outcome: 'timed_out', detail };
          default:
            return { outcome: 'failed', detail };
        }
      } finally {
        const l = links();
        if (l.length > 0) ctx.log.info({ links: l.length }, 'closing replication links that run through the sidecar');
        for (const s of l) s.destroy('replication_link_closed');
      }
    },
  };
}
