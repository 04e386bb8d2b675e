/**
 * Every configuration key, once: where it lives in the YAML file, its environment variable, its
 * flag, how its value is parsed and one line saying what it is. The loader, the validator, the CLI
 * flags, --help, check-config and the shipped config/pika-sidecar.yaml are all derived from this
 * table, so a key is added or changed here and nowhere else.
 *
 * Naming: the YAML path is the SidecarConfig field without its `Ms` suffix; the environment variable
 * is PIKA_SIDECAR_ + the flag in upper snake case. Two keys may set one field: a secret and the file
 * holding it (`backendPassword` / `backendPasswordFile`); set one of them, not both.
 */
import type { ReplicationConfig, ShutdownConfig, SidecarConfig } from './schema.js';
import {
  addressMap,
  boolean,
  commandList,
  duration,
  hostPort,
  integer,
  oneOf,
  optionalString,
  optionalUrl,
  secretFile,
  size,
  type ValueParser,
} from './parsers.js';

/** A SidecarConfig leaf, dotted: `poolSize`, `shutdown.drainTimeoutMs`. */
export type FieldPath =
  | Exclude<keyof SidecarConfig, 'replication' | 'shutdown'>
  | `replication.${keyof ReplicationConfig}`
  | `shutdown.${keyof ShutdownConfig}`;

export interface ConfigKey<T = unknown> {
  /** Where it lives in the YAML file; also its name in messages and check-config output. */
  readonly path: string;
  /** The SidecarConfig field it sets. */
  readonly field: FieldPath;
  /** PIKA_SIDECAR_* environment variable. */
  readonly env: string;
  /** Flag name without the dashes (kebab case). */
  readonly flag: string;
  readonly parser: ValueParser<T>;
  /** What the key is for, in one line (the allowed values come from the parser). */
  readonly describe: string;
}

/** The two nested mappings of the YAML file. */
export const SECTIONS = ['replication', 'shutdown'] as const;

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

// Identity helper: lets each row's parser type be checked against its own toYaml/parse pair.
const key = <T>(k: ConfigKey<T>): ConfigKey => k as ConfigKey;

