/**
 * What "converged" means — the rules of the replication_sync phase (design §2 I3, §6).
 *
 * Both backends
 * - The TARGET is the master's position read at the start of the wait, after the drain stopped
 *   every write that goes through the sidecar (on Redis with `pauseWrites`, read after
 *   `CLIENT PAUSE <ms> WRITE` was applied, so writes that bypass the sidecar are held too).
 * - The replicas are those the master lists in its `slaveN` lines during the wait. A replica that
 *   was listed and disappears is `unreachable`; one that appears is waited for as well.
 * - CONVERGED = every replica's verdict is `converged`, and still is when checked again
 *   `replication.settleMs` later. Anything unknown (no role line, no position, an unreadable
 *   offset, state or lag) is never converged.
 * - The backend is itself a replica (`role:slave`, Pika `role:master&&slave`): nothing downstream
 *   to wait for — outcome `skipped`. A master with no replica: outcome `skipped`.
 * - A replica in full sync is waited for within the budget. A replica ahead of the master is
 *   `diverged`: waiting cannot fix it; when every replica not converged is diverged the wait ends
 *   at once with outcome `failed`.
 * - The target moving during the wait means writes bypass the sidecar: logged at warn and reported
 *   as `targetMoved`. The verdicts still compare against the recorded target.
 *
 * Redis — read on the master only (`INFO replication`):
 * - target = `master_repl_offset`.
 * - per replica `slaveN:ip=IP,port=PORT,state=S,offset=O,lag=L` (O = the offset the replica
 *   acknowledged with REPLCONF ACK, about once per second):
 *     S = wait_bgsave | send_bulk                → full_sync
 *     S ≠ online                                 → behind (detail names S)
 *     O > master_repl_offset in the same reply   → diverged
 *     O ≥ target                                 → converged (never wait for O = the current
 *                                                  offset: the master's own PINGs to its replicas
 *                                                  grow it by 14 bytes every repl-ping-replica-period)
 *     otherwise                                  → behind by target − O bytes
 * - target moved = `master_repl_offset` grew by more than one PING (14 bytes) between two polls.
 *
 * Pika — read on the master AND on each replica (its own `INFO replication` at the client port
 * named in the master's `slaveN` line, or its configured address override):
 * - target = the master's per-db binlog positions, `dbN:binlog_offset=F O` (also `dbN binlog_offset=`
 *   before 3.5.3), each a tuple (F, O) compared as unsigned 64-bit integers.
 * - per replica:
 *     no longer in the master's `slaveN` lines                      → unreachable
 *     master lag `(dbN:full syncing)` or `(dbN:not syncing)`         → full_sync
 *     its own INFO cannot be read                                    → unreachable
 *     its own INFO shows a full sync: `db_repl_state` WaitDBSync/TryDBSync, a
 *       `repl_connect_status` db `syncing_full`, or `is_eligible_for_master_election:false` → full_sync
 *     `master_link_status` ≠ up, any other `db_repl_state` entry, or a `repl_connect_status` db
 *       ≠ `connected`                                                → behind
 *     for every db of the target, the replica's `dbN:binlog_offset=F O`:
 *       missing or < target                                          → behind
 *       > the master's position read after the replica's             → diverged
 *       otherwise (target ≤ replica ≤ master now)                    → that db has reached the target
 *     every db reached                                               → converged
 *   With no write bypassing the sidecar the master's position is the target, so "reached" is
 *   exactly "equal to the target". Dbs the replica has and the master does not list are ignored.
 * - The master's `lag=(dbN:L)` counts bytes SENT, not acknowledged: `lag=(db0:0)` alone proves
 *   nothing and is only a fallback for the lag metric. A lag above 2^62 is a wrapped subtraction:
 *   unknown, never caught up.
 * - behind by = Σ over dbs of (target O − replica O) when both are in the same binlog file; unknown
 *   (null) when a db is behind by a whole file or more.
 * - target moved = any db position differs between two polls.
 *
 * This module is pure: the watcher feeds it parsed INFO and acts on the verdicts.
 */
import type { ReplicaState } from '../observability/names.js';
import type { PikaReplicaEntry, PikaReplicationInfo } from './pika-info.js';
import { REDIS_FULL_SYNC_STATES, type RedisReplicaEntry } from './redis-info.js';
import {
  binlogDistance,
  compareBinlog,
  formatPikaPositions,
  maxBig,
  samePikaPositions,
  sortedDbNames,
  type BinlogPosition,
  type PikaPositions,
} from './positions.js';

export type ReplicaVerdict = 'converged' | 'behind' | 'unreachable' | 'diverged' | 'full_sync';

