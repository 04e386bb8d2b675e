/**
 * The ports a Pika replica derives from the client port it is given (`slaveof H P`), Pika 3.5+/4.0:
 * it speaks protobuf to P+2000 (meta sync, try sync, binlog: every connection opened by the
 * replica, the master pushes binlog on it) and pulls full-sync files from P+10001 (rsync2).
 * The role names are the `port` label of the replication_front_* metrics.
 */
export const FRONT_PORT_ROLES = ['binlog', 'rsync'] as const;
export type FrontPortRole = (typeof FRONT_PORT_ROLES)[number];

export const PIKA_PORT_OFFSETS: Readonly<Record<FrontPortRole, number>> = { binlog: 2000, rsync: 10001 };

export const MAX_PORT = 65535;

/** The client port shifted to one of Pika's derived ports. */
export function shiftedPort(port: number, role: FrontPortRole): number {
  return port + PIKA_PORT_OFFSETS[role];
}
