/**
 * One poll's worth of facts (the master's INFO replication, and for Pika each replica's own), and
 * the pure steps from it to a target and to per-replica assessments (rules in convergence.ts).
 */
import {
  judgePikaReplica,
  judgeRedisReplica,
  pikaTargetMoved,
  redisTargetMoved,
  type PikaProbe,
  type ReplicaAssessment,
} from './convergence.js';
import type { PikaReplicaEntry, PikaReplicationInfo } from './pika-info.js';
import { formatPikaPositions, type PikaPositions } from './positions.js';
import type { ParsedRole, RedisReplicaEntry, RedisReplicationInfo } from './redis-info.js';

export type Observation =
  | { readonly dialect: 'redis'; readonly info: RedisReplicationInfo }
  | {
      readonly dialect: 'pika';
      readonly info: PikaReplicationInfo;
      /** By announced replica address. */
      readonly probes: ReadonlyMap<string, PikaProbe>;
    };

export type Target =
  { readonly dialect: 'redis'; readonly offset: bigint } | { readonly dialect: 'pika'; readonly positions: PikaPositions };

export function observedRole(obs: Observation): ParsedRole {
  return obs.info.role;
}

/** The master's current position; null when this poll did not show one. */
export function targetOf(obs: Observation): Target | null {
  if (obs.dialect === 'redis') return obs.info.masterReplOffset !== null ? { dialect: 'redis', offset: obs.info.masterReplOffset } : null;
  return obs.info.positions !== null ? { dialect: 'pika', positions: obs.info.positions } : null;
}

export function formatTarget(t: Target): string {
  return t.dialect === 'redis' ? t.offset.toString() : formatPikaPositions(t.positions);
}

/** True when the master's position advanced between two polls by more than its own heartbeat. */
export function targetMovedBetween(previous: Target, current: Target): boolean {
  if (previous.dialect === 'redis' && current.dialect === 'redis') return redisTargetMoved(previous.offset, current.offset);
  if (previous.dialect === 'pika' && current.dialect === 'pika') return pikaTargetMoved(previous.positions, current.positions);
  return true;
}

/** Announced addresses of the replicas this poll lists. */
export function listedReplicas(obs: Observation): string[] {
  return [...new Set(obs.info.replicas.map((r) => r.address))];
}

/**
 * Assesses every replica listed now plus every `expected` one (listed earlier in the same wait; a
 * missing one is unreachable), against `target`. Replicas counted by `connected_slaves` whose line
 * is missing get a placeholder that is never converged.
 */
export function assessReplicas(obs: Observation, target: Target, expected: Iterable<string> = []): ReplicaAssessment[] {
  const addresses = [...new Set([...listedReplicas(obs), ...expected])];
  const out: ReplicaAssessment[] = [];
  if (obs.dialect === 'redis' && target.dialect === 'redis') {
    const byAddress = new Map<string, RedisReplicaEntry>(obs.info.replicas.map((r) => [r.address, r]));
    const masterNow = obs.info.masterReplOffset ?? target.offset;
    for (const a of addresses) out.push(judgeRedisReplica(a, byAddress.get(a), target.offset, masterNow));
  } else if (obs.dialect === 'pika' && target.dialect === 'pika') {
    const byAddress = new Map<string, PikaReplicaEntry>(obs.info.replicas.map((r) => [r.address, r]));
    const masterNow = obs.info.positions ?? target.positions;
    for (const a of addresses) {
      out.push(judgePikaReplica({ address: a, entry: byAddress.get(a), probe: obs.probes.get(a), target: target.positions, masterNow }));
    }
  } else {
    for (const a of addresses) {
      out.push({
        result: { address: a, verdict: 'behind', behindBytes: null, position: null, detail: 'the backend kind changed during the wait' },
        state: 'down',
        lagBytes: null,
      });
    }
  }
  const missing = (obs.info.connectedReplicas ?? 0) - obs.info.replicas.length;
  for (let i = 0; i < missing && i < 64; i++) {
    const address = `slave${obs.info.replicas.length + i}`;
    out.push({
      result: {
        address,
        verdict: 'behind',
        behindBytes: null,
        position: null,
        detail: 'counted in connected_slaves but its slaveN line is missing',
      },
      state: 'down',
      lagBytes: null,
    });
  }
  return out;
}
