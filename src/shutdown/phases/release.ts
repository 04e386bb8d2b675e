/** Phase 5, release: the declared resource graph, released in dependency order. */
import type { Phase } from '../phase-runner.js';
import type { ResourceGraph } from '../resource-graph.js';

export function releasePhase(d: { budgetMs: number; graph: ResourceGraph }): Phase {
  return {
    name: 'release',
    budgetMs: d.budgetMs,
    async run(ctx) {
      const records = await d.graph.release(ctx.signal, ctx.log);
      const failed = records.filter((r) => r.outcome === 'failed');
      const destroyed = records.filter((r) => r.outcome === 'destroyed');
      const detail = { released: records.map((r) => `${r.name}:${r.outcome}`) };
      if (failed.length > 0) return { outcome: 'failed', detail };
      if (destroyed.length > 0 && !ctx.forced()) return { outcome: 'timed_out', detail };
      return { detail };
    },
  };
}
