/**
 * Composition root: builds the components from a validated config, wires the triggers (signals,
 * HTTP, gate, trigger file) to the shutdown coordinator, and resolves with the exit code once the
 * shutdown's `release` is done. It never calls process.exit: the entry points do (src/cli.ts, and
 * the demo's own in src/demo/).
 */
import { Registry } from 'prom-client';
import os from 'node:os';
import type { SidecarConfig } from './config/schema.js';
import { interceptBudgetMs } from './config/schema.js';
import { maskUrlPassword } from './observability/redact.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { CommandTable } from './resp/command-table.js';
import { BackendPool } from './backend/backend-pool.js';
import { ControlConnection } from './backend/control-connection.js';
import { BackendHealth } from './backend/backend-health.js';
import { SessionRegistry } from './proxy/session-registry.js';
import { ClientListener } from './proxy/listener.js';
import { clientLimit, openFileCount, openFileLimit } from './proxy/client-limit.js';
import { ProtectedModeGate, isLoopbackHost, probeBackendAuth, protectedModeMessage, type BackendAuth } from './backend/protected-mode.js';
import { SidecarError } from './errors.js';
import { AdminServer } from './admin/admin-server.js';
import { readiness, statusBody, type StatusSources } from './admin/status.js';
import { pushFinalMetrics } from './observability/pushgateway.js';
import { ReplicationWatcher } from './replication/watcher.js';
import { FrontPorts } from './replication/front-ports.js';
import { ShutdownCoordinator, type ShutdownReport } from './shutdown/coordinator.js';
import { ResourceGraph } from './shutdown/resource-graph.js';
import { TriggerFile } from './shutdown/trigger-file.js';
import { declareReleaseGraph } from './shutdown/release-graph.js';
import { SignalHold } from './shutdown/signals.js';
import { interceptPhase } from './shutdown/phases/intercept.js';
import { drainPhase } from './shutdown/phases/drain.js';
import { closeClientsPhase } from './shutdown/phases/close-clients.js';
import { replicationSyncPhase, type ConvergenceOutcome } from './shutdown/phases/replication-sync.js';
import { releasePhase } from './shutdown/phases/release.js';
import { probeAcceptedReuse } from './backend/read-buffer.js';

