/**
 * Which INFO dialect the backend speaks. Decided from `INFO server` — every Pika prints
 * `pika_version:` (4.0.1 prints `pika_version:4.0.0`), Redis prints `redis_version:` — and
 * overridable by configuration (`--backend-kind redis|pika`). `pika_version` wins when both appear,
 * in case a Pika release starts printing a compatibility `redis_version`.
 */
import type { BackendKind } from '../config/schema.js';
import { infoLines, splitField } from './info-text.js';

export type Dialect = 'redis' | 'pika' | 'unknown';

export interface DialectGuess {
  readonly dialect: Dialect;
  readonly version: string | null;
}

export function dialectFromInfoServer(text: string): DialectGuess {
  let redis: string | null = null;
  for (const line of infoLines(text)) {
    const f = splitField(line);
    if (!f) continue;
    if (f.key === 'pika_version') return { dialect: 'pika', version: f.value || null };
    if (f.key === 'redis_version' && redis === null) redis = f.value;
  }
  return redis !== null ? { dialect: 'redis', version: redis || null } : { dialect: 'unknown', version: null };
}

/**
 * A fallback when `INFO server` says neither: Pika's replication section carries binlog lines or a
 * `# Replication(MASTER)` header; Redis's carries `master_repl_offset`.
 */
export function dialectFromReplication(text: string): Dialect {
  if (/binlog_offset=|^# Replication\((MASTER|SLAVE)/m.test(text)) return 'pika';
  if (/^master_repl_offset:/m.test(text)) return 'redis';
  return 'unknown';
}

/** The configured kind wins; `auto` uses INFO server, then the replication text. */
export function resolveDialect(configured: BackendKind, infoServer: string | null, replication: string | null = null): Dialect {
  if (configured !== 'auto') return configured;
  const fromServer = infoServer !== null ? dialectFromInfoServer(infoServer).dialect : 'unknown';
  if (fromServer !== 'unknown') return fromServer;
  return replication !== null ? dialectFromReplication(replication) : 'unknown';
}
