/**
 * Every configuration key, once: the SidecarConfig field it sets, how its value is parsed, its
 * default and one line saying what it is. Everything else is derived from the row: the YAML path,
 * the flag, the environment variable, DEFAULT_CONFIG, the loader, the validator, --help,
 * check-config, the shipped config/pika-sidecar.yaml and docs/reference.md. A key is added or
 * changed here and nowhere else.
 *
 * Naming, one scheme: the YAML path is the field without its `Ms` suffix (`shutdown.drainTimeout`);
 * the flag is the path in kebab case with the section as a prefix (`--shutdown-drain-timeout`); the
 * environment variable is PIKA_SIDECAR_ + the flag in upper snake case
 * (`PIKA_SIDECAR_SHUTDOWN_DRAIN_TIMEOUT`). Flags that predate the scheme stay accepted as aliases,
 * with their environment variables (`--drain-timeout`, `PIKA_SIDECAR_DRAIN_TIMEOUT`).
 * Two keys may set one field: a secret and the file holding it (`backendPassword` /
 * `backendPasswordFile`); set one of them, not both. The file key has a path of its own and no default.
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
  Exclude<keyof SidecarConfig, 'replication' | 'shutdown'> | `replication.${keyof ReplicationConfig}` | `shutdown.${keyof ShutdownConfig}`;

/** The type of the value at a field: `FieldType<'shutdown.drainTimeoutMs'>` is number. */
export type FieldType<F extends FieldPath> = F extends `replication.${infer L extends keyof ReplicationConfig}`
  ? ReplicationConfig[L]
  : F extends `shutdown.${infer L extends keyof ShutdownConfig}`
    ? ShutdownConfig[L]
    : F extends keyof SidecarConfig
      ? SidecarConfig[F]
      : never;

/** One row as written below: the field's own key has a default; a file key names its own path. */
type KeyRow<F extends FieldPath> = {
  readonly field: F;
  readonly parser: ValueParser<FieldType<F>>;
  readonly describe: string;
  /** Flag names from before the naming scheme, still accepted (and their environment variables). */
  readonly aliases?: readonly string[];
} & ({ readonly default: FieldType<F>; readonly path?: never } | { readonly path: string; readonly default?: never });

export interface ConfigKey<T = unknown> {
  /** Where it lives in the YAML file; also its name in messages and check-config output. */
  readonly path: string;
  /** The SidecarConfig field it sets. */
  readonly field: FieldPath;
  /** PIKA_SIDECAR_* environment variable. */
  readonly env: string;
  /** Flag name without the dashes (kebab case). */
  readonly flag: string;
  /** Older flag names, accepted too (without the dashes). */
  readonly flagAliases: readonly string[];
  /** The environment variables of the older flag names. */
  readonly envAliases: readonly string[];
  readonly parser: ValueParser<T>;
  /** What the key is for, in one line (the allowed values come from the parser). */
  readonly describe: string;
  /** The field's own key carries its default; a file key (backendPasswordFile) has none. */
  readonly hasDefault: boolean;
  readonly default: T | undefined;
}

