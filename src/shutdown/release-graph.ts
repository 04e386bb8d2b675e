/**
 * What `release` lets go of, in dependency order: nothing that talks to the backend may outlive
 * the stop gate, and the admin server outlives the gate so the final state can be scraped.
 *
 *   pollers → pool → control → stop_gate → admin → metrics_push → logs
 *   front_links ──────────────↗   (replication.frontPikaPorts: no replica attached when the gate opens)
 */
import type { Logger } from '../observability/logger.js';
import type { ResourceGraph } from './resource-graph.js';
import { delay } from './phase-runner.js';
import { lingerMs } from './linger.js';

export interface ReleaseParts {
  /** Health checks, the replication watcher and the trigger file: everything that polls. */
  pollers: { close(): Promise<void>; destroy(): void };
  pool: { close(): Promise<void>; destroy(): void };
  control: { close(): Promise<void>; destroy(reason: string): void };
  /** replication.frontPikaPorts: the fronted Pika replication links and their listeners (undefined when off). */
  frontLinks: { close(): Promise<void>; destroy(): void } | undefined;
  /** Opens the stop gate (state `drained`): the backend may stop now. */
  openGate(): void;
  admin: { close(graceMs: number): Promise<void>; destroy(): void };
  /** holdUntilSignal: keep the admin server up for the probes instead of closing it. */
  hold: { readonly holding: boolean; markAdminHeld(): void };
  metricsLingerMs: number;
  /** When release's budget ends: the linger is cut to leave the reserve before it (./linger.ts). */
  releaseEndsAt: () => number;
  /** The final Pushgateway push, when one is configured. */
  push: (() => Promise<void>) | undefined;
  logger: Logger;
}

/** Declares the release order into `graph` (created before the phases that release it) and checks it. */
export function declareReleaseGraph(graph: ResourceGraph, p: ReleaseParts): ResourceGraph {
  const log = p.logger.child({ component: 'main' });
  graph
    .add({ name: 'pollers', after: [], close: () => p.pollers.close(), destroy: () => p.pollers.destroy() })
    .add({ name: 'pool', after: ['pollers'], close: () => p.pool.close(), destroy: () => p.pool.destroy() })
    .add({ name: 'control', after: ['pool'], close: () => p.control.close(), destroy: () => p.control.destroy('release') })
    .add({
      // Closed before the gate, so the backend stops with no replica attached through the sidecar.
      name: 'front_links',
      after: [],
      close: () => p.frontLinks?.close(),
      destroy: () => p.frontLinks?.destroy(),
    })
    .add({
      name: 'stop_gate',
      after: ['control', 'front_links'],
      close: () => {
        p.openGate();
        log.info('stop gate open: the backend may stop now');
      },
      destroy: () => p.openGate(),
    })
    .add({
      name: 'admin',
      after: ['stop_gate'],
      close: async (signal) => {
        if (p.hold.holding) {
          p.hold.markAdminHeld();
          log.info('holding until SIGTERM: the admin server stays up for the probes (holdUntilSignal)');
          return;
        }
        // Cut to leave release's reserve (admin close, push, log flush); returns at once when forced.
        await delay(lingerMs(p.metricsLingerMs, p.releaseEndsAt(), Date.now()), signal);
        await p.admin.close(200);
      },
      destroy: () => p.admin.destroy(),
    })
    .add({
      // A scrape may miss a shutdown that lasts seconds: push the final state once, if configured.
      name: 'metrics_push',
      after: ['admin'],
      close: async () => {
        await p.push?.();
      },
      destroy: () => undefined,
    })
    .add({ name: 'logs', after: ['metrics_push'], close: () => p.logger.flush(), destroy: () => p.logger.flush() });
  graph.order(); // a cycle or a typo is a start-up error, not a shutdown surprise
  return graph;
}
