/**
 * Replication positions as BigInt: Redis byte offsets and Pika per-db binlog positions.
 * Pure functions; malformed numbers come back as null (never NaN, never a throw), and callers treat
 * null as "unknown", which is never "caught up".
 */

export const U64_MAX = (1n << 64n) - 1n;

/** A Pika lag above this is a wrapped unsigned subtraction (replica "ahead" of a stale master
 * position), not a byte count: it means unknown. */
export const PIKA_LAG_WRAP_THRESHOLD = 1n << 62n;

/** A decimal unsigned integer that fits in 64 bits; anything else (sign, spaces inside, hex, too
 * many digits) is null. */
export function parseU64(text: string | undefined): bigint | null {
  if (text === undefined) return null;
  const t = text.trim();
  if (!/^\d{1,20}$/.test(t)) return null;
  const v = BigInt(t);
  return v <= U64_MAX ? v : null;
}

/** A small non-negative decimal integer (ports, fds, seconds); null otherwise. */
export function parseSmallInt(text: string | undefined): number | null {
  if (text === undefined) return null;
  const t = text.trim();
  if (!/^\d{1,9}$/.test(t)) return null;
  return Number(t);
}

/** One Pika binlog position: (file number, byte offset in that file), compared as a tuple. */
export interface BinlogPosition {
  readonly filenum: bigint;
  readonly offset: bigint;
}

/** Pika positions by db name ('db0', 'db1', ...). */
export type PikaPositions = ReadonlyMap<string, BinlogPosition>;

export function compareBinlog(a: BinlogPosition, b: BinlogPosition): -1 | 0 | 1 {
  if (a.filenum !== b.filenum) return a.filenum < b.filenum ? -1 : 1;
  if (a.offset !== b.offset) return a.offset < b.offset ? -1 : 1;
  return 0;
}

/**
 * Bytes from `from` up to `to` when both are in the same binlog file and `from` ≤ `to`; null when
 * the files differ (Pika's file size is a server setting, so the distance across files is unknown)
 * or `from` is past `to`.
 */
export function binlogDistance(from: BinlogPosition, to: BinlogPosition): bigint | null {
  if (from.filenum !== to.filenum || from.offset > to.offset) return null;
  return to.offset - from.offset;
}

export function formatBinlog(p: BinlogPosition): string {
  return `${p.filenum}:${p.offset}`;
}

/** Db names in numeric order: db2 before db10. */
export function sortedDbNames(dbs: Iterable<string>): string[] {
  const num = (d: string) => {
    const m = /^db(\d+)$/.exec(d);
    return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
  };
  return [...dbs].sort((a, b) => num(a) - num(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** `db0=2:384,db1=0:0` — the form used in /status, logs and results. */
export function formatPikaPositions(positions: PikaPositions): string {
  return sortedDbNames(positions.keys())
    .map((db) => `${db}=${formatBinlog(positions.get(db)!)}`)
    .join(',');
}

export function samePikaPositions(a: PikaPositions, b: PikaPositions): boolean {
  if (a.size !== b.size) return false;
  for (const [db, p] of a) {
    const q = b.get(db);
    if (!q || compareBinlog(p, q) !== 0) return false;
  }
  return true;
}

export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