/** The two nested mappings of the YAML file. */
export const SECTIONS = ['replication', 'shutdown'] as const;

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const kebab = (path: string): string => path.replace('.', '-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envOf = (flag: string): string => `PIKA_SIDECAR_${flag.toUpperCase().replaceAll('-', '_')}`;

/** A row → its key, names derived; the parser and the default are checked against the field's type. */
function key<F extends FieldPath>(row: KeyRow<F>): ConfigKey & { readonly field: F } {
  const path = row.path ?? row.field.replace(/Ms$/, '');
  const flag = kebab(path);
  const flagAliases = row.aliases ?? [];
  return {
    path,
    field: row.field,
    flag,
    env: envOf(flag),
    flagAliases,
    envAliases: flagAliases.map(envOf),
    parser: row.parser as ValueParser<unknown>,
    describe: row.describe,
    hasDefault: row.path === undefined,
    default: row.default,
  };
}

const ROWS = [
  key({
    field: 'listen',
    parser: hostPort({ emptyHost: '0.0.0.0', allowPortZero: true }),
    default: { host: '127.0.0.1', port: 6380 },
    describe: 'address clients connect to (the client Service targets this port)',
  }),
  key({
    field: 'backend',
    parser: hostPort({ emptyHost: '127.0.0.1', allowPortZero: false }),
    default: { host: '127.0.0.1', port: 9221 },
    describe: 'the Pika or Redis server this sidecar fronts, normally on loopback in the same pod',
  }),
  key({
    field: 'admin',
    parser: hostPort({ emptyHost: '127.0.0.1', allowPortZero: true }),
    default: { host: '127.0.0.1', port: 9121 },
    describe: 'admin HTTP server: /metrics, /healthz, /readyz, /status, /drain and the stop gate',
  }),
  key({
    field: 'backendKind',
    parser: oneOf(['auto', 'redis', 'pika'] as const),
    default: 'auto',
    describe: 'backend flavour; auto reads it from INFO server',
  }),
  key({
    field: 'backendUser',
    parser: optionalString(),
    default: undefined,
    describe: 'ACL user of the control connection (Redis 6+); client sessions authenticate themselves',
  }),
  key({
    field: 'backendPassword',
    parser: optionalString({ secret: true, brief: 'secret string' }),
    default: undefined,
    describe: 'secret: password of the control connection; prefer the env variable or backendPasswordFile',
  }),
  key({
    field: 'backendPassword',
    path: 'backendPasswordFile',
    parser: secretFile(),
    describe: 'file holding backendPassword (a trailing newline is ignored); set this or backendPassword',
  }),
  key({
    field: 'adminToken',
    parser: optionalString({ secret: true, brief: 'secret string' }),
    default: undefined,
    describe: 'secret: bearer token non-loopback callers of mutating admin endpoints must send (unset = loopback only)',
  }),
  key({
    field: 'adminToken',
    path: 'adminTokenFile',
    parser: secretFile(),
    describe: 'file holding adminToken (a trailing newline is ignored); set this or adminToken',
  }),
  key({
    field: 'poolSize',
    parser: integer({ min: 0, max: 1024 }),
    default: 8,
    describe: 'backend connections opened ahead of new clients (0 = connect when a client arrives)',
  }),
  key({
    field: 'maxClients',
    parser: integer({ min: 1, max: 1_000_000 }),
    default: 10_000,
    describe:
      "client connections at most (Redis' maxclients); lowered to fit the open-file limit; beyond it a client gets -ERR max number of clients reached",
  }),
  key({
    field: 'protectedMode',
    parser: boolean(),
    default: true,
    describe:
      'refuse to start when listen is not loopback and the backend answers PING without a password (like Redis protected mode); set false only behind a NetworkPolicy',
  }),
  key({
    field: 'connectTimeoutMs',
    parser: duration({ min: 1 }),
    default: 2000,
    describe: 'backend connect timeout',
  }),
  key({
    field: 'healthIntervalMs',
    parser: duration({ min: 1 }),
    default: 1000,
    describe: 'control connection PING interval',
  }),
  key({
    field: 'commandTimeoutMs',
    parser: duration({ min: 1 }),
    default: 2000,
    describe: 'control connection command timeout (PING, INFO, CLIENT ...)',
  }),
  key({
    field: 'maxBulkBytes',
    parser: size({ min: 1, max: 4 * GiB }),
    default: 512 * MiB,
    describe: "largest bulk string a client may send (Redis' proto-max-bulk-len)",
  }),
  key({
    field: 'maxInlineBytes',
    parser: size({ min: 1, max: 16 * MiB }),
    default: 64 * 1024,
    describe: 'largest inline command line a client may send',
  }),
  key({
    field: 'deniedCommands',
    parser: commandList(),
    default: ['shutdown'],
    describe: 'commands refused with -ERR instead of forwarded (names are lowercased)',
  }),
  key({
    field: 'logLevel',
    parser: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    default: 'info',
    describe: 'log level (per-command detail only at trace)',
  }),
  key({
    field: 'replication.pollIntervalMs',
    parser: duration({ min: 1 }),
    default: 5000,
    describe: 'INFO polling interval in normal service (replica lag metrics)',
  }),
  key({
    field: 'replication.shutdownPollMinMs',
    parser: duration({ min: 1 }),
    default: 20,
    describe: 'replication_sync: first poll interval, backing off with jitter up to shutdownPollMax',
  }),
  key({
    field: 'replication.shutdownPollMaxMs',
    parser: duration({ min: 1 }),
    default: 500,
    describe: 'replication_sync: longest poll interval (at least shutdownPollMin)',
  }),
  key({
    field: 'replication.settleMs',
    parser: duration(),
    default: 200,
    describe: 'replication_sync: after convergence, wait this long and check again',
  }),
  key({
    field: 'replication.pauseWrites',
    parser: boolean(),
    default: true,
    describe: 'replication_sync: CLIENT PAUSE WRITE on Redis >= 6.2, stopping writes that bypass the sidecar',
  }),
  key({
    field: 'replication.addressOverrides',
    parser: addressMap(),
    default: {},
    describe: 'replica address to dial instead of the announced one, e.g. {"10.0.0.2:9221": "127.0.0.1:19221"}',
  }),
  key({
    field: 'replication.frontPikaPorts',
    parser: boolean(),
    default: false,
    describe:
      "Pika only: also listen on listen port +2000 and +10001 and forward raw bytes to the backend's +2000 and +10001 (replicas point at the sidecar; new links refused from intercept, open ones closed in release)",
  }),
  key({
    field: 'shutdown.announceDelayMs',
    parser: duration(),
    default: 5000,
    aliases: ['announce-delay'],
    describe: 'intercept: keep serving after readiness turns 503 while endpoint removal propagates',
  }),
  key({
    field: 'shutdown.drainTimeoutMs',
    parser: duration(),
    default: 10_000,
    aliases: ['drain-timeout'],
    describe: 'drain phase budget: forwarded commands get their replies, idle sessions close',
  }),
  key({
    field: 'shutdown.closeTimeoutMs',
    parser: duration(),
    default: 3000,
    aliases: ['close-timeout'],
    describe: 'close_clients phase budget: blocked sessions and stragglers',
  }),
  key({
    field: 'shutdown.replicationTimeoutMs',
    parser: duration(),
    default: 20_000,
    aliases: ['replication-timeout'],
    describe: 'replication_sync phase budget: replicas reach the master position',
  }),
  key({
    field: 'shutdown.releaseTimeoutMs',
    parser: duration(),
    default: 3000,
    aliases: ['release-timeout'],
    describe: 'release phase budget, metricsLinger included',
  }),
  key({
    field: 'shutdown.deadlineMs',
    parser: duration({ min: 1 }),
    default: 45_000,
    describe: 'whole shutdown; at least announceDelay + 1s + the four phase budgets, below terminationGracePeriodSeconds',
  }),
  key({
    field: 'shutdown.metricsLingerMs',
    parser: duration(),
    default: 2000,
    aliases: ['metrics-linger'],
    describe: 'release: keep the admin server up this long after the stop gate for a last scrape (at most releaseTimeout - 1s)',
  }),
  key({
    field: 'shutdown.closeSpreadMs',
    parser: duration(),
    default: 0,
    aliases: ['close-spread'],
    describe: 'close_clients: spread straggler closes over this window, 0 = all at once (at most closeTimeout)',
  }),
  key({
    field: 'shutdown.holdUntilSignal',
    parser: boolean(),
    default: false,
    aliases: ['hold-until-signal'],
    describe:
      'after a shutdown started by HTTP, the gate or the trigger file, stay up (admin server included) until SIGTERM, then exit with its code; for native sidecars, which the kubelet restarts if they exit before the main containers',
  }),
  key({
    field: 'shutdown.triggerDir',
    parser: optionalString({ expected: 'a directory path (null = off)', brief: 'directory, null = off' }),
    default: undefined,
    aliases: ['trigger-dir'],
    describe: 'directory watched for the trigger file `drain`; the marker file `drained` is written there',
  }),
  key({
    field: 'shutdown.pushgatewayUrl',
    parser: optionalUrl(),
    default: undefined,
    aliases: ['pushgateway-url'],
    describe: 'Prometheus Pushgateway for a final push of the shutdown metrics',
  }),
] as const;

export const CONFIG_KEYS: readonly ConfigKey[] = ROWS;

// Every SidecarConfig field has a key: a field added to the schema without one fails to compile here.
type Uncovered = Exclude<FieldPath, (typeof ROWS)[number]['field']>;
const everyFieldHasAKey: [Uncovered] extends [never] ? true : Uncovered = true;
void everyFieldHasAKey;

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

/** The defaults, from the rows: each field's own key carries its default. */
function defaultsFromKeys(): SidecarConfig {
  const config = { replication: {}, shutdown: {} } as unknown as SidecarConfig;
  for (const k of CONFIG_KEYS) if (k.hasDefault) setField(config, k.field, structuredClone(k.default));
  return config;
}

export const DEFAULT_CONFIG: SidecarConfig = defaultsFromKeys();
