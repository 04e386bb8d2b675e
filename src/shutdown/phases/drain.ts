/**
 * Phase 2, drain: nothing new is forwarded (except inside an open MULTI until EXEC/DISCARD); every
 * forwarded command's reply is delivered; each session closes as soon as it is idle. Event-driven:
 * the phase waits on the registry's 'change' events. Blocked sessions and replication links are
 * left for close_clients and replication_sync. On timeout the stragglers are left to close_clients.
 */
import type { Phase } from '../phase-runner.js';
import type { SessionRegistry } from '../../proxy/session-registry.js';

export function drainPhase(d: { budgetMs: number; registry: SessionRegistry }): Phase {
  const { registry } = d;
  const remaining = () => {
    const m = registry.byMode();
    return registry.size - m.replication_link - m.blocked;
  };
  return {
    name: 'drain',
    budgetMs: d.budgetMs,
    async run(ctx) {
      const before = registry.clientSessionCount();
      const inflightBefore = registry.inflight();
      registry.drainAll();
      ctx.log.info({ sessions: before, inflight: inflightBefore }, 'draining: forwarding nothing new, delivering every reply in flight');
      if (ctx.forced()) return { outcome: 'completed', detail: { sessions: before } };
      try {
        await registry.waitUntil(() => remaining() === 0, ctx.signal);
      } catch {
        return { outcome: 'timed_out', detail: { left: remaining() } };
      }
      return { detail: { sessionsAtStart: before, inflightAtStart: inflightBefore, blockedLeft: registry.byMode().blocked } };
    },
  };
}
