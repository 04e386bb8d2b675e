/**
 * Builds the SidecarConfig from four layers, highest first:
 *   flags (yargs argv, kebab-case names) > environment PIKA_SIDECAR_* > YAML file > DEFAULT_CONFIG.
 * A key's older flag name (and its environment variable) counts as the key's own, the new name first.
 * Each field takes its value from the highest layer that sets it; the YAML file is named by
 * `configPath`, else `argv.config`, else PIKA_SIDECAR_CONFIG, and is optional.
 *
 * Rules worth knowing:
 * - An empty environment variable counts as unset (Kubernetes renders optional values that way).
 * - Environment variables that are not in the key table are ignored, not refused: Kubernetes
 *   injects PIKA_SIDECAR_SERVICE_HOST, PIKA_SIDECAR_PORT, ... for a Service named pika-sidecar.
 * - Unknown keys in the YAML file are refused, with the nearest known key suggested. A PIKA_SIDECAR_*
 *   variable close to a known one (PIKA_SIDECAR_POOLSIZE) is a warning with the suggestion: it is
 *   not refused, for the Kubernetes reason above.
 * - A string value with leading or trailing whitespace (`' 8'`, `'1s '`) is refused, naming the key:
 *   whitespace there is a quoting mistake, not a value. Secrets are taken as they are.
 * - In the YAML file, null on an optional key (secrets, triggerDir, pushgatewayUrl) is the same as
 *   leaving the key out; on any other key it is an error.
 * - All problems are collected and thrown as one SidecarError('ERR_CONFIG'), one line each.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { SidecarConfig } from './schema.js';
import {
  DEFAULT_CONFIG,
  CONFIG_KEYS,
  KEYS_BY_FIELD,
  KEYS_BY_PATH,
  SECTIONS,
  primaryKey,
  setField,
  type ConfigKey,
  type FieldPath,
} from './keys.js';
import { checkConsistency, configError, valueProblem, type ConfigSource, type Origin } from './validate.js';

export type { ConfigSource };

export const CONFIG_PATH_ENV = 'PIKA_SIDECAR_CONFIG';

export interface LoadConfigInput {
  /** Parsed flags, keyed by the table's kebab-case flag names (yargs argv); `config` names the file. */
  argv?: Readonly<Record<string, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** Overrides argv.config and PIKA_SIDECAR_CONFIG. */
  configPath?: string | undefined;
}

export interface LoadedConfig {
  config: SidecarConfig;
  /** Where each field's value came from, by its YAML path (`shutdown.drainTimeout`). */
  sources: Record<string, ConfigSource>;
  /** The YAML file that was read, if any. */
  configPath: string | undefined;
  /** Not errors, but probably mistakes (a misspelt environment variable): shown at start-up. */
  warnings: string[];
}

/** A value some layer gave for a key, before parsing. */
interface Given {
  raw: unknown;
  origin: Origin;
}

/** The config file named by the input, or undefined when there is none. */
export function resolveConfigPath(input: LoadConfigInput): { path: string; origin: string } | undefined {
  if (input.configPath !== undefined) return { path: input.configPath, origin: 'configPath' };
  const flag = input.argv?.['config'];
  if (typeof flag === 'string') return { path: flag, origin: '--config' };
  const env = input.env?.[CONFIG_PATH_ENV];
  if (env !== undefined && env !== '') return { path: env, origin: CONFIG_PATH_ENV };
  return undefined;
}

/** Throws SidecarError('ERR_CONFIG') listing every problem; see the module comment for the rules. */
export function loadConfig(input: LoadConfigInput): LoadedConfig {
  const problems: string[] = [];
  const file = resolveConfigPath(input);
  const fromFile = file === undefined ? new Map<string, unknown>() : readConfigFile(file.path, file.origin, problems);

  const config = structuredClone(DEFAULT_CONFIG);
  const origins = new Map<FieldPath, Origin>();
  const sources: Record<string, ConfigSource> = {};

  for (const [field, keys] of KEYS_BY_FIELD) {
    const chosen = pickLayer(keys, input, fromFile, file?.path ?? '', problems);
    if (chosen === undefined) {
      sources[primaryKey(field).path] = 'default';
      continue;
    }
    const { key, given } = chosen;
    if (!key.parser.secret && typeof given.raw === 'string' && given.raw !== given.raw.trim()) {
      problems.push(valueProblem(key, given.raw, given.origin, 'no leading or trailing whitespace'));
      continue;
    }
    const parsed = key.parser.parse(given.raw);
    if (!parsed.ok) {
      problems.push(valueProblem(key, given.raw, given.origin, parsed.detail));
      continue;
    }
    setField(config, field, parsed.value);
    origins.set(field, given.origin);
    sources[primaryKey(field).path] = given.origin.source;
  }

  // Cross-key checks only make sense once every value parsed.
  if (problems.length === 0) problems.push(...checkConsistency(config, origins));
  if (problems.length > 0) throw configError(problems);
  return { config, sources, configPath: file?.path, warnings: envWarnings(input.env ?? {}) };
}

const ENV_PREFIX = 'PIKA_SIDECAR_';
/** Variables of ours that are not config keys (the config path; a test-only hook in main.ts). */
const OTHER_ENV = new Set([CONFIG_PATH_ENV, 'PIKA_SIDECAR_TEST_INJECT_FAULT']);
/** What Kubernetes injects for a Service named pika-sidecar: never a typo. */
const SERVICE_ENV_RE = /^PIKA_SIDECAR_(SERVICE_HOST|SERVICE_PORT(_.*)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$/;

/** A warning for each PIKA_SIDECAR_* variable that is not ours but close to one of ours. */
export function envWarnings(env: NodeJS.ProcessEnv): string[] {
  const known = new Set(CONFIG_KEYS.flatMap((k) => [k.env, ...k.envAliases]));
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || known.has(name) || OTHER_ENV.has(name) || SERVICE_ENV_RE.test(name)) continue;
    const hint = nearestEnv(name);
    if (hint !== undefined)
      warnings.push(`environment variable ${name} is not a pika-sidecar setting and is ignored; did you mean ${hint}?`);
  }
  return warnings;
}

