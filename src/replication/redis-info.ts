/**
 * Redis `INFO replication` → a typed record. Pure; never throws. Unknown lines are ignored; a
 * missing or malformed field is null, which the convergence rules treat as "not converged".
 *
 * Fields read:
 *   role                      master | slave
 *   connected_slaves          how many `slaveN` lines to expect (a missing line is not a missing replica)
 *   slaveN                    ip=..,port=..,state=online|wait_bgsave|send_bulk,offset=<acked>,lag=<s>
 *   master_repl_offset        the master's replication offset
 *   master_replid             replication id (informational)
 *   master_host, master_port, master_link_status, master_sync_in_progress, slave_repl_offset
 *                             (role slave: the upstream link)
 */
import { formatAddress } from './addresses.js';
import { infoLines, parseAssignments, splitField } from './info-text.js';
import { parseSmallInt, parseU64 } from './positions.js';

export type ParsedRole = 'master' | 'replica' | 'unknown';

/** Replica states a Redis master reports in `slaveN:state=`; wait_bgsave and send_bulk are a full sync. */
export const REDIS_FULL_SYNC_STATES: readonly string[] = ['wait_bgsave', 'send_bulk'];

export interface RedisReplicaEntry {
  /** `slave0`, ... */
  readonly id: string;
  readonly ip: string | null;
  readonly port: number | null;
  /** `ip:port` as announced; `slaveN` when the ip is missing. */
  readonly address: string;
  /** online, wait_bgsave, send_bulk, ... ('' when missing). */
  readonly state: string;
  /** The offset the replica acknowledged (REPLCONF ACK), null when missing or malformed. */
  readonly offset: bigint | null;
  readonly lagSeconds: number | null;
}

export interface RedisUpstreamLink {
  readonly host: string | null;
  readonly port: number | null;
  /** master_link_status: true up, false down, null missing. */
  readonly linkUp: boolean | null;
  readonly syncInProgress: boolean | null;
  /** slave_repl_offset: what this replica has processed. */
  readonly replOffset: bigint | null;
}

export interface RedisReplicationInfo {
  readonly dialect: 'redis';
  readonly role: ParsedRole;
  readonly rawRole: string | null;
  readonly masterReplOffset: bigint | null;
  readonly replId: string | null;
  /** connected_slaves, null when missing. */
  readonly connectedReplicas: number | null;
  readonly replicas: readonly RedisReplicaEntry[];
  /** Set when role is replica (also for a chained replica, which lists its own replicas too). */
  readonly upstream: RedisUpstreamLink | null;
}

export function parseRedisReplication(text: string): RedisReplicationInfo {
  const fields = new Map<string, string>();
  const replicas: RedisReplicaEntry[] = [];
  for (const line of infoLines(text)) {
    const f = splitField(line);
    if (!f) continue;
    if (/^slave\d+$/.test(f.key)) {
      replicas.push(replicaEntry(f.key, f.value));
      continue;
    }
    if (!fields.has(f.key)) fields.set(f.key, f.value);
  }
  const rawRole = fields.get('role') ?? null;
  const role: ParsedRole = rawRole === 'master' ? 'master' : rawRole === 'slave' || rawRole === 'replica' ? 'replica' : 'unknown';
  const link = fields.get('master_link_status');
  const sync = fields.get('master_sync_in_progress');
  return {
    dialect: 'redis',
    role,
    rawRole,
    masterReplOffset: parseU64(fields.get('master_repl_offset')),
    replId: fields.get('master_replid') || null,
    connectedReplicas: parseSmallInt(fields.get('connected_slaves')),
    replicas,
    upstream:
      role === 'replica'
        ? {
            host: fields.get('master_host') || null,
            port: parseSmallInt(fields.get('master_port')),
            linkUp: link === 'up' ? true : link === 'down' ? false : null,
            syncInProgress: sync === '1' ? true : sync === '0' ? false : null,
            replOffset: parseU64(fields.get('slave_repl_offset')),
          }
        : null,
  };
}

function replicaEntry(id: string, value: string): RedisReplicaEntry {
  const a = parseAssignments(value);
  const ip = a.get('ip') || null;
  const port = parseSmallInt(a.get('port'));
  return {
    id,
    ip,
    port,
    address: ip !== null ? formatAddress(ip, port) : id,
    state: a.get('state') ?? '',
    offset: parseU64(a.get('offset')),
    lagSeconds: parseSmallInt(a.get('lag')),
  };
}
