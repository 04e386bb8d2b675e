/**
 * Every metric the sidecar exports, declared in this one file. One registry is passed in (no global
 * registry), every name carries the `pika_sidecar_` prefix, label values come from ./names.ts.
 *
 * Hot-path counts are plain numbers in `HotCounters` (incremented without a call into prom-client)
 * and folded into the counters at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  BACKEND_ROLES,
  CLOSE_REASONS,
  REFUSAL_REASONS,
  PHASES,
  PHASE_OUTCOMES,
  REPLICA_STATES,
  SESSION_MODES,
  SHUTDOWN_STATES,
} from './names.js';
import { FRONT_DIRECTIONS, FRONT_REFUSE_REASONS } from './names.js';
import { FRONT_PORT_ROLES } from '../replication/pika-ports.js';

export const METRIC_PREFIX = 'pika_sidecar_';

/** Default Node.js metrics dropped for breaking the naming rules (`_total` on a gauge). */
const NON_COUNTER_TOTALS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Incremented on the data path; read at scrape time. */
export interface HotCounters {
  commands: number;
  protocolErrors: number;
  deniedCommands: number;
}

/** Values the metrics read at scrape time (set by main.ts once the components exist). */
export interface MetricSources {
  inflightCommands(): number;
  sessionsByMode(): Record<string, number>;
  poolStats(): { warm: number; pending: number };
}