export const CONFIG_KEYS: readonly ConfigKey[] = [
  key({
    path: 'listen',
    field: 'listen',
    env: 'PIKA_SIDECAR_LISTEN',
    flag: 'listen',
    parser: hostPort({ emptyHost: '0.0.0.0', allowPortZero: true }),
    describe: 'address clients connect to (the client Service targets this port)',
  }),
  key({
    path: 'backend',
    field: 'backend',
    env: 'PIKA_SIDECAR_BACKEND',
    flag: 'backend',
    parser: hostPort({ emptyHost: '127.0.0.1', allowPortZero: false }),
    describe: 'the Pika or Redis server this sidecar fronts, normally on loopback in the same pod',
  }),
  key({
    path: 'admin',
    field: 'admin',
    env: 'PIKA_SIDECAR_ADMIN',
    flag: 'admin',
    parser: hostPort({ emptyHost: '127.0.0.1', allowPortZero: true }),
    describe: 'admin HTTP server: /metrics, /healthz, /readyz, /status, /drain and the stop gate',
  }),
  key({
    path: 'backendKind',
    field: 'backendKind',
    env: 'PIKA_SIDECAR_BACKEND_KIND',
    flag: 'backend-kind',
    parser: oneOf(['auto', 'redis', 'pika'] as const),
    describe: 'backend flavour; auto reads it from INFO server',
  }),
  key({
    path: 'backendUser',
    field: 'backendUser',
    env: 'PIKA_SIDECAR_BACKEND_USER',
    flag: 'backend-user',
    parser: optionalString(),
    describe: 'ACL user of the control connection (Redis 6+); client sessions authenticate themselves',
  }),
  key({
    path: 'backendPassword',
    field: 'backendPassword',
    env: 'PIKA_SIDECAR_BACKEND_PASSWORD',
    flag: 'backend-password',
    parser: optionalString({ secret: true, brief: 'secret string' }),
    describe: 'secret: password of the control connection; prefer the env variable or backendPasswordFile',
  }),
  key({
    path: 'backendPasswordFile',
    field: 'backendPassword',
    env: 'PIKA_SIDECAR_BACKEND_PASSWORD_FILE',
    flag: 'backend-password-file',
    parser: secretFile(),
    describe: 'file holding backendPassword (a trailing newline is ignored); set this or backendPassword',
  }),
  key({
    path: 'adminToken',
    field: 'adminToken',
    env: 'PIKA_SIDECAR_ADMIN_TOKEN',
    flag: 'admin-token',
    parser: optionalString({ secret: true, brief: 'secret string' }),
    describe: 'secret: bearer token non-loopback callers of mutating admin endpoints must send (unset = loopback only)',
  }),
  key({
    path: 'adminTokenFile',
    field: 'adminToken',
    env: 'PIKA_SIDECAR_ADMIN_TOKEN_FILE',
    flag: 'admin-token-file',
    parser: secretFile(),
    describe: 'file holding adminToken (a trailing newline is ignored); set this or adminToken',
  }),
  key({
    path: 'poolSize',
    field: 'poolSize',
    env: 'PIKA_SIDECAR_POOL_SIZE',
    flag: 'pool-size',
    parser: integer({ min: 0, max: 1024 }),
    describe: 'backend connections opened ahead of new clients (0 = connect when a client arrives)',
  }),
  key({
    path: 'connectTimeout',
    field: 'connectTimeoutMs',
    env: 'PIKA_SIDECAR_CONNECT_TIMEOUT',
    flag: 'connect-timeout',
    parser: duration({ min: 1 }),
    describe: 'backend connect timeout',
  }),
  key({
    path: 'healthInterval',
    field: 'healthIntervalMs',
    env: 'PIKA_SIDECAR_HEALTH_INTERVAL',
    flag: 'health-interval',
    parser: duration({ min: 1 }),
    describe: 'control connection PING interval',
  }),
  key({
    path: 'commandTimeout',
    field: 'commandTimeoutMs',
    env: 'PIKA_SIDECAR_COMMAND_TIMEOUT',
    flag: 'command-timeout',
    parser: duration({ min: 1 }),
    describe: 'control connection command timeout (PING, INFO, CLIENT ...)',
  }),
  key({
    path: 'maxBulkBytes',
    field: 'maxBulkBytes',
    env: 'PIKA_SIDECAR_MAX_BULK_BYTES',
    flag: 'max-bulk-bytes',
    parser: size({ min: 1, max: 4 * GiB }),
    describe: "largest bulk string a client may send (Redis' proto-max-bulk-len)",
  }),
  key({
    path: 'maxInlineBytes',
    field: 'maxInlineBytes',
    env: 'PIKA_SIDECAR_MAX_INLINE_BYTES',
    flag: 'max-inline-bytes',
    parser: size({ min: 1, max: 16 * MiB }),
    describe: 'largest inline command line a client may send',
  }),
  key({
    path: 'deniedCommands',
    field: 'deniedCommands',
    env: 'PIKA_SIDECAR_DENIED_COMMANDS',
    flag: 'denied-commands',
    parser: commandList(),
    describe: 'commands refused with -ERR instead of forwarded (names are lowercased)',
  }),
  key({
    path: 'logLevel',
    field: 'logLevel',
    env: 'PIKA_SIDECAR_LOG_LEVEL',
    flag: 'log-level',
    parser: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    describe: 'log level (per-command detail only at trace)',
  }),
  key({
    path: 'replication.pollInterval',
    field: 'replication.pollIntervalMs',
    env: 'PIKA_SIDECAR_REPLICATION_POLL_INTERVAL',
    flag: 'replication-poll-interval',
    parser: duration({ min: 1 }),
    describe: 'INFO polling interval in normal service (replica lag metrics)',
  }),
  key({
    path: 'replication.shutdownPollMin',
    field: 'replication.shutdownPollMinMs',
    env: 'PIKA_SIDECAR_REPLICATION_SHUTDOWN_POLL_MIN',
    flag: 'replication-shutdown-poll-min',
    parser: duration({ min: 1 }),
    describe: 'replication_sync: first poll interval, backing off with jitter up to shutdownPollMax',
  }),
  key({
    path: 'replication.shutdownPollMax',
    field: 'replication.shutdownPollMaxMs',
    env: 'PIKA_SIDECAR_REPLICATION_SHUTDOWN_POLL_MAX',
    flag: 'replication-shutdown-poll-max',
    parser: duration({ min: 1 }),
    describe: 'replication_sync: longest poll interval (at least shutdownPollMin)',
  }),
  key({
    path: 'replication.settle',
    field: 'replication.settleMs',
    env: 'PIKA_SIDECAR_REPLICATION_SETTLE',
    flag: 'replication-settle',
    parser: duration(),
    describe: 'replication_sync: after convergence, wait this long and check again',
  }),
  key({
    path: 'replication.pauseWrites',
    field: 'replication.pauseWrites',
    env: 'PIKA_SIDECAR_REPLICATION_PAUSE_WRITES',
    flag: 'replication-pause-writes',
    parser: boolean(),
    describe: 'replication_sync: CLIENT PAUSE WRITE on Redis >= 6.2, stopping writes that bypass the sidecar',
  }),
  key({
    path: 'replication.addressOverrides',
    field: 'replication.addressOverrides',
    env: 'PIKA_SIDECAR_REPLICATION_ADDRESS_OVERRIDES',
    flag: 'replication-address-overrides',
    parser: addressMap(),
    describe: 'replica address to dial instead of the announced one, e.g. {"10.0.0.2:9221": "127.0.0.1:19221"}',
  }),
  key({
    path: 'shutdown.announceDelay',
    field: 'shutdown.announceDelayMs',
    env: 'PIKA_SIDECAR_ANNOUNCE_DELAY',
    flag: 'announce-delay',
    parser: duration(),
    describe: 'intercept: keep serving after readiness turns 503 while endpoint removal propagates',
  }),
  key({
    path: 'shutdown.drainTimeout',
    field: 'shutdown.drainTimeoutMs',
    env: 'PIKA_SIDECAR_DRAIN_TIMEOUT',
    flag: 'drain-timeout',
    parser: duration(),
    describe: 'drain phase budget: forwarded commands get their replies, idle sessions close',
  }),
  key({
    path: 'shutdown.closeTimeout',
    field: 'shutdown.closeTimeoutMs',
    env: 'PIKA_SIDECAR_CLOSE_TIMEOUT',
    flag: 'close-timeout',
    parser: duration(),
    describe: 'close_clients phase budget: blocked sessions and stragglers',
  }),
  key({
    path: 'shutdown.replicationTimeout',
    field: 'shutdown.replicationTimeoutMs',
    env: 'PIKA_SIDECAR_REPLICATION_TIMEOUT',
    flag: 'replication-timeout',
    parser: duration(),
    describe: 'replication_sync phase budget: replicas reach the master position',
  }),
  key({
    path: 'shutdown.releaseTimeout',
    field: 'shutdown.releaseTimeoutMs',
    env: 'PIKA_SIDECAR_RELEASE_TIMEOUT',
    flag: 'release-timeout',
    parser: duration(),
    describe: 'release phase budget, metricsLinger included',
  }),
  key({
    path: 'shutdown.deadline',
    field: 'shutdown.deadlineMs',
    env: 'PIKA_SIDECAR_SHUTDOWN_DEADLINE',
    flag: 'shutdown-deadline',
    parser: duration({ min: 1 }),
    describe:
      'whole shutdown; at least announceDelay + 1s + the four phase budgets, below terminationGracePeriodSeconds',
  }),
  key({
    path: 'shutdown.metricsLinger',
    field: 'shutdown.metricsLingerMs',
    env: 'PIKA_SIDECAR_METRICS_LINGER',
    flag: 'metrics-linger',
    parser: duration(),
    describe: 'release: keep the admin server up this long after the stop gate for a last scrape (at most releaseTimeout - 1s)',
  }),
  key({
    path: 'shutdown.closeSpread',
    field: 'shutdown.closeSpreadMs',
    env: 'PIKA_SIDECAR_CLOSE_SPREAD',
    flag: 'close-spread',
    parser: duration(),
    describe: 'close_clients: spread straggler closes over this window, 0 = all at once (at most closeTimeout)',
  }),
  key({
    path: 'shutdown.holdUntilSignal',
    field: 'shutdown.holdUntilSignal',
    env: 'PIKA_SIDECAR_HOLD_UNTIL_SIGNAL',
    flag: 'hold-until-signal',
    parser: boolean(),
    describe:
      'after a shutdown started by HTTP, the gate or the trigger file, stay up (admin server included) until SIGTERM, then exit with its code; for native sidecars, which the kubelet restarts if they exit before the main containers',
  }),
  key({
    path: 'shutdown.triggerDir',
    field: 'shutdown.triggerDir',
    env: 'PIKA_SIDECAR_TRIGGER_DIR',
    flag: 'trigger-dir',
    parser: optionalString({ expected: 'a directory path (null = off)', brief: 'directory, null = off' }),
    describe: 'directory watched for the trigger file `drain`; the marker file `drained` is written there',
  }),
  key({
    path: 'shutdown.pushgatewayUrl',
    field: 'shutdown.pushgatewayUrl',
    env: 'PIKA_SIDECAR_PUSHGATEWAY_URL',
    flag: 'pushgateway-url',
    parser: optionalUrl(),
    describe: 'Prometheus Pushgateway for a final push of the shutdown metrics',
  }),
];