export interface ReplicaResult {
  /** As the master announces it: `ip:port`. */
  address: string;
  verdict: ReplicaVerdict;
  /**
   * Bytes behind the target as a decimal string (JSON-ready: offsets are 64-bit); null when unknown
   * (full sync, unreachable, across binlog files).
   */
  behindBytes: string | null;
  /** Redis: acknowledged offset; Pika: `db0=F:O,...` from the replica's own INFO. */
  position: string | null;
  detail?: string;
}

/** Whether `CLIENT PAUSE … WRITE` held bypassing writes during the wait. */
export type WritePauseOutcome = 'applied' | 'unsupported' | 'failed' | 'off';

export interface ConvergenceResult {
  outcome: 'converged' | 'timed_out' | 'aborted' | 'skipped' | 'failed';
  reason: string;
  kind: 'redis' | 'pika' | 'unknown';
  target: string | null;
  targetMoved: boolean;
  replicas: ReplicaResult[];
  durationMs: number;
  writePause?: WritePauseOutcome;
}

/** A verdict plus what the metrics and /status show for the replica. */
export interface ReplicaAssessment {
  readonly result: ReplicaResult;
  readonly state: ReplicaState;
  /** Behind the master's current position (the lag metric); null = unknown. */
  readonly lagBytes: bigint | null;
}

/** `*1\r\n$4\r\nPING\r\n`: what a Redis master's periodic PING adds to its offset. */
export const REDIS_PING_BYTES = 14n;

export function judgeRedisReplica(
  address: string,
  entry: RedisReplicaEntry | undefined,
  target: bigint,
  masterNow: bigint,
): ReplicaAssessment {
  if (!entry) {
    return {
      result: { address, verdict: 'unreachable', behindBytes: null, position: null, detail: 'no longer listed by the master' },
      state: 'down',
      lagBytes: null,
    };
  }
  const position = entry.offset !== null ? entry.offset.toString() : null;
  if (REDIS_FULL_SYNC_STATES.includes(entry.state)) {
    return {
      result: { address, verdict: 'full_sync', behindBytes: null, position, detail: `full sync in progress (state=${entry.state})` },
      state: 'full_sync',
      lagBytes: null,
    };
  }
  if (entry.state !== 'online') {
    return {
      result: { address, verdict: 'behind', behindBytes: null, position, detail: `state=${entry.state || 'missing'}` },
      state: 'down',
      lagBytes: null,
    };
  }
  if (entry.offset === null) {
    return {
      result: { address, verdict: 'behind', behindBytes: null, position, detail: 'acknowledged offset unknown' },
      state: 'online',
      lagBytes: null,
    };
  }
  const lagBytes = maxBig(0n, masterNow - entry.offset);
  if (entry.offset > masterNow) {
    return {
      result: {
        address,
        verdict: 'diverged',
        behindBytes: null,
        position,
        detail: `acknowledged offset ${entry.offset} is ahead of the master's ${masterNow}`,
      },
      state: 'online',
      lagBytes,
    };
  }
  if (entry.offset >= target) {
    return { result: { address, verdict: 'converged', behindBytes: '0', position }, state: 'online', lagBytes };
  }
  const behind = target - entry.offset;
  return {
    result: { address, verdict: 'behind', behindBytes: behind.toString(), position, detail: `behind by ${behind} bytes` },
    state: 'online',
    lagBytes,
  };
}

/** A replica's own INFO, or why it could not be read. */
export type PikaProbe = { readonly ok: true; readonly info: PikaReplicationInfo } | { readonly ok: false; readonly error: string };

