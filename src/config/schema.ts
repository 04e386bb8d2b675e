/**
 * The sidecar's configuration: one typed object, built by src/config/load.ts from
 * flags > PIKA_SIDECAR_* environment > YAML file > defaults. Durations are milliseconds. The
 * defaults, names and parsers of every field are declared once, in src/config/keys.ts.
 */
export type BackendKind = 'auto' | 'redis' | 'pika';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface HostPort {
  host: string;
  port: number;
}

export interface ShutdownConfig {
  /** intercept: keep serving this long after readiness turns 503 (endpoint removal propagates). */
  announceDelayMs: number;
  drainTimeoutMs: number;
  closeTimeoutMs: number;
  replicationTimeoutMs: number;
  releaseTimeoutMs: number;
  /** The whole shutdown; must hold the sum of the phase budgets. */
  deadlineMs: number;
  /** release: keep the admin server up this long so the final state can be scraped. */
  metricsLingerMs: number;
  /** close_clients: spread straggler closes over this window (0 = all at once). */
  closeSpreadMs: number;
  /**
   * After a shutdown that no signal started (HTTP, gate, trigger file): stay up after `release`,
   * admin server included, until SIGTERM/SIGINT, then exit with the shutdown's code. For native
   * sidecars: the kubelet restarts a restartPolicy-Always init container that exits before the
   * main containers have, and signals it only after they exited.
   */
  holdUntilSignal: boolean;
  /** Directory for the trigger file (`drain`) and the marker file (`drained`); undefined = off. */
  triggerDir: string | undefined;
  /** Optional Prometheus Pushgateway URL for a final push of the shutdown metrics. */
  pushgatewayUrl: string | undefined;
}

export interface ReplicationConfig {
  /** INFO polling interval in normal service. */
  pollIntervalMs: number;
  /** During replication_sync: backoff from min to max, with jitter. */
  shutdownPollMinMs: number;
  shutdownPollMaxMs: number;
  /** Wait this long after convergence and check again before declaring it. */
  settleMs: number;
  /** Redis >= 6.2: CLIENT PAUSE <ms> WRITE during the convergence wait. */
  pauseWrites: boolean;
  /** Announced replica address ("ip:port") -> address to dial instead ("host:port"). */
  addressOverrides: Record<string, string>;
  /**
   * Pika: the sidecar also listens on listen port +2000 and +10001 and forwards raw bytes to the
   * backend's +2000 and +10001, so replicas can be pointed at the sidecar (design §5, fronted layout).
   */
  frontPikaPorts: boolean;
}

export interface SidecarConfig {
  listen: HostPort;
  backend: HostPort;
  admin: HostPort;
  backendKind: BackendKind;
  /** Used only by the control connection (INFO, CLIENT ...), never by client sessions. Secret. */
  backendPassword: string | undefined;
  backendUser: string | undefined;
  /** Bearer token accepted by mutating admin endpoints from non-loopback callers. Secret. */
  adminToken: string | undefined;
  poolSize: number;
  /** Client sessions at most; later clients get Redis' `-ERR max number of clients reached`. */
  maxClients: number;
  /**
   * Refuse to start when clients may come from beyond loopback (a non-loopback `listen`) while the
   * backend accepts unauthenticated connections: every peer would be a trusted local caller.
   */
  protectedMode: boolean;
  connectTimeoutMs: number;
  /** Control connection: PING interval and command timeout. */
  healthIntervalMs: number;
  commandTimeoutMs: number;
  /** Largest bulk string a client may send (Redis proto-max-bulk-len). */
  maxBulkBytes: number;
  /** Largest inline command line. */
  maxInlineBytes: number;
  /** Command names refused with -ERR (lowercase). */
  deniedCommands: string[];
  logLevel: LogLevel;
  replication: ReplicationConfig;
  shutdown: ShutdownConfig;
}

/** intercept's budget: the announce delay plus a second to close the listener. */
export function interceptBudgetMs(s: ShutdownConfig): number {
  return s.announceDelayMs + 1000;
}