export const KEYS_BY_PATH: ReadonlyMap<string, ConfigKey> = new Map(CONFIG_KEYS.map((k) => [k.path, k]));

/** The keys that set each field, the field's own key (e.g. `backendPassword`) first. */
export const KEYS_BY_FIELD: ReadonlyMap<FieldPath, readonly ConfigKey[]> = (() => {
  const byField = new Map<FieldPath, ConfigKey[]>();
  for (const k of CONFIG_KEYS) byField.set(k.field, [...(byField.get(k.field) ?? []), k]);
  return byField;
})();

/** The key that names a field in messages, sources and check-config output. */
export function primaryKey(field: FieldPath): ConfigKey {
  const k = KEYS_BY_FIELD.get(field)?.[0];
  if (k === undefined) throw new Error(`no configuration key sets ${field}`);
  return k;
}

export function getField(config: SidecarConfig, field: FieldPath): unknown {
  const [head, leaf] = field.split('.') as [string, string | undefined];
  const top = (config as unknown as Record<string, unknown>)[head];
  return leaf === undefined ? top : (top as Record<string, unknown>)[leaf];
}

export function setField(config: SidecarConfig, field: FieldPath, value: unknown): void {
  const [head, leaf] = field.split('.') as [string, string | undefined];
  const root = config as unknown as Record<string, unknown>;
  if (leaf === undefined) root[head] = value;
  else (root[head] as Record<string, unknown>)[leaf] = value;
}
