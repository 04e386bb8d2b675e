/**
 * One parser per kind of configuration value. A parser takes what a YAML file, an environment
 * variable or a flag gave (any JSON-ish value: YAML scalars/lists/maps, strings, string arrays,
 * booleans), and says what it allows in words that end an error message ("expected ...") and
 * document the key in the YAML file and in --help.
 */
import { readFileSync } from 'node:fs';
import type { HostPort } from './schema.js';
import { DURATION_EXPECTED, SIZE_EXPECTED, formatDuration, formatSize, tryParseDuration, tryParseSize } from './duration.js';
import { formatHostPort, hostPortExpected, tryParseHostPort, type HostPortRules } from './address.js';
import { maskUrlPassword } from '../observability/redact.js';

/** A value as it is written in the YAML file. */
export type YamlValue = string | number | boolean | null | readonly string[] | Readonly<Record<string, string>>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; detail?: string };

export interface ValueParser<T> {
  /** What is allowed, e.g. "an integer from 0 to 1024"; completes "expected ...". */
  readonly expected: string;
  /** The same in a few words for the YAML file's comments, e.g. "integer 0-1024". */
  readonly brief: string;
  /** How yargs should read the flag; everything else is read as a string and parsed here. */
  readonly flagType: 'string' | 'boolean';
  /** The raw input is a secret: it never appears in a message, and check-config prints `[set]`. */
  readonly secret: boolean;
  parse(raw: unknown): Parsed<T>;
  /** The value as written in the YAML file (and shown by check-config and --help). */
  toYaml(value: T): YamlValue;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const invalid = (detail?: string): Parsed<never> => (detail === undefined ? { ok: false } : { ok: false, detail });

function base<T>(
  spec: Pick<ValueParser<T>, 'expected' | 'brief' | 'parse' | 'toYaml'> & Partial<Pick<ValueParser<T>, 'flagType' | 'secret'>>,
): ValueParser<T> {
  return { flagType: 'string', secret: false, ...spec };
}

export function duration(opts: { min?: number } = {}): ValueParser<number> {
  const min = opts.min ?? 0;
  const range = min > 0 ? ` (at least ${formatDuration(min)})` : '';
  return base({
    expected: `${DURATION_EXPECTED}${range}`,
    brief: min > 0 ? `duration, at least ${formatDuration(min)}` : 'duration',
    parse(raw) {
      const ms = tryParseDuration(raw);
      return ms !== undefined && ms >= min ? ok(ms) : invalid();
    },
    toYaml: (ms) => (ms === 0 ? 0 : formatDuration(ms)),
  });
}

export function size(opts: { min: number; max: number }): ValueParser<number> {
  return base({
    expected: `${SIZE_EXPECTED}, from ${formatSize(opts.min)} to ${formatSize(opts.max)}`,
    brief: `size ${formatSize(opts.min)}-${formatSize(opts.max)}`,
    parse(raw) {
      const bytes = tryParseSize(raw);
      return bytes !== undefined && bytes >= opts.min && bytes <= opts.max ? ok(bytes) : invalid();
    },
    toYaml: formatSize,
  });
}

export function integer(opts: { min: number; max: number }): ValueParser<number> {
  return base({
    expected: `an integer from ${opts.min} to ${opts.max}`,
    brief: `integer ${opts.min}-${opts.max}`,
    parse(raw) {
      const n = typeof raw === 'string' && /^\s*\d{1,15}\s*$/.test(raw) ? Number(raw) : raw;
      return typeof n === 'number' && Number.isInteger(n) && n >= opts.min && n <= opts.max ? ok(n) : invalid();
    },
    toYaml: (n) => n,
  });
}

const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);

export function boolean(): ValueParser<boolean> {
  return base({
    expected: 'true or false',
    brief: 'true or false',
    flagType: 'boolean',
    parse(raw) {
      if (typeof raw === 'boolean') return ok(raw);
      const word = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      if (word !== undefined && TRUE_WORDS.has(word)) return ok(true);
      if (word !== undefined && FALSE_WORDS.has(word)) return ok(false);
      return invalid();
    },
    toYaml: (b) => b,
  });
}

/** One of a closed set of lowercase words; input is matched case-insensitively. */
export function oneOf<const W extends string>(words: readonly W[]): ValueParser<W> {
  return base({
    expected: `one of ${words.join(', ')}`,
    brief: words.join(', '),
    parse(raw) {
      const word = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      const found = words.find((w) => w === word);
      return found !== undefined ? ok(found) : invalid();
    },
    toYaml: (w) => w,
  });
}

export function hostPort(rules: HostPortRules): ValueParser<HostPort> {
  return base({
    expected: hostPortExpected(rules),
    brief: hostPortExpected(rules),
    parse(raw) {
      const address = tryParseHostPort(raw, rules);
      return address !== undefined ? ok(address) : invalid();
    },
    toYaml: formatHostPort,
  });
}