/** Test-only: `uncaught_exception` or `unhandled_rejection` (see armInjectedFault). */
export const INJECT_FAULT_ENV = 'PIKA_SIDECAR_TEST_INJECT_FAULT';

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
  const backendAddress = `${config.backend.host}:${config.backend.port}`;

  // Protected mode (src/backend/protected-mode.ts): asked before anything listens or connects.
  const guarded = config.protectedMode && !isLoopbackHost(config.listen.host);
  let backendAuth: BackendAuth = 'unknown';
  if (guarded) {
    const probe = await probeBackendAuth(config.backend, config.connectTimeoutMs);
    if (probe.auth === 'not_required') throw new SidecarError('ERR_STARTUP', protectedModeMessage(config.listen, config.backend));
    backendAuth = probe.auth;
    if (probe.auth === 'unknown') {
      log.warn({ detail: probe.detail }, 'protected mode: cannot tell yet whether the backend asks for a password; non-loopback clients wait for the answer');
    }
  }
  if (!isLoopbackHost(config.admin.host) && config.adminToken === undefined) {
    log.warn(
      { admin: `${config.admin.host}:${config.admin.port}` },
      'the admin server listens beyond loopback with no adminToken: /metrics and /status are open to anyone who reaches it (/drain and the gate stay loopback-only); set adminToken or listen on loopback',
    );
  }
  // Each client costs two descriptors; keep the limit where accept() cannot fail with EMFILE.
  const limit = clientLimit(config.maxClients, { openFileLimit: openFileLimit(), inUse: openFileCount(), poolSize: config.poolSize });
  if (limit.lowered) log.warn({ ...limit.lowered, maxClients: limit.limit }, `maxClients lowered to ${limit.limit} to fit the open-file limit ${limit.lowered.openFileLimit}`);

  const table = new CommandTable(config.deniedCommands);
  const pool = new BackendPool({ ...config.backend, size: config.poolSize, connectTimeoutMs: config.connectTimeoutMs, logger, metrics });
  const control = new ControlConnection({
    ...config.backend,
    password: config.backendPassword,
    user: config.backendUser,
    connectTimeoutMs: config.connectTimeoutMs,
    commandTimeoutMs: config.commandTimeoutMs,
    logger,
    metrics,
    name: 'control',
  });
  const health = new BackendHealth(control, { intervalMs: config.healthIntervalMs, logger, metrics });
  const registry = new SessionRegistry({
    table,
    limits: { maxBulkBytes: config.maxBulkBytes, maxInlineBytes: config.maxInlineBytes },
    metrics,
    logger,
  });
  const gate = guarded
    ? new ProtectedModeGate({ listen: config.listen, backend: config.backend, timeoutMs: config.connectTimeoutMs, logger: log, initial: backendAuth })
    : undefined;
  const listener = new ClientListener({
    ...config.listen,
    pool,
    registry,
    logger,
    metrics,
    maxClients: limit.limit,
    admit: gate === undefined ? undefined : (c) => gate.admit(c),
  });
  // replication.frontPikaPorts: Pika's +2000/+10001 forwarded too, so replicas can point at the sidecar.
  const frontPorts = config.replication.frontPikaPorts
    ? new FrontPorts({ listen: config.listen, backend: config.backend, connectTimeoutMs: config.connectTimeoutMs, logger, metrics })
    : undefined;
  const watcher = new ReplicationWatcher({
    control,
    connect: (host, port) =>
      new ControlConnection({
        host,
        port,
        password: config.backendPassword,
        user: config.backendUser,
        connectTimeoutMs: config.connectTimeoutMs,
        commandTimeoutMs: config.commandTimeoutMs,
        logger,
        name: `replica ${host}:${port}`,
      }),
    config: config.replication,
    backendKind: config.backendKind,
    logger,
    metrics,
  });
  metrics.setSources({
    inflightCommands: () => registry.inflight(),
    sessionsByMode: () => registry.byMode(),
    poolStats: () => pool.stats(),
  });

  const sd = config.shutdown;
  let convergence: ConvergenceOutcome | undefined;
  // Filled below, once every part it releases exists; the release phase reads it at shutdown.
  const release = new ResourceGraph();

  const coordinator = new ShutdownCoordinator({
    logger,
    metrics,
    deadlineMs: sd.deadlineMs,
    openState: () => ({
      sessions: registry.byMode(),
      inflight: registry.inflight(),
      replicasBehind: watcher.snapshot().replicas.filter((r) => r.state !== 'online' || (r.lagBytes !== null && r.lagBytes !== '0')).map((r) => r.address),
    }),
    reportExtras: () => ({
      sessionsClosed: { ...registry.closedByReason },
      commandsAbandoned: registry.abandonedTotal,
      replication: convergence
        ? { outcome: convergence.outcome, reason: convergence.reason, target: convergence.target, targetMoved: convergence.targetMoved, replicas: convergence.replicas }
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
      releasePhase({ budgetMs: sd.releaseTimeoutMs, graph: release }),
    ],
  });
  const triggerFile =
    sd.triggerDir === undefined ? undefined : new TriggerFile(sd.triggerDir, () => void coordinator.start('file'), logger.child({ component: 'trigger' }));
  const signals = new SignalHold({
    holdUntilSignal: sd.holdUntilSignal,
    toCoordinator: (sig) => void coordinator.onSignal(sig),
  });

  const statusSources: StatusSources = { backendAddress, coordinator, health, watcher, registry };
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

  // Test hook, off unless PIKA_SIDECAR_TEST_INJECT_FAULT is set: after the first /readyz answer,
  // throw an uncaught exception or leave a rejected promise unhandled, to test onFault end to end.
  const injected = process.env[INJECT_FAULT_ENV];
  let faultArmed = false;
  function armInjectedFault(): void {
    if (faultArmed || (injected !== 'uncaught_exception' && injected !== 'unhandled_rejection')) return;
    faultArmed = true;
    log.warn({ fault: injected }, `${INJECT_FAULT_ENV} is set: injecting a fault (tests only)`);
    setTimeout(() => {
      if (injected === 'uncaught_exception') throw new Error('injected uncaught exception');
      void Promise.reject(new Error('injected unhandled rejection'));
    }, 100);
  }

  // Start-up: listeners first (a port in use is a start-up error), then the backend checks.
  let listenAddr: { host: string; port: number };
  let adminAddr: { host: string; port: number };
  // Before the first client: may accepted sockets read into reused buffers (read-buffer.ts)?
  const clientReadReuse = await probeAcceptedReuse();
  log.debug({ clientReadReuse }, clientReadReuse ? 'client sockets read into reused buffers' : 'client sockets read with data events (this Node does not allow reuse)');
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

  const onFault = (kind: 'uncaught_exception' | 'unhandled_rejection', err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    log.error({ err: err instanceof Error ? { message, stack: err.stack } : message, kind }, `${kind.replace('_', ' ')}; starting the orderly shutdown (exit code 2)`);
    void coordinator.onFault(kind, message);
  };
  const onUncaught = (err: unknown) => onFault('uncaught_exception', err);
  const onUnhandled = (err: unknown) => onFault('unhandled_rejection', err);
  if (opts.handleSignals !== false) {
    signals.install();
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
  }
  log.info(
    {
      listen: `${listenAddr.host}:${listenAddr.port}`,
      admin: `${adminAddr.host}:${adminAddr.port}`,
      backend: backendAddress,
      backendUp: health.isUp,
      config: opts.configPath ?? null,
      // The pushgateway URL may carry credentials (user:password@host).
      shutdown: { ...sd, pushgatewayUrl: sd.pushgatewayUrl === undefined ? null : maskUrlPassword(sd.pushgatewayUrl), interceptBudgetMs: interceptBudgetMs(sd) },
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
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUnhandled);
  return report.exitCode;
}
