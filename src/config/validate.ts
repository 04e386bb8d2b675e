/**
 * What a configuration problem says, and the checks that involve more than one key.
 * Every problem names the key, the value it was given, where that value came from and what is
 * allowed: `shutdown.drainTimeout = "10 seconds" (from PIKA_SIDECAR_SHUTDOWN_DRAIN_TIMEOUT): expected ...`.
 * Secret values are never shown.
 */
import { SidecarError } from '../errors.js';
import { interceptBudgetMs, type HostPort, type SidecarConfig } from './schema.js';
import { formatHostPort } from './address.js';
import { formatDuration } from './duration.js';
import { getField, primaryKey, type ConfigKey, type FieldPath } from './keys.js';
import { maskUrlPassword } from '../observability/redact.js';
import { RELEASE_RESERVE_MS } from '../shutdown/linger.js';
import { FRONT_PORT_ROLES, MAX_PORT, PIKA_PORT_OFFSETS, shiftedPort, type FrontPortRole } from '../replication/pika-ports.js';

export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

export interface Origin {
  source: ConfigSource;
  /** The environment variable, the `--flag` or the config file path; empty for defaults. */
  where: string;
}

export const DEFAULT_ORIGIN: Origin = { source: 'default', where: '' };

export function originText(origin: Origin): string {
  return origin.source === 'default' ? 'default' : `from ${origin.where}`;
}

const MAX_SHOWN = 120;