export function createMetrics(registry: Registry, opts: { defaultMetrics?: boolean } = {}) {
  const p = METRIC_PREFIX;
  const hot: HotCounters = { commands: 0, protocolErrors: 0, deniedCommands: 0 };
  let sources: MetricSources | undefined;
  const folded = { commands: 0, protocolErrors: 0, deniedCommands: 0 };
  const fold = (c: Counter, key: keyof HotCounters) => {
    const delta = hot[key] - folded[key];
    if (delta > 0) c.inc(delta);
    folded[key] = hot[key];
  };
  const registers = [registry];

  const commandsTotal: Counter = new Counter({
    name: `${p}commands_total`,
    help: 'Commands forwarded to the backend.',
    registers,
    collect() {
      fold(commandsTotal, 'commands');
    },
  });
  const protocolErrorsTotal: Counter = new Counter({
    name: `${p}protocol_errors_total`,
    help: 'Client connections closed for malformed RESP.',
    registers,
    collect() {
      fold(protocolErrorsTotal, 'protocolErrors');
    },
  });
  const deniedCommandsTotal: Counter = new Counter({
    name: `${p}denied_commands_total`,
    help: 'Commands refused by the sidecar (denied list, or replication commands during shutdown).',
    registers,
    collect() {
      fold(deniedCommandsTotal, 'deniedCommands');
    },
  });
  const inflightCommands = new Gauge({
    name: `${p}inflight_commands`,
    help: 'Commands forwarded to the backend whose reply has not yet been delivered to the client.',
    registers,
    collect() {
      this.set(sources ? sources.inflightCommands() : 0);
    },
  });
  const clientConnections = new Gauge({
    name: `${p}client_connections`,
    help: 'Open client sessions by mode.',
    labelNames: ['mode'],
    registers,
    collect() {
      const counts = sources ? sources.sessionsByMode() : {};
      for (const mode of SESSION_MODES) this.set({ mode }, counts[mode] ?? 0);
    },
  });
  const clientConnectionsTotal = new Counter({
    name: `${p}client_connections_accepted_total`,
    help: 'Client connections accepted.',
    registers,
  });
  const clientConnectionsClosedTotal = new Counter({
    name: `${p}client_connections_closed_total`,
    help: 'Client connections closed, by reason.',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of CLOSE_REASONS) clientConnectionsClosedTotal.inc({ reason }, 0);
  const clientConnectionsRefusedTotal = new Counter({
    name: `${p}client_connections_refused_total`,
    help: 'New client connections refused before becoming a session, by reason.',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of REFUSAL_REASONS) clientConnectionsRefusedTotal.inc({ reason }, 0);
  const backendUp = new Gauge({
    name: `${p}backend_up`,
    help: '1 when the control connection answers PING, else 0.',
    registers,
  });
  const backendConnectFailuresTotal = new Counter({
    name: `${p}backend_connect_failures_total`,
    help: 'Failed connection attempts to the backend (pool and control connection).',
    registers,
  });
  const poolConnections = new Gauge({
    name: `${p}backend_pool_connections`,
    help: 'Backend pool: warm connections ready to lend (state=warm), sessions waiting for one (state=waiting).',
    labelNames: ['state'],
    registers,
    collect() {
      const s = sources?.poolStats() ?? { warm: 0, pending: 0 };
      this.set({ state: 'warm' }, s.warm);
      this.set({ state: 'waiting' }, s.pending);
    },
  });
  const commandsAbandonedTotal = new Counter({
    name: `${p}commands_abandoned_total`,
    help: 'Forwarded commands whose reply could not be delivered because a deadline forced the close.',
    registers,
  });

  // Replication watcher.
  const replicas = new Gauge({
    name: `${p}replicas`,
    help: 'Replicas of the backend by state.',
    labelNames: ['state'],
    registers,
  });
  for (const state of REPLICA_STATES) replicas.set({ state }, 0);
  const replicaLagBytes = new Gauge({
    name: `${p}replica_lag_bytes`,
    help: 'How far each replica is behind the master, in bytes (Redis offsets; Pika binlog offsets within the same file).',
    labelNames: ['replica'],
    registers,
  });
  const replicationConverged = new Gauge({
    name: `${p}replication_converged`,
    help: '1 when every replica has reached the master position, 0 otherwise.',
    registers,
  });
  const backendRole = new Gauge({
    name: `${p}backend_role`,
    help: 'Role of the backend (1 for the current role).',
    labelNames: ['role'],
    registers,
  });
  for (const role of BACKEND_ROLES) backendRole.set({ role }, role === 'unknown' ? 1 : 0);

  // Fronted Pika replication ports (replication.frontPikaPorts): raw links, never client sessions.
  const replicationFrontLinks = new Gauge({
    name: `${p}replication_front_links`,
    help: 'Replication links open through the fronted Pika ports, by port (binlog = +2000, rsync = +10001).',
    labelNames: ['port'],
    registers,
  });
  const replicationFrontBytesTotal = new Counter({
    name: `${p}replication_front_bytes_total`,
    help: 'Bytes forwarded through the fronted Pika ports, by port and direction (to_backend, to_replica).',
    labelNames: ['port', 'direction'],
    registers,
  });
  const replicationFrontRefusedTotal = new Counter({
    name: `${p}replication_front_refused_total`,
    help: 'Connections to the fronted Pika ports closed at accept, by port and reason (shutting_down, backend_unreachable).',
    labelNames: ['port', 'reason'],
    registers,
  });
  for (const port of FRONT_PORT_ROLES) {
    replicationFrontLinks.set({ port }, 0);
    for (const direction of FRONT_DIRECTIONS) replicationFrontBytesTotal.inc({ port, direction }, 0);
    for (const reason of FRONT_REFUSE_REASONS) replicationFrontRefusedTotal.inc({ port, reason }, 0);
  }

  // Shutdown.
  const shutdownPhase = new Gauge({
    name: `${p}shutdown_phase`,
    help: 'Shutdown state: 1 for the current one (running, a phase, drained, exited), 0 for the others.',
    labelNames: ['phase'],
    registers,
  });
  for (const phase of SHUTDOWN_STATES) shutdownPhase.set({ phase }, phase === 'running' ? 1 : 0);
  const shutdownPhaseDurationSeconds = new Gauge({
    name: `${p}shutdown_phase_duration_seconds`,
    help: 'How long each shutdown phase took.',
    labelNames: ['phase'],
    registers,
  });
  const shutdownPhaseOutcomesTotal = new Counter({
    name: `${p}shutdown_phase_outcomes_total`,
    help: 'Shutdown phase outcomes.',
    labelNames: ['phase', 'outcome'],
    registers,
  });
  for (const phase of PHASES) for (const outcome of PHASE_OUTCOMES) shutdownPhaseOutcomesTotal.inc({ phase, outcome }, 0);
  const shutdownStartedTimestampSeconds = new Gauge({
    name: `${p}shutdown_started_timestamp_seconds`,
    help: 'Unix time the shutdown started (0 while running).',
    registers,
  });
  shutdownStartedTimestampSeconds.set(0);
  const exitCode = new Gauge({
    name: `${p}exit_code`,
    help: 'Exit code the shutdown ends with (0, 2 or 3; see docs/reference.md), set when release opens the stop gate; -1 until then.',
    registers,
  });
  exitCode.set(-1);
  const controlCommandSeconds = new Histogram({
    name: `${p}control_command_duration_seconds`,
    help: 'Round trip of control-connection commands (PING, INFO, CLIENT ...).',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2],
    registers,
  });

  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: p });
    // prom-client's totals of active handles/requests/resources are gauges named like counters
    // (promtool rejects them); the per-type gauges without the suffix stay.
    for (const name of NON_COUNTER_TOTALS) registry.removeSingleMetric(`${p}${name}`);
  }

  return {
    registry,
    hot,
    setSources(s: MetricSources) {
      sources = s;
    },
    commandsTotal,
    inflightCommands,
    clientConnections,
    clientConnectionsTotal,
    clientConnectionsClosedTotal,
    clientConnectionsRefusedTotal,
    backendUp,
    backendConnectFailuresTotal,
    poolConnections,
    commandsAbandonedTotal,
    replicas,
    replicaLagBytes,
    replicationConverged,
    backendRole,
    shutdownPhase,
    shutdownPhaseDurationSeconds,
    shutdownPhaseOutcomesTotal,
    shutdownStartedTimestampSeconds,
    exitCode,
    controlCommandSeconds,
    replicationFrontLinks,
    replicationFrontBytesTotal,
    replicationFrontRefusedTotal,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
