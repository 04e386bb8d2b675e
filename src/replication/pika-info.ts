/**
 * Pika `INFO replication` (3.3 through 4.0) → a typed record. Pure; never throws. Format rules and
 * samples: shared/fixtures/pika-info/README.md.
 *
 * Lines read:
 *   role:master | slave | master&&slave        (the `# Replication(MASTER)` header is not trusted)
 *   connected_slaves:N
 *   slaveN:ip=IP,port=PORT,conn_fd=FD,lag=(db0:L)(db1:L)   PORT is the replica's client port;
 *                                                          L = bytes | `full syncing` | `not syncing`
 *   db0 binlog_offset=F O,...  (≤ 3.5.2)   db0:binlog_offset=F O,...  (≥ 3.5.3)
 *   master_host, master_port, master_link_status           (role slave)
 *   repl_connect_status:  then one `dbN:<state>` line per db (≥ 3.5.5 / 4.0) — matched by pattern,
 *                         after the binlog lines, which share the `dbN:` prefix
 *   db_repl_state:(db0:WaitDBSync)(db1:NoConnect)          (a replica whose dbs are not connected)
 *   is_eligible_for_master_election:true|false             (4.0)
 *   ReplicationID / ReplicationID:                          (informational)
 */
import { formatAddress } from './addresses.js';
import { infoLines, parseAssignments, parseParenList, splitField } from './info-text.js';
import { PIKA_LAG_WRAP_THRESHOLD, parseSmallInt, parseU64, type BinlogPosition } from './positions.js';
import type { ParsedRole } from './redis-info.js';

/** One db's lag as a master reports it for a replica. */
export type PikaLag =
  | { readonly kind: 'bytes'; readonly bytes: bigint }
  | { readonly kind: 'full_syncing' }
  | { readonly kind: 'not_syncing' }
  /** Wrapped (above 2^62) or unreadable: never "caught up". */
  | { readonly kind: 'unknown'; readonly raw: string };

export interface PikaReplicaEntry {
  readonly id: string;
  readonly ip: string | null;
  /** The replica's client port (where its own INFO answers). */
  readonly port: number | null;
  readonly address: string;
  readonly connFd: number | null;
  readonly lags: ReadonlyMap<string, PikaLag>;
}

export interface PikaUpstreamLink {
  readonly host: string | null;
  readonly port: number | null;
  readonly linkUp: boolean | null;
}

export interface PikaReplicationInfo {
  readonly dialect: 'pika';
  readonly role: ParsedRole;
  readonly rawRole: string | null;
  /** Binlog position per db; null when no binlog line was readable or one was malformed. */
  readonly positions: ReadonlyMap<string, BinlogPosition> | null;
  readonly connectedReplicas: number | null;
  readonly replicas: readonly PikaReplicaEntry[];
  readonly upstream: PikaUpstreamLink | null;
  /** `repl_connect_status` block (db → state), null when the server does not print it. */
  readonly connectStatus: ReadonlyMap<string, string> | null;
  /** `db_repl_state:(dbN:State)...`, null when absent. */
  readonly dbReplState: ReadonlyMap<string, string> | null;
  readonly eligibleForElection: boolean | null;
  readonly replId: string | null;
  /** This server, as a replica, shows a full sync in progress. */
  readonly inFullSync: boolean;
  /** This server, as a replica, has its link up and every db connected (positions not compared). */
  readonly linkReady: boolean;
}

const BINLOG_LINE = /^(db\d+)[ :]binlog_offset=(\d+)\s+(\d+)(?:,|$)/;
const DB_STATE_LINE = /^(db\d+):(.*)$/;