/** The value as given, quoted when a string, never a secret. */
export function showValue(raw: unknown, secret: boolean): string {
  if (secret) return '[redacted]';
  const text = raw === undefined ? 'undefined' : maskUrlPassword(JSON.stringify(raw));
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}...` : text;
}

export function valueProblem(key: ConfigKey, raw: unknown, origin: Origin, detail?: string): string {
  const why = detail === undefined ? '' : ` (${detail})`;
  return `${key.path} = ${showValue(raw, key.parser.secret)} (${originText(origin)}): expected ${key.parser.expected}${why}`;
}

/** One SidecarError for all problems: one line each, every line starting "invalid config: ". */
export function configError(problems: readonly string[]): SidecarError {
  return new SidecarError('ERR_CONFIG', problems.map((p) => `invalid config: ${p}`).join('\n'));
}

type Origins = ReadonlyMap<FieldPath, Origin>;

/** `shutdown.drainTimeout = 10s (default)` for a duration field. */
function showDuration(config: SidecarConfig, field: FieldPath, origins: Origins): string {
  const origin = origins.get(field) ?? DEFAULT_ORIGIN;
  return `${primaryKey(field).path} = ${formatDuration(getField(config, field) as number)} (${originText(origin)})`;
}

/** `a` must not exceed `b`, both durations. */
function atMost(config: SidecarConfig, origins: Origins, a: FieldPath, b: FieldPath, why: string): string[] {
  if ((getField(config, a) as number) <= (getField(config, b) as number)) return [];
  return [`${showDuration(config, a, origins)}: expected at most ${showDuration(config, b, origins)}, ${why}`];
}

function overlaps(x: HostPort, y: HostPort): boolean {
  const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::';
  return x.port !== 0 && x.port === y.port && (x.host === y.host || wildcard(x.host) || wildcard(y.host));
}

/** The linger must leave release its reserve for closing the admin server, the push and the log flush. */
function lingerFitsRelease(config: SidecarConfig, origins: Origins): string[] {
  const s = config.shutdown;
  if (s.metricsLingerMs === 0 || s.metricsLingerMs + RELEASE_RESERVE_MS <= s.releaseTimeoutMs) return [];
  return [
    `${showDuration(config, 'shutdown.metricsLingerMs', origins)}: expected at most ` +
      `${showDuration(config, 'shutdown.releaseTimeoutMs', origins)} - ${formatDuration(RELEASE_RESERVE_MS)}, ` +
      'since release closes the admin server, pushes the final metrics and flushes the logs after the linger; ' +
      'lower shutdown.metricsLinger or raise shutdown.releaseTimeout',
  ];
}

/** Problems that involve several keys; single values were checked by their parsers. */
export function checkConsistency(config: SidecarConfig, origins: Origins): string[] {
  const problems: string[] = [];
  const s = config.shutdown;

  // I4: the phases must fit in the deadline, which must fit in terminationGracePeriodSeconds.
  const intercept = interceptBudgetMs(s);
  const sum = intercept + s.drainTimeoutMs + s.closeTimeoutMs + s.replicationTimeoutMs + s.releaseTimeoutMs;
  if (sum > s.deadlineMs) {
    const parts = [
      `intercept ${formatDuration(intercept)} (${showDuration(config, 'shutdown.announceDelayMs', origins)} + 1s to close the listener)`,
      showDuration(config, 'shutdown.drainTimeoutMs', origins),
      showDuration(config, 'shutdown.closeTimeoutMs', origins),
      showDuration(config, 'shutdown.replicationTimeoutMs', origins),
      showDuration(config, 'shutdown.releaseTimeoutMs', origins),
    ];
    problems.push(
      `${showDuration(config, 'shutdown.deadlineMs', origins)}: expected at least the sum of the phase budgets, ` +
        `${parts.join(' + ')} = ${formatDuration(sum)}; raise shutdown.deadline or lower a budget`,
    );
  }
  problems.push(
    ...lingerFitsRelease(config, origins),
    ...atMost(config, origins, 'shutdown.closeSpreadMs', 'shutdown.closeTimeoutMs', 'since the spread happens inside close_clients'),
    ...atMost(
      config,
      origins,
      'replication.shutdownPollMinMs',
      'replication.shutdownPollMaxMs',
      'since polling backs off from the minimum to the maximum',
    ),
  );

  type AddressField = 'listen' | 'admin' | 'backend';
  const showAddress = (f: AddressField): string => `${f} = ${formatHostPort(config[f])} (${originText(origins.get(f) ?? DEFAULT_ORIGIN)})`;
  const pairs: Array<[AddressField, AddressField]> = [
    ['listen', 'admin'],
    ['listen', 'backend'],
    ['admin', 'backend'],
  ];
  for (const [a, b] of pairs) {
    if (overlaps(config[a], config[b])) problems.push(`${showAddress(a)}: expected an address different from ${showAddress(b)}`);
  }
  problems.push(...frontPortProblems(config, origins));
  return problems;
}

/**
 * replication.frontPikaPorts: the sidecar binds listen port +2000 and +10001 and dials the backend's
 * +2000 and +10001. Those ports must exist and be distinct from every other port in play.
 */
function frontPortProblems(config: SidecarConfig, origins: Origins): string[] {
  if (!config.replication.frontPikaPorts) return [];
  const origin = (f: FieldPath) => originText(origins.get(f) ?? DEFAULT_ORIGIN);
  const option = `replication.frontPikaPorts = true (${origin('replication.frontPikaPorts')})`;
  const show = (f: 'listen' | 'admin' | 'backend') => `${f} = ${formatHostPort(config[f])} (${origin(f)})`;
  if (config.backendKind === 'redis') {
    return [
      `${option}: expected backendKind auto or pika, not backendKind = "redis" (${origin('backendKind')}): ` +
        "the fronted ports are Pika's; Redis replicas already replicate through the client port (SYNC/PSYNC)",
    ];
  }
  if (config.listen.port === 0) {
    return [`${option}: expected a fixed listen port, not ${show('listen')}: the replication ports are the listen port +2000 and +10001`];
  }
  const problems: string[] = [];
  for (const f of ['listen', 'backend'] as const) {
    const top = shiftedPort(config[f].port, 'rsync');
    if (top > MAX_PORT) {
      problems.push(
        `${option}: ${show(f)} +${PIKA_PORT_OFFSETS.rsync} = ${top} is above ${MAX_PORT}; expected a ${f} port of at most ${MAX_PORT - PIKA_PORT_OFFSETS.rsync}`,
      );
    }
  }
  if (problems.length > 0) return problems;

  // What the sidecar binds, and what the backend listens on, each named as in the message.
  type Named = { name: string; address: HostPort };
  const shifted = (f: 'listen' | 'backend', role: FrontPortRole): Named => ({
    name: `${show(f)} +${PIKA_PORT_OFFSETS[role]} (${role})`,
    address: { host: config[f].host, port: shiftedPort(config[f].port, role) },
  });
  const fronts = FRONT_PORT_ROLES.map((r) => shifted('listen', r));
  const sidecar: Named[] = [
    { name: show('listen'), address: config.listen },
    { name: show('admin'), address: config.admin },
  ];
  const backend: Named[] = [{ name: show('backend'), address: config.backend }, ...FRONT_PORT_ROLES.map((r) => shifted('backend', r))];
  const pairs: Array<[Named, Named]> = [
    ...fronts.flatMap((f) => [...sidecar, ...backend].map((o): [Named, Named] => [f, o])),
    ...sidecar.flatMap((s) => backend.slice(1).map((b): [Named, Named] => [s, b])),
  ];
  for (const [a, b] of pairs) {
    if (overlaps(a.address, b.address)) problems.push(`${option}: ${a.name} is the same port as ${b.name}; expected distinct ports`);
  }
  return problems;
}
