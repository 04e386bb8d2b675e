/**
 * Durations and byte sizes as operators write them, in the config file, the environment and flags.
 *
 * Durations: integer milliseconds (a number, or a string of digits) or a number with a unit:
 * `ms`, `s`, `m`, `h` (lowercase; no space). A fraction is allowed when the result is a whole number of
 * milliseconds (`1.5s` = 1500, `0.5ms` is refused); a bare number must be an integer (`1.5` is refused,
 * since nobody can tell whether seconds were meant). Longest: 2^31-1 ms (about 24.8 days), because a
 * longer Node.js timer fires at once.
 *
 * Sizes: integer bytes or a number with a binary unit, case-insensitive: `b`, `kb`/`kib` (1024),
 * `mb`/`mib`, `gb`/`gib`. The bare `k`/`m`/`g` are refused because Redis reads them as powers of 1000.
 */
import { SidecarError } from '../errors.js';

/** setTimeout's limit: a longer delay is clamped to 1 ms by Node.js, which would turn a budget into nothing. */
export const MAX_DURATION_MS = 2_147_483_647;

export const DURATION_EXPECTED = 'a duration like 500ms, 2s, 1m or integer milliseconds';
export const SIZE_EXPECTED = 'a size like 65536, 64kb, 512mb or 1gb (binary units)';

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

// At most 6 fraction digits keeps `fraction * unit` exact in a double.
const DURATION_RE = /^(\d{1,15})(?:\.(\d{1,6}))?(ms|s|m|h)?$/;
const SIZE_RE = /^(\d{1,16})(?:\.(\d{1,6}))?([a-z]+)?$/;

/**
 * `whole.fraction * unit` when it is an exact non-negative safe integer; undefined otherwise.
 * Integer arithmetic on the fraction digits avoids 1.1 * 1000 = 1100.0000000000002.
 */
function scaled(whole: string, fraction: string | undefined, unit: number): number | undefined {
  let value = Number(whole) * unit;
  if (fraction !== undefined) {
    const denominator = 10 ** fraction.length;
    const numerator = Number(fraction) * unit;
    if (numerator % denominator !== 0) return undefined;
    value += numerator / denominator;
  }
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Milliseconds, or undefined when `input` is not a duration (see the module comment for the grammar). */
export function tryParseDuration(input: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof input === 'number') {
    ms = Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  } else if (typeof input === 'string') {
    const m = DURATION_RE.exec(input.trim());
    if (m === null) return undefined;
    const [, whole = '', fraction, unit] = m;
    // A bare number is milliseconds and must be an integer.
    if (unit === undefined && fraction !== undefined) return undefined;
    ms = scaled(whole, fraction, DURATION_UNITS[unit ?? 'ms'] ?? 1);
  }
  return ms !== undefined && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** Milliseconds; throws SidecarError('ERR_CONFIG') naming the input and the grammar. */
export function parseDuration(input: unknown): number {
  const ms = tryParseDuration(input);
  if (ms === undefined) {
    throw new SidecarError('ERR_CONFIG', `invalid duration ${JSON.stringify(input)}: expected ${DURATION_EXPECTED}`);
  }
  return ms;
}

/** The shortest exact spelling: 2000 -> "2s", 90000 -> "90s", 60000 -> "1m", 1500 -> "1500ms", 0 -> "0ms". */
export function formatDuration(ms: number): string {
  if (ms !== 0) {
    if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
    if (ms % 60_000 === 0) return `${ms / 60_000}m`;
    if (ms % 1000 === 0) return `${ms / 1000}s`;
  }
  return `${ms}ms`;
}

/** Bytes, or undefined when `input` is not a size (see the module comment for the grammar). */
export function tryParseSize(input: unknown): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  if (typeof input !== 'string') return undefined;
  const m = SIZE_RE.exec(input.trim().toLowerCase());
  if (m === null) return undefined;
  const [, whole = '', fraction, unitName] = m;
  if (unitName === undefined && fraction !== undefined) return undefined;
  const unit = SIZE_UNITS[unitName ?? 'b'];
  return unit === undefined ? undefined : scaled(whole, fraction, unit);
}

/** Bytes; throws SidecarError('ERR_CONFIG') naming the input and the grammar. */
export function parseSize(input: unknown): number {
  const bytes = tryParseSize(input);
  if (bytes === undefined) {
    throw new SidecarError('ERR_CONFIG', `invalid size ${JSON.stringify(input)}: expected ${SIZE_EXPECTED}`);
  }
  return bytes;
}

/** The shortest exact spelling: 536870912 -> "512mb", 65536 -> "64kb", 1000 -> "1000b". */
export function formatSize(bytes: number): string {
  if (bytes !== 0) {
    if (bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3}gb`;
    if (bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}mb`;
    if (bytes % 1024 === 0) return `${bytes / 1024}kb`;
  }
  return `${bytes}b`;
}
