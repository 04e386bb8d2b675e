/**
 * The data plane and its watchers, built from a validated config: the backend pool and control
 * connection, health, the session registry, the listener (behind the protected-mode gate when it
 * applies), the fronted Pika replication ports, and the replication watcher. Nothing listens or
 * connects yet; main.ts starts them in order.
 */
import type { SidecarConfig } from './config/schema.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { StartupDecisions } from './startup-checks.js';
import { CommandTable } from './resp/command-table.js';
import { BackendPool } from './backend/backend-pool.js';
import { ControlConnection } from './backend/control-connection.js';
import { BackendHealth } from './backend/backend-health.js';
import { ProtectedModeGate } from './backend/protected-mode.js';
import { SessionRegistry } from './proxy/session-registry.js';
import { ClientListener } from './proxy/listener.js';
import { ReplicationWatcher } from './replication/watcher.js';
import { FrontPorts } from './replication/front-ports.js';

export interface Components {
  pool: BackendPool;
  control: ControlConnection;
  health: BackendHealth;
  registry: SessionRegistry;
  listener: ClientListener;
  /** Only with replication.frontPikaPorts: Pika's +2000/+10001 forwarded too. */
  frontPorts: FrontPorts | undefined;
  watcher: ReplicationWatcher;
}

export function buildComponents(config: SidecarConfig, decisions: StartupDecisions, logger: Logger, metrics: Metrics): Components {
  const connectTimeoutMs = config.connectTimeoutMs;
  const pool = new BackendPool({ ...config.backend, size: config.poolSize, connectTimeoutMs, logger, metrics });
  const controlTo = (host: string, port: number, name: string, withMetrics: boolean) =>
    new ControlConnection({
      host,
      port,
      password: config.backendPassword,
      user: config.backendUser,
      connectTimeoutMs,
      commandTimeoutMs: config.commandTimeoutMs,
      logger,
      metrics: withMetrics ? metrics : undefined,
      name,
    });
  const control = controlTo(config.backend.host, config.backend.port, 'control', true);
  const health = new BackendHealth(control, { intervalMs: config.healthIntervalMs, logger, metrics });
  const registry = new SessionRegistry({
    table: new CommandTable(config.deniedCommands),
    limits: { maxBulkBytes: config.maxBulkBytes, maxInlineBytes: config.maxInlineBytes },
    metrics,
    logger,
  });
  const gate = decisions.guarded
    ? new ProtectedModeGate({
        listen: config.listen,
        backend: config.backend,
        timeoutMs: connectTimeoutMs,
        logger: logger.child({ component: 'main' }),
        initial: decisions.backendAuth,
      })
    : undefined;
  const listener = new ClientListener({
    ...config.listen,
    pool,
    registry,
    logger,
    metrics,
    maxClients: decisions.maxClients,
    admit: gate === undefined ? undefined : (c) => gate.admit(c),
  });
  const frontPorts = config.replication.frontPikaPorts
    ? new FrontPorts({ listen: config.listen, backend: config.backend, connectTimeoutMs, logger, metrics })
    : undefined;
  const watcher = new ReplicationWatcher({
    control,
    connect: (host, port) => controlTo(host, port, `replica ${host}:${port}`, false),
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
  return { pool, control, health, registry, listener, frontPorts, watcher };
}