/** Items of a list given as a YAML list, a comma-separated string, or repeated flags (a string array). */
function listItems(raw: unknown): string[] | undefined {
  const parts = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? (raw as unknown[]) : undefined;
  if (parts === undefined || !parts.every((p) => typeof p === 'string')) return undefined;
  return (parts as string[])
    .flatMap((p) => p.split(','))
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

const COMMAND_NAME_RE = /^[a-z][a-z0-9_.|-]{0,63}$/;

/** Redis command names, stored lowercase (input is lowercased), duplicates dropped. */
export function commandList(): ValueParser<string[]> {
  return base({
    expected: 'a list of command names (a YAML list, or comma-separated in env and flags), e.g. [shutdown, flushall]',
    brief: 'list of command names, comma-separated in env and flags',
    parse(raw) {
      const items = listItems(raw)?.map((s) => s.toLowerCase());
      if (items === undefined) return invalid();
      const bad = items.find((name) => !COMMAND_NAME_RE.test(name));
      return bad === undefined ? ok([...new Set(items)]) : invalid(`"${bad}" is not a command name`);
    },
    toYaml: (names) => names,
  });
}

const OVERRIDE_RULES: HostPortRules = { emptyHost: '', allowPortZero: false };
const isDialable = (s: string): boolean => (tryParseHostPort(s, OVERRIDE_RULES)?.host ?? '') !== '';

/**
 * Announced replica address -> address to dial instead. YAML: a mapping; env and flags:
 * `ip:port=host:port` pairs, comma-separated or repeated. Both sides are kept as written (trimmed).
 */
export function addressMap(): ValueParser<Record<string, string>> {
  return base({
    expected: 'a mapping of announced "ip:port" to "host:port" (env and flags: ip:port=host:port, comma-separated)',
    brief: 'mapping, in env and flags ip:port=host:port,...',
    parse(raw) {
      let pairs: Array<[string, unknown]>;
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
        pairs = Object.entries(raw);
      } else {
        const items = listItems(raw);
        if (items === undefined) return invalid();
        pairs = [];
        for (const item of items) {
          const eq = item.indexOf('=');
          if (eq < 0) return invalid(`"${item}" has no "="`);
          pairs.push([item.slice(0, eq), item.slice(eq + 1)]);
        }
      }
      const map: Record<string, string> = {};
      for (const [from, to] of pairs) {
        const key = from.trim();
        if (typeof to !== 'string' || !isDialable(key) || !isDialable(to)) {
          return invalid(`"${key}" -> ${JSON.stringify(to)} is not an address pair`);
        }
        map[key] = to.trim();
      }
      return ok(map);
    },
    toYaml: (map) => map,
  });
}

/** A non-empty string, or null/absent for "unset". */
export function optionalString(opts: { expected?: string; brief?: string; secret?: boolean } = {}): ValueParser<string | undefined> {
  return base({
    expected: opts.expected ?? 'a non-empty string (null = unset)',
    brief: opts.brief ?? 'string',
    secret: opts.secret ?? false,
    parse: (raw) => (raw === null ? ok(undefined) : typeof raw === 'string' && raw !== '' ? ok(raw) : invalid()),
    toYaml: (s) => s ?? null,
  });
}

/** An http(s) URL, or null for "off". */
export function optionalUrl(): ValueParser<string | undefined> {
  return base({
    expected: 'an http:// or https:// URL (null = off)',
    brief: 'http(s) URL, null = off',
    parse(raw) {
      if (raw === null) return ok(undefined);
      if (typeof raw !== 'string') return invalid();
      try {
        const url = new URL(raw);
        return url.protocol === 'http:' || url.protocol === 'https:' ? ok(raw) : invalid();
      } catch {
        return invalid();
      }
    },
    toYaml: (s) => (s === undefined ? null : maskUrlPassword(s)),
  });
}

/**
 * A path to a file holding a secret; parses to the file's content without its trailing newline
 * (what `echo secret > file` and Kubernetes Secret volumes leave). Relative paths are from the
 * working directory. The path is not secret; the content is never shown.
 */
export function secretFile(): ValueParser<string | undefined> {
  return base({
    expected: 'the path of a readable, non-empty file holding the secret (null = unset)',
    brief: 'file path',
    parse(raw) {
      if (raw === null) return ok(undefined);
      if (typeof raw !== 'string' || raw === '') return invalid();
      let content: string;
      try {
        content = readFileSync(raw, 'utf8');
      } catch (err) {
        return invalid(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      const secret = content.replace(/\r?\n$/, '');
      return secret !== '' ? ok(secret) : invalid('the file is empty');
    },
    // The content is never written back: in the YAML file the key only ever holds a path or null.
    toYaml: () => null,
  });
}
