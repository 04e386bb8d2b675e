/**
 * The shutdown as this sidecar runs it: the five phases over the components, what the report
 * adds (sessions closed, commands abandoned, the replication outcome) and what a phase record
 * shows as still open. The replication outcome is owned here: replication_sync writes it, the
 * report reads it.
 */
import type { SidecarConfig } from '../config/schema.js';
import { interceptBudgetMs } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Components } from '../components.js';
import { ShutdownCoordinator } from './coordinator.js';
import type { ResourceGraph } from './resource-graph.js';
import { interceptPhase } from './phases/intercept.js';
import { drainPhase } from './phases/drain.js';
import { closeClientsPhase } from './phases/close-clients.js';
import { replicationSyncPhase, type ConvergenceOutcome } from './phases/replication-sync.js';
import { releasePhase } from './phases/release.js';

export interface ShutdownPlanDeps {
  shutdown: SidecarConfig['shutdown'];
  parts: Components;
  /** Declared by main.ts once every part it releases exists; read when release runs. */
  release: ResourceGraph;
  logger: Logger;
  metrics: Metrics;
}

export function planShutdown(d: ShutdownPlanDeps): ShutdownCoordinator {
  const { shutdown: sd, parts } = d;
  const { registry, watcher, listener, frontPorts, control } = parts;
  let convergence: ConvergenceOutcome | undefined;
  return new ShutdownCoordinator({
    logger: d.logger,
    metrics: d.metrics,
    deadlineMs: sd.deadlineMs,
    openState: () => ({
      sessions: registry.byMode(),
      inflight: registry.inflight(),
      replicasBehind: watcher
        .snapshot()
        .replicas.filter((r) => r.state !== 'online' || (r.lagBytes !== null && r.lagBytes !== '0'))
        .map((r) => r.address),
    }),
    reportExtras: () => ({
      sessionsClosed: { ...registry.closedByReason },
      commandsAbandoned: registry.abandonedTotal,
      replication: convergence
        ? {
            outcome: convergence.outcome,
            reason: convergence.reason,
            target: convergence.target,
            targetMoved: convergence.targetMoved,
            replicas: convergence.replicas,
          }
        : null,
    }),
    phases: () => [
      interceptPhase({
        announceDelayMs: sd.announceDelayMs,
        budgetMs: interceptBudgetMs(sd),
        refuseReplication: () => registry.refuseReplication(),
        refuseFrontLinks: () => frontPorts?.refuse(),
        closeListener: () => listener.close(),
      }),
      drainPhase({ budgetMs: sd.drainTimeoutMs, registry }),
      closeClientsPhase({ budgetMs: sd.closeTimeoutMs, closeSpreadMs: sd.closeSpreadMs, registry, backend: control }),
      replicationSyncPhase({
        budgetMs: sd.replicationTimeoutMs,
        registry,
        waitForConvergence: (budget, signal) => watcher.waitForConvergence(budget, signal),
        onResult: (r) => {
          convergence = r;
        },
      }),
      releasePhase({ budgetMs: sd.releaseTimeoutMs, graph: d.release }),
    ],
  });
}
