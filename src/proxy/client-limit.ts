/**
 * How many clients the sidecar may hold, as Redis decides its own maxclients: the configured
 * `maxClients`, lowered so the process cannot run out of file descriptors first. Each client
 * costs two descriptors (its socket and its backend connection); some are kept for everything
 * else (warm pool, admin server, control and replica connections, logs), so a client beyond the
 * limit can still be accepted, told `-ERR max number of clients reached` and closed, instead of
 * being dropped unanswered by an accept() that failed with EMFILE.
 *
 * Linux only (/proc); elsewhere the configured value stands.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Descriptors kept aside for the admin server's connection cap, replicas, logs and slack. */
export const RESERVED_FDS = 64;
/** Descriptors one client costs: its socket and its backend connection. */
export const FDS_PER_CLIENT = 2;

/** The soft RLIMIT_NOFILE of this process, or undefined when it cannot be read. */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (m === null || m[1] === 'unlimited') return undefined;
  return Number(m[1]);
}

/** Descriptors open now, or 0 when they cannot be counted. */
export function openFileCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

export interface ClientLimit {
  /** The limit in force. */
  limit: number;
  /** Set when the open-file limit lowered the configured value. */
  lowered?: { configured: number; openFileLimit: number; inUse: number };
}

/** The configured limit, lowered to what the open-file limit leaves room for (at least 1). */
export function clientLimit(configured: number, opts: { openFileLimit: number | undefined; inUse: number; poolSize: number }): ClientLimit {
  if (opts.openFileLimit === undefined) return { limit: configured };
  const room = Math.floor((opts.openFileLimit - opts.inUse - opts.poolSize - RESERVED_FDS) / FDS_PER_CLIENT);
  if (room >= configured) return { limit: configured };
  return { limit: Math.max(1, room), lowered: { configured, openFileLimit: opts.openFileLimit, inUse: opts.inUse } };
}