export function judgePikaReplica(input: {
  address: string;
  entry: PikaReplicaEntry | undefined;
  probe: PikaProbe | undefined;
  target: PikaPositions;
  masterNow: PikaPositions;
}): ReplicaAssessment {
  const { address, entry, probe, target, masterNow } = input;
  const own = probe?.ok ? probe.info : null;
  const position = own?.positions ? formatPikaPositions(own.positions) : null;
  const lagBytes = pikaLagBytes(entry, own, masterNow);
  const result = (verdict: ReplicaVerdict, behind: bigint | null, detail?: string): ReplicaResult => {
    const behindBytes = behind === null ? null : behind.toString();
    return detail !== undefined ? { address, verdict, behindBytes, position, detail } : { address, verdict, behindBytes, position };
  };

  if (!entry) return { result: result('unreachable', null, 'no longer listed by the master'), state: 'down', lagBytes: null };
  const syncingDbs = [...entry.lags].filter(([, l]) => l.kind === 'full_syncing' || l.kind === 'not_syncing').map(([db]) => db);
  if (syncingDbs.length > 0) {
    return {
      result: result('full_sync', null, `master reports a full sync for ${syncingDbs.join(', ')}`),
      state: 'full_sync',
      lagBytes: null,
    };
  }
  if (!probe || !own) {
    const why = probe && !probe.ok ? probe.error : 'not probed';
    return { result: result('unreachable', null, `its own INFO could not be read: ${why}`), state: 'down', lagBytes };
  }
  if (own.inFullSync)
    return { result: result('full_sync', null, 'the replica reports a full sync in progress'), state: 'full_sync', lagBytes: null };
  if (!own.linkReady) return { result: result('behind', null, linkProblem(own)), state: 'down', lagBytes };
  if (!own.positions) return { result: result('behind', null, 'its binlog position is unknown'), state: 'online', lagBytes };

  const behindDbs: string[] = [];
  const aheadDbs: string[] = [];
  let behindBytes: bigint | null = 0n;
  for (const db of sortedDbNames(target.keys())) {
    const t = target.get(db)!;
    const r = own.positions.get(db);
    if (!r) {
      behindDbs.push(`${db} missing`);
      behindBytes = null;
      continue;
    }
    if (compareBinlog(r, t) < 0) {
      behindDbs.push(db);
      const d = binlogDistance(r, t);
      behindBytes = behindBytes === null || d === null ? null : behindBytes + d;
      continue;
    }
    const now = masterNow.get(db);
    const ceiling: BinlogPosition = now && compareBinlog(now, t) > 0 ? now : t;
    if (compareBinlog(r, ceiling) > 0) aheadDbs.push(db);
  }
  if (aheadDbs.length > 0) {
    return {
      result: result('diverged', null, `replica position is ahead of the master for ${aheadDbs.join(', ')}`),
      state: 'online',
      lagBytes,
    };
  }
  if (behindDbs.length > 0) {
    const by = behindBytes !== null ? `${behindBytes} bytes` : 'an unknown number of bytes (another binlog file)';
    return { result: result('behind', behindBytes, `behind by ${by} (${behindDbs.join(', ')})`), state: 'online', lagBytes };
  }
  return { result: result('converged', 0n), state: 'online', lagBytes };
}

function linkProblem(own: PikaReplicationInfo): string {
  if (own.role !== 'replica') return `its link to the master is not up (role ${own.rawRole ?? 'missing'})`;
  if (own.upstream?.linkUp !== true) return `master_link_status is ${own.upstream?.linkUp === false ? 'down' : 'missing'}`;
  const states = [...(own.dbReplState ?? []), ...(own.connectStatus ?? [])]
    .filter(([, s]) => s !== 'connected')
    .map(([db, s]) => `${db}:${s}`);
  return `not every db is connected (${states.join(', ')})`;
}

/**
 * Bytes the replica is behind the master's current position: from its own position when every db
 * is in the same binlog file as the master's, else the master's `lag` (bytes sent; a lower bound)
 * when every db has a readable one, else null.
 */
export function pikaLagBytes(
  entry: PikaReplicaEntry | undefined,
  own: PikaReplicationInfo | null,
  masterNow: PikaPositions,
): bigint | null {
  if (own?.positions && masterNow.size > 0) {
    let sum: bigint | null = 0n;
    for (const [db, m] of masterNow) {
      const r = own.positions.get(db);
      const d = r ? binlogDistance(r, m) : null;
      if (d === null) {
        sum = null;
        break;
      }
      sum += d;
    }
    if (sum !== null) return sum;
  }
  if (!entry || entry.lags.size === 0) return null;
  let sum = 0n;
  for (const lag of entry.lags.values()) {
    if (lag.kind !== 'bytes') return null;
    sum += lag.bytes;
  }
  return sum;
}

export type Summary = 'converged' | 'diverged' | 'waiting';

/** converged: every replica converged; diverged: every replica not converged is diverged (waiting
 * cannot help); waiting: keep polling. An empty list is converged (the caller decides whether that
 * means `skipped`). */
export function summarizeVerdicts(results: readonly ReplicaResult[]): Summary {
  const open = results.filter((r) => r.verdict !== 'converged');
  if (open.length === 0) return 'converged';
  return open.every((r) => r.verdict === 'diverged') ? 'diverged' : 'waiting';
}

export function redisTargetMoved(previous: bigint, current: bigint): boolean {
  return current - previous > REDIS_PING_BYTES;
}

export function pikaTargetMoved(previous: PikaPositions, current: PikaPositions): boolean {
  return !samePikaPositions(previous, current);
}

/** `127.0.0.1:7001 behind (behind by 120 bytes)` — one replica in a log line or a result reason. */
export function describeReplica(r: ReplicaResult): string {
  return `${r.address} ${r.verdict}${r.detail !== undefined ? ` (${r.detail})` : ''}`;
}