export function parsePikaReplication(text: string): PikaReplicationInfo {
  const fields = new Map<string, string>();
  const replicas: PikaReplicaEntry[] = [];
  const positions = new Map<string, BinlogPosition>();
  let positionsBroken = false;
  let connectStatus: Map<string, string> | null = null;
  let inConnectStatus = false;

  for (const line of infoLines(text)) {
    if (line.includes('binlog_offset')) {
      inConnectStatus = false;
      const m = BINLOG_LINE.exec(line);
      const filenum = parseU64(m?.[2]);
      const offset = parseU64(m?.[3]);
      if (m && filenum !== null && offset !== null) positions.set(m[1]!, { filenum, offset });
      else positionsBroken = true;
      continue;
    }
    if (inConnectStatus) {
      const m = DB_STATE_LINE.exec(line);
      if (m) {
        connectStatus!.set(m[1]!, m[2]!.trim());
        continue;
      }
      inConnectStatus = false;
    }
    // `ReplicationID: abc` (3.5.1) and `ReplicationID:abc` (3.5.3+) both split fine.
    const f = splitField(line);
    if (!f) continue;
    if (f.key === 'repl_connect_status') {
      connectStatus = new Map();
      inConnectStatus = true;
      continue;
    }
    if (/^slave\d+$/.test(f.key)) {
      replicas.push(replicaEntry(f.key, f.value));
      continue;
    }
    if (!fields.has(f.key)) fields.set(f.key, f.value);
  }

  const rawRole = fields.get('role') ?? null;
  // `master&&slave` is a chained replica: its writes come from upstream, so it counts as a replica.
  const role: ParsedRole = rawRole === 'master' ? 'master' : rawRole === 'slave' || rawRole === 'master&&slave' ? 'replica' : 'unknown';
  const link = fields.get('master_link_status');
  const linkUp = link === 'up' ? true : link === 'down' ? false : null;
  const replStateText = fields.get('db_repl_state');
  const dbReplState = replStateText !== undefined ? parseParenList(replStateText) : null;
  const eligible = fields.get('is_eligible_for_master_election');
  const eligibleForElection = eligible === 'true' ? true : eligible === 'false' ? false : null;

  const inFullSync =
    [...(dbReplState?.values() ?? [])].some(isFullSyncState) ||
    [...(connectStatus?.values() ?? [])].some(isFullSyncState) ||
    eligibleForElection === false;
  const linkReady =
    linkUp === true &&
    [...(dbReplState?.values() ?? [])].every((s) => /^connected$/i.test(s)) &&
    [...(connectStatus?.values() ?? [])].every((s) => s === 'connected');

  return {
    dialect: 'pika',
    role,
    rawRole,
    positions: positions.size > 0 && !positionsBroken ? positions : null,
    connectedReplicas: parseSmallInt(fields.get('connected_slaves')),
    replicas,
    upstream:
      role === 'replica' ? { host: fields.get('master_host') || null, port: parseSmallInt(fields.get('master_port')), linkUp } : null,
    connectStatus,
    dbReplState,
    eligibleForElection,
    replId: fields.get('ReplicationID') || null,
    inFullSync,
    linkReady,
  };
}

/**
 * Full-sync states: WaitDBSync / TryDBSync (db_repl_state), syncing_full (repl_connect_status).
 * NoConnect alone is a link that is down (a master that went away), not a full sync.
 */
function isFullSyncState(state: string): boolean {
  return /dbsync|full/i.test(state);
}

export function parsePikaLag(raw: string): PikaLag {
  const t = raw.trim();
  if (t === 'full syncing') return { kind: 'full_syncing' };
  if (t === 'not syncing') return { kind: 'not_syncing' };
  const bytes = parseU64(t);
  if (bytes === null || bytes > PIKA_LAG_WRAP_THRESHOLD) return { kind: 'unknown', raw: t };
  return { kind: 'bytes', bytes };
}

function replicaEntry(id: string, value: string): PikaReplicaEntry {
  // `lag=(db0:0)(db1:0)` holds no commas, but cut it off first so a stray one cannot split it.
  const lagAt = value.indexOf('lag=');
  const head = lagAt >= 0 ? value.slice(0, lagAt) : value;
  const a = parseAssignments(head);
  const lags = new Map<string, PikaLag>();
  if (lagAt >= 0) for (const [db, raw] of parseParenList(value.slice(lagAt + 4))) lags.set(db, parsePikaLag(raw));
  const ip = a.get('ip') || null;
  const port = parseSmallInt(a.get('port'));
  return { id, ip, port, address: ip !== null ? formatAddress(ip, port) : id, connFd: parseSmallInt(a.get('conn_fd')), lags };
}

/** A master listing a replica in full sync (`full syncing` / `not syncing`), or a replica that is in one. */
export function pikaFullSyncInProgress(info: PikaReplicationInfo): boolean {
  return info.inFullSync || info.replicas.some((r) => replicaEntryInFullSync(r));
}

export function replicaEntryInFullSync(r: PikaReplicaEntry): boolean {
  return [...r.lags.values()].some((l) => l.kind === 'full_syncing' || l.kind === 'not_syncing');
}
