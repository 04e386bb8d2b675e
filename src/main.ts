/**
 * Composition root: builds the components from a validated config, wires the triggers (signals,
 * HTTP, gate, trigger file) to the shutdown coordinator, and resolves with the exit code once the
 * shutdown's `release` is done. Only src/cli.ts calls process.exit.
 */
import { Pushgateway, Registry } from 'prom-client';
import os from 'node:os';
import type { SidecarConfig } from './config/schema.js';
import { interceptBudgetMs } from './config/schema.js';
import { maskUrlPassword } from './config/parsers.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { CommandTable } from './resp/command-table.js';
import { BackendPool } from './backend/backend-pool.js';
import { ControlConnection } from './backend/control-connection.js';
import { BackendHealth } from './backend/backend-health.js';
import { SessionRegistry } from './proxy/session-registry.js';
import { ClientListener } from './proxy/listener.js';
import { AdminServer } from './admin/admin-server.js';
import { ReplicationWatcher } from './replication/watcher.js';
import { ShutdownCoordinator, type ShutdownReport } from './shutdown/coordinator.js';
import { ResourceGraph } from './shutdown/resource-graph.js';
import { TriggerFile } from './shutdown/trigger-file.js';
import { delay } from './shutdown/phase-runner.js';
import { interceptPhase } from './shutdown/phases/intercept.js';
import { drainPhase } from './shutdown/phases/drain.js';
import { closeClientsPhase } from './shutdown/phases/close-clients.js';
import { replicationSyncPhase, type ConvergenceOutcome } from './shutdown/phases/replication-sync.js';
import { releasePhase } from './shutdown/phases/release.js';

export interface RunOptions {
  /** Config file path, for the start-up log line only. */
  configPath?: string | undefined;
  /** Tests and the demo: a logger of their own (defaults to JSON on stdout). */
  logger?: Logger | undefined;
  /** Install SIGTERM/SIGINT handlers (default true). */
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
  const listener = new ClientListener({ ...config.listen, pool, registry, logger });
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
  // holdUntilSignal: a shutdown no signal started keeps the process (and its probes) up until one comes.
  let signalled = false;
  let onHeldSignal: (() => void) | undefined;
  let adminHeld = false;
  const holding = () => sd.holdUntilSignal && !signalled;
  let triggerFile: TriggerFile | undefined;

  const coordinator: ShutdownCoordinator = new ShutdownCoordinator({
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
      releasePhase({ budgetMs: sd.releaseTimeoutMs, graph: resources }),
    ],
  });

  // What `release` lets go of, in dependency order: nothing that talks to the backend may outlive
  // the gate, and the admin server outlives the gate so the final state can be scraped.
  const resources = new ResourceGraph()
    .add({
      name: 'pollers',
      after: [],
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
    })
    .add({ name: 'pool', after: ['pollers'], close: () => pool.close(), destroy: () => pool.destroy() })
    .add({ name: 'control', after: ['pool'], close: () => control.close(), destroy: () => control.destroy('release') })
    .add({
      name: 'stop_gate',
      after: ['control'],
      close: () => {
        coordinator.markDrained();
        triggerFile?.markDrained(`${JSON.stringify({ drainedAt: new Date().toISOString(), phases: coordinator.records })}\n`);
        log.info('stop gate open: the backend may stop now');
      },
      destroy: () => coordinator.markDrained(),
    })
    .add({
      name: 'admin',
      after: ['stop_gate'],
      close: async (signal) => {
        if (holding()) {
          adminHeld = true;
          log.info('holding until SIGTERM: the admin server stays up for the probes (holdUntilSignal)');
          return;
        }
        await delay(sd.metricsLingerMs, signal); // returns at once when forced
        await admin.close(200);
      },
      destroy: () => admin.destroy(),
    })
    .add({
      // A scrape may miss a shutdown that lasts seconds: push the final state once, if configured.
      name: 'metrics_push',
      after: ['admin'],
      close: async () => {
        if (sd.pushgatewayUrl === undefined) return;
        const gateway = new Pushgateway(sd.pushgatewayUrl, { timeout: 1000 }, metrics.registry);
        await gateway.pushAdd({ jobName: 'pika-sidecar', groupings: { instance: os.hostname() } });
        log.info({ pushgateway: new URL(sd.pushgatewayUrl).host }, 'pushed the final metrics to the pushgateway');
      },
      destroy: () => undefined,
    })
    .add({ name: 'logs', after: ['metrics_push'], close: () => logger.flush(), destroy: () => logger.flush() });
  resources.order(); // a cycle or a typo is a start-up error, not a shutdown surprise

  // Declared after the resource graph that closes it: the graph runs only at shutdown.
  const admin = new AdminServer({
    ...config.admin,
    token: config.adminToken,
    logger,
    hooks: {
      ready: () => {
        if (coordinator.isShuttingDown) return { ready: false, reason: `shutting down (${coordinator.state})` };
        if (!health.isUp) return { ready: false, reason: `backend ${backendAddress} is down: ${health.error ?? 'no answer yet'}` };
        return { ready: true, reason: 'ready' };
      },
      status: () => status(),
      metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      startDrain: (source) => void coordinator.start(source),
      waitDrained: () => coordinator.whenDrained(),
    },
  });

  const status = () => {
    const w = watcher.snapshot();
    return {
      phase: coordinator.state,
      ready: !coordinator.isShuttingDown && health.isUp,
      backend: { address: backendAddress, up: health.isUp, kind: w.kind, role: w.role },
      sessions: { total: registry.size, byMode: registry.byMode() },
      inflight: registry.inflight(),
      replication: w,
      shutdown: coordinator.isShuttingDown
        ? {
            reason: coordinator.shutdownReason ?? '',
            startedAt: new Date(coordinator.startedAt).toISOString(),
            phases: coordinator.records,
            exitCode: coordinator.report?.exitCode ?? null,
          }
        : null,
    };
  };

  // Start-up: listeners first (a port in use is a start-up error), then the backend checks.
  let listenAddr: { host: string; port: number };
  let adminAddr: { host: string; port: number };
  try {
    adminAddr = await admin.listen().then((a) => ({ host: a.address, port: a.port }));
    listenAddr = await listener.listen();
  } catch (err) {
    admin.destroy();
    await listener.close();
    pool.destroy();
    control.destroy('start-up failed');
    throw err;
  }
  await health.start();
  watcher.start();
  if (sd.triggerDir !== undefined) {
    triggerFile = new TriggerFile(sd.triggerDir, () => void coordinator.start('file'), logger.child({ component: 'trigger' }));
    triggerFile.start();
  }

  const onSignal = (sig: NodeJS.Signals) => {
    signalled = true;
    if (onHeldSignal) onHeldSignal();
    else void coordinator.onSignal(sig);
  };
  if (opts.handleSignals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
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
  if (adminHeld) {
    // The report was the last log line; nothing more is logged while holding or after.
    if (holding()) {
      await new Promise<void>((resolve) => {
        onHeldSignal = resolve;
      });
    }
    await admin.close(200);
  }
  if (opts.handleSignals !== false) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  return report.exitCode;
}
