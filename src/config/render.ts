/**
 * Configuration as YAML text, from the key table: the documented defaults file that ships as
 * config/pika-sidecar.yaml (`pika-sidecar check-config --defaults` prints it; a unit test keeps the
 * shipped file equal to it), and check-config's effective configuration with each value's source.
 * Secrets are never rendered: the defaults file holds null, check-config prints `[set]`.
 */
import { stringify } from 'yaml';
import type { SidecarConfig } from './schema.js';
import { DEFAULT_CONFIG, CONFIG_KEYS, getField, primaryKey, type ConfigKey } from './keys.js';
import { MAX_DURATION_MS } from './duration.js';
import type { YamlValue } from './parsers.js';
import type { ConfigSource } from './validate.js';

const DEFAULTS_HEADER = [
  '# pika-sidecar configuration: every key, set to its default value.',
  '# Precedence: flags > environment PIKA_SIDECAR_* > this file (--config or PIKA_SIDECAR_CONFIG) > built-in defaults.',
  '# Above each key: what it is, what is allowed, its environment variable and its flag. Unknown keys are errors.',
  `# Durations: 500ms, 2s, 1.5s, 1m, 1h or integer milliseconds (whole milliseconds, at most ${MAX_DURATION_MS}).`,
  '# Sizes: integer bytes or 64kb, 512mb, 1gb (binary units: kb = kib = 1024). null = unset.',
  '# Addresses: host:port, [ipv6]:port or :port (listen: 0.0.0.0:port; backend, admin: 127.0.0.1:port).',
  '# Secrets (backendPassword, adminToken) belong in the environment or in a file (backendPasswordFile, adminTokenFile).',
  '# This file is generated from src/config/keys.ts: pika-sidecar check-config --defaults > config/pika-sidecar.yaml',
];

const SECTION_COMMENTS: Readonly<Record<string, string>> = {
  replication: '# Replication convergence before the backend may stop (replication_sync phase).',
  shutdown: '# Shutdown phases: intercept -> drain -> close_clients -> replication_sync -> release.',
};

/** A value on one line: scalars as YAML writes them, lists and maps in flow style. */
export function yamlText(value: YamlValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return value.includes('\n') ? JSON.stringify(value) : stringify(value, { lineWidth: 0 }).trimEnd();
  if (typeof value !== 'object') return String(value);
  if (isStringList(value)) return `[${value.map(flowItem).join(', ')}]`;
  const entries = Object.entries(value);
  if (entries.length === 0) return '{}';
  return `{ ${entries.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')} }`;
}

function isStringList(value: readonly string[] | Readonly<Record<string, string>>): value is readonly string[] {
  return Array.isArray(value);
}

/** Plain when YAML would read it back as the same string inside a flow list, quoted otherwise. */
function flowItem(item: string): string {
  return /^[A-Za-z0-9_.|-]+$/.test(item) && stringify(item).trimEnd() === item ? item : JSON.stringify(item);
}

function sectionOf(k: ConfigKey): string | undefined {
  const dot = k.path.indexOf('.');
  return dot < 0 ? undefined : k.path.slice(0, dot);
}

/** Walks the table in order, opening a section when the key path enters one. */
function renderKeys(keys: readonly ConfigKey[], line: (k: ConfigKey, indent: string, name: string) => string[]): string[] {
  const out: string[] = [];
  let section: string | undefined;
  for (const k of keys) {
    const next = sectionOf(k);
    if (next !== section && next !== undefined) {
      out.push('', SECTION_COMMENTS[next] ?? `# ${next}`, `${next}:`);
    }
    section = next;
    const indent = next === undefined ? '' : '  ';
    out.push(...line(k, indent, k.path.slice(k.path.indexOf('.') + 1)));
  }
  return out;
}

function valueOf(config: SidecarConfig, k: ConfigKey): YamlValue {
  // A file key (backendPasswordFile) holds a path, never the secret it sets.
  if (primaryKey(k.field) !== k) return null;
  return k.parser.toYaml(getField(config, k.field));
}

/** The older names a key still accepts, for its comment. */
function formerly(k: ConfigKey): string {
  if (k.flagAliases.length === 0) return '';
  return ` (also ${k.flagAliases.map((f, i) => `--${f} / ${k.envAliases[i] ?? ''}`).join(', ')})`;
}

/** The documented defaults file (config/pika-sidecar.yaml). */
export function renderDefaultsYaml(): string {
  const body = renderKeys(CONFIG_KEYS, (k, indent, name) => [
    `${indent}# ${k.describe}. Allowed: ${k.parser.brief}. Env ${k.env}, flag --${k.flag}${formerly(k)}`,
    `${indent}${name}: ${yamlText(valueOf(DEFAULT_CONFIG, k))}`,
  ]);
  return `${[...DEFAULTS_HEADER, '', ...body].join('\n')}\n`;
}

/**
 * The effective configuration, each value followed by its source (default, file, env, flag).
 * Loadable YAML, except that set secrets read `[set]`.
 */
export function renderEffectiveYaml(
  config: SidecarConfig,
  sources: Readonly<Record<string, ConfigSource>>,
  configPath: string | undefined,
): string {
  const fieldKeys = CONFIG_KEYS.filter((k) => primaryKey(k.field) === k);
  const rows = renderKeys(fieldKeys, (k, indent, name) => {
    const value = getField(config, k.field);
    const shown = k.parser.secret ? (value === undefined ? 'null' : '"[set]"') : yamlText(valueOf(config, k));
    return [`${indent}${name}: ${shown}\u0000${sources[k.path] ?? 'default'}`];
  });
  // Line the sources up in one column.
  const width = Math.max(...rows.map((r) => r.indexOf('\u0000')));
  const body = rows.map((r) => {
    const at = r.indexOf('\u0000');
    return at < 0 ? r : `${r.slice(0, at).padEnd(width)}  # ${r.slice(at + 1)}`;
  });
  const header = [
    `# pika-sidecar effective configuration (config file: ${configPath ?? 'none'})`,
    '# after each value, where it came from: default, file, env or flag',
  ];
  return `${[...header, ...body].join('\n')}\n`;
}
