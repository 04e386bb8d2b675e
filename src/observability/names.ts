/**
 * Closed sets of label values. The same strings appear in logs, metric labels, /status and the README.
 */
export const SESSION_MODES = ['normal', 'transaction', 'blocked', 'subscribed', 'monitor', 'reply_off', 'replication_link'] as const;
export type SessionMode = (typeof SESSION_MODES)[number];

export const PHASES = ['intercept', 'drain', 'close_clients', 'replication_sync', 'release'] as const;
export type PhaseName = (typeof PHASES)[number];
/** Values of the shutdown_phase gauge: the phases plus the states before and between. */
export const SHUTDOWN_STATES = ['running', ...PHASES, 'drained', 'exited'] as const;
export type ShutdownState = (typeof SHUTDOWN_STATES)[number];

export const PHASE_OUTCOMES = ['completed', 'timed_out', 'forced', 'failed', 'skipped'] as const;
export type PhaseOutcome = (typeof PHASE_OUTCOMES)[number];

/** Why a client connection was closed (client_connections_closed_total{reason}). */
export const CLOSE_REASONS = [
  'client_quit', // the client closed or sent QUIT
  'backend_closed', // the backend closed its side
  'backend_unreachable', // no backend connection could be had
  'protocol_error', // malformed RESP from the client
  'drained', // closed idle at a command boundary during the drain
  'unblocked', // a blocked session released in close_clients
  'straggler', // closed at a frame boundary in close_clients
  'destroyed', // destroyed: phase deadline, forced shutdown or error
  'replication_link_closed', // a replica link through the sidecar closed after replication_sync
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

/** Why a new client was refused before it became a session (client_connections_refused_total{reason}). */
export const REFUSAL_REASONS = [
  'max_clients', // maxClients sessions were open (or the open-file limit allowed no more)
  'fd_exhausted', // the process ran out of file descriptors (EMFILE/ENFILE)
  'backend_refused', // the backend answered the new connection with an error (its own maxclients, ...)
  'protected_mode', // a non-loopback client while the backend needs no password (protected mode)
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export const REPLICA_STATES = ['online', 'full_sync', 'down'] as const;
export type ReplicaState = (typeof REPLICA_STATES)[number];

export const BACKEND_ROLES = ['master', 'replica', 'unknown'] as const;
export type BackendRole = (typeof BACKEND_ROLES)[number];

/** Fronted Pika replication ports: which way bytes went, and why a connection was refused at accept. */
export const FRONT_DIRECTIONS = ['to_backend', 'to_replica'] as const;
export type FrontDirection = (typeof FRONT_DIRECTIONS)[number];
export const FRONT_REFUSE_REASONS = ['shutting_down', 'backend_unreachable'] as const;
export type FrontRefuseReason = (typeof FRONT_REFUSE_REASONS)[number];