function nearestEnv(name: string): string | undefined {
  // Compared without underscores too: POOLSIZE and POOL_SIZE are one typo apart, not two.
  const bare = (s: string): string => s.slice(ENV_PREFIX.length).replaceAll('_', '');
  let best: { env: string; distance: number } | undefined;
  for (const env of CONFIG_KEYS.flatMap((k) => [k.env, ...k.envAliases])) {
    const distance = Math.min(editDistance(name, env), editDistance(bare(name), bare(env)));
    if (best === undefined || distance < best.distance) best = { env, distance };
  }
  return best !== undefined && best.distance <= 2 ? best.env : undefined;
}

/** The highest layer that sets any key of one field; two keys of one field in that layer is an error. */
function pickLayer(
  keys: readonly ConfigKey[],
  input: LoadConfigInput,
  fromFile: ReadonlyMap<string, unknown>,
  filePath: string,
  problems: string[],
): { key: ConfigKey; given: Given } | undefined {
  const layers: Array<(k: ConfigKey) => Given | undefined> = [
    (k) => {
      // The flag, else an older name of it (the CLI registers each name apart: argv holds what was typed).
      const flag = [k.flag, ...k.flagAliases].find((f) => input.argv?.[f] !== undefined);
      return flag === undefined ? undefined : { raw: input.argv?.[flag], origin: { source: 'flag', where: `--${flag}` } };
    },
    (k) => {
      const env = [k.env, ...k.envAliases].find((e) => input.env?.[e] !== undefined && input.env[e] !== '');
      return env === undefined ? undefined : { raw: input.env?.[env], origin: { source: 'env', where: env } };
    },
    (k) => {
      const raw = fromFile.get(k.path);
      // `key: null` on an optional key is the documented "unset": the same as leaving it out.
      if (raw === undefined || (raw === null && isUnset(k))) return undefined;
      return { raw, origin: { source: 'file', where: filePath } };
    },
  ];
  for (const layer of layers) {
    const set = keys.flatMap((key) => {
      const given = layer(key);
      return given === undefined ? [] : [{ key, given }];
    });
    if (set.length > 1) {
      const where = set.map((s) => s.given.origin.where).join(', ');
      problems.push(`${set.map((s) => s.key.path).join(' and ')} are both set (${where}): expected only one of them`);
    }
    if (set.length > 0) return set[0];
  }
  return undefined;
}

/** The file's keys flattened to YAML paths (`shutdown.drainTimeout`); problems are appended. */
export function readConfigFile(path: string, origin: string, problems: string[]): Map<string, unknown> {
  const values = new Map<string, unknown>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    problems.push(`config file ${JSON.stringify(path)} (from ${origin}): expected a readable YAML file (${code})`);
    return values;
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]?.message.split('\n')[0] ?? 'unknown error';
    problems.push(`config file ${JSON.stringify(path)}: expected valid YAML (${first})`);
    return values;
  }
  const root: unknown = doc.toJS();
  if (root === null || root === undefined) return values; // an empty file: all defaults
  if (!isMapping(root)) {
    problems.push(`config file ${JSON.stringify(path)}: expected a YAML mapping of keys at the top level`);
    return values;
  }
  for (const [name, value] of Object.entries(root)) {
    if ((SECTIONS as readonly string[]).includes(name)) {
      if (value === null) continue; // `shutdown:` with nothing under it
      if (!isMapping(value)) {
        problems.push(`${name} = ${JSON.stringify(value)} (from ${path}): expected a mapping of ${name} keys`);
        continue;
      }
      for (const [sub, subValue] of Object.entries(value)) collect(`${name}.${sub}`, subValue);
    } else if (name.includes('.')) {
      // `shutdown.drainTimeout: 5s` at the top level: the YAML file nests sections, it has no dotted keys.
      problems.push(`key ${JSON.stringify(name)} (from ${path}): expected sections as nested mappings, not dotted names`);
    } else {
      collect(name, value);
    }
  }
  return values;

  function collect(keyPath: string, value: unknown): void {
    if (KEYS_BY_PATH.has(keyPath)) values.set(keyPath, value);
    else problems.push(unknownKeyProblem(keyPath, path));
  }
}

function isUnset(k: ConfigKey): boolean {
  const parsed = k.parser.parse(null);
  return parsed.ok && parsed.value === undefined;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function unknownKeyProblem(keyPath: string, filePath: string): string {
  const hint = nearestKey(keyPath);
  const suggestion = hint === undefined ? '' : `; did you mean ${hint}?`;
  return `unknown key ${keyPath} (from ${filePath}): expected one of the keys documented in config/pika-sidecar.yaml${suggestion}`;
}

/** The known key closest to a typo: compared whole and by last segment (a key in the wrong section). */
function nearestKey(keyPath: string): string | undefined {
  const last = (p: string): string => p.slice(p.lastIndexOf('.') + 1).toLowerCase();
  let best: { path: string; distance: number } | undefined;
  for (const k of CONFIG_KEYS) {
    const distance = Math.min(editDistance(keyPath.toLowerCase(), k.path.toLowerCase()), editDistance(last(keyPath), last(k.path)));
    if (best === undefined || distance < best.distance) best = { path: k.path, distance };
  }
  return best !== undefined && best.distance <= 3 ? best.path : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
