/**
 * Composition root: builds the components from a validated config, wires the triggers (signals,
 * HTTP, gate, trigger file) to the shutdown coordinator, and resolves with the exit code once the
 * shutdown's `release` is done. It never calls process.exit: the entry points do (src/cli.ts, and
 * the demo's own in demo/).
 */
import { Registry } from 'prom-client';
import os from 'node:os';
import type { SidecarConfig } from './config/schema.js';
import { interceptBudgetMs } from './config/schema.js';
import { maskUrlPassword } from './observability/redact.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import type { SessionRegistry } from './proxy/session-registry.js';
import { AdminServer } from './admin/admin-server.js';
import { readiness, statusBody } from './admin/status.js';
import { pushFinalMetrics } from './observability/pushgateway.js';
import type { ShutdownCoordinator, ShutdownReport } from './shutdown/coordinator.js';
import { ResourceGraph } from './shutdown/resource-graph.js';
import { TriggerFile } from './shutdown/trigger-file.js';
import { declareReleaseGraph } from './shutdown/release-graph.js';
import { SignalHold } from './shutdown/signals.js';
import { planShutdown } from './shutdown/plan.js';
import { startupChecks } from './startup-checks.js';
import { buildComponents } from './components.js';
import { injectedFault, installFaultHandlers } from './process-faults.js';
import { probeAcceptedReuse } from './backend/read-buffer.js';

export { INJECT_FAULT_ENV } from './process-faults.js';

export interface RunOptions {
  /** Config file path, for the start-up log line only. */
  configPath?: string | undefined;
  /** Tests and the demo: a logger of their own (defaults to JSON on stdout). */
  logger?: Logger | undefined;
  /**
   * Install the termination-signal handlers (src/shutdown/signals.ts) and the process-wide
   * uncaughtException / unhandledRejection handlers (default true).
   */
  handleSignals?: boolean | undefined;
  /** Called once everything listens, with the bound addresses (tests use port 0). */
  onReady?: ((s: Sidecar) => void) | undefined;
}

/** A running sidecar's parts, for onReady callers (tests, the demo). */
export interface Sidecar {
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  coordinator: ShutdownCoordinator;
  registry: SessionRegistry;
  metrics: Metrics;
}

export async function runSidecar(config: SidecarConfig, opts: RunOptions = {}): Promise<number> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const log = logger.child({ component: 'main' });
  const metrics = createMetrics(new Registry());
  const sd = config.shutdown;

  // The parts: decided and built before anything listens or connects.
  const decisions = await startupChecks(config, log);
  const parts = buildComponents(config, decisions, logger, metrics);
  const { pool, control, health, registry, listener, frontPorts, watcher } = parts;
  // Declared below, once every part it releases exists; the release phase reads it at shutdown.
  const release = new ResourceGraph();
  const coordinator = planShutdown({ shutdown: sd, parts, release, logger, metrics });

  // The triggers: a file, signals (with the hold), HTTP.
  const triggerFile =
    sd.triggerDir === undefined
      ? undefined
      : new TriggerFile(sd.triggerDir, () => void coordinator.start('file'), logger.child({ component: 'trigger' }));
  const signals = new SignalHold({
    holdUntilSignal: sd.holdUntilSignal,
    toCoordinator: (sig) => void coordinator.onSignal(sig),
  });
  const statusSources = { backendAddress: `${config.backend.host}:${config.backend.port}`, coordinator, health, watcher, registry };
  const armInjectedFault = injectedFault(log);
  const admin = new AdminServer({
    ...config.admin,
    token: config.adminToken,
    logger,
    hooks: {
      ready: () => {
        armInjectedFault();
        return readiness(statusSources);
      },
      status: () => statusBody(statusSources),
      metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      startDrain: (source) => void coordinator.start(source),
      waitDrained: () => coordinator.whenDrained(),
    },
  });

  // The release graph: what stops in which order once the clients and replicas are done.
  // When release's budget ends (the overall deadline may cut it): the linger leaves room before it.
  let releaseEndsAt = Number.POSITIVE_INFINITY;
  coordinator.on('state', (to: string) => {
    if (to === 'release') releaseEndsAt = Math.min(Date.now() + sd.releaseTimeoutMs, coordinator.startedAt + sd.deadlineMs);
  });
  const pushgatewayUrl = sd.pushgatewayUrl;
  declareReleaseGraph(release, {
    pollers: {
      close: async () => {
        health.close();
        triggerFile?.close();
        await watcher.close();
      },
      destroy: () => {
        health.close();
        triggerFile?.close();
        watcher.destroy();
      },
    },
    pool,
    control,
    frontLinks: frontPorts,
    openGate: () => {
      metrics.exitCode.set(coordinator.expectedExitCode()); // for the linger's scrapes and the push
      coordinator.markDrained();
      triggerFile?.markDrained(`${JSON.stringify({ drainedAt: new Date().toISOString(), phases: coordinator.records })}\n`);
    },
    admin,
    hold: signals,
    metricsLingerMs: sd.metricsLingerMs,
    releaseEndsAt: () => releaseEndsAt,
    push:
      pushgatewayUrl === undefined
        ? undefined
        : async () => {
            await pushFinalMetrics({ url: pushgatewayUrl, registry: metrics.registry, instance: os.hostname(), log });
          },
    logger,
  });

  // Start-up: listeners first (a port in use is a start-up error, undone here), then the backend checks.
  let listenAddr: { host: string; port: number };
  let adminAddr: { host: string; port: number };
  // Before the first client: may accepted sockets read into reused buffers (read-buffer.ts)?
  const clientReadReuse = await probeAcceptedReuse();
  log.debug(
    { clientReadReuse },
    clientReadReuse ? 'client sockets read into reused buffers' : 'client sockets read with data events (this Node does not allow reuse)',
  );
  try {
    adminAddr = await admin.listen().then((a) => ({ host: a.address, port: a.port }));
    listenAddr = await listener.listen();
    await frontPorts?.listen();
  } catch (err) {
    admin.destroy();
    frontPorts?.destroy();
    await listener.close();
    pool.destroy();
    control.destroy('start-up failed');
    throw err;
  }
  await health.start();
  watcher.start();
  triggerFile?.start();

  let removeFaultHandlers = (): void => {};
  if (opts.handleSignals !== false) {
    signals.install();
    removeFaultHandlers = installFaultHandlers(coordinator, log);
  }
  log.info(
    {
      listen: `${listenAddr.host}:${listenAddr.port}`,
      admin: `${adminAddr.host}:${adminAddr.port}`,
      backend: statusSources.backendAddress,
      backendUp: health.isUp,
      config: opts.configPath ?? null,
      // The pushgateway URL may carry credentials (user:password@host).
      shutdown: {
        ...sd,
        pushgatewayUrl: sd.pushgatewayUrl === undefined ? null : maskUrlPassword(sd.pushgatewayUrl),
        interceptBudgetMs: interceptBudgetMs(sd),
      },
    },
    'pika-sidecar started',
  );
  opts.onReady?.({ listen: listenAddr, admin: adminAddr, coordinator, registry, metrics });

  // The process lives until a shutdown has run to its end.
  const report: ShutdownReport = await coordinator.finished;
  if (signals.adminHeld) {
    // The report was the last log line; nothing more is logged while holding or after.
    await signals.untilSignal();
    await admin.close(200);
  }
  signals.uninstall();
  removeFaultHandlers();
  return report.exitCode;
}
