/**
 * The `/status` body and `/readyz` verdict, built from the running parts. `StatusBody` is the one
 * declaration of the shape: the admin server sends it and the CLI's admin client reads it back.
 */
import type { ShutdownState } from '../observability/names.js';
import type { PhaseRecord } from '../shutdown/phase-runner.js';
import type { ReplicationSnapshot } from '../replication/watcher.js';

export interface StatusBody {
  /** The shutdown state: `running`, a phase name, `drained`, `exited`. */
  phase: ShutdownState;
  ready: boolean;
  backend: { address: string; up: boolean; kind: ReplicationSnapshot['kind']; role: ReplicationSnapshot['role'] };
  sessions: { total: number; byMode: Record<string, number> };
  inflight: number;
  replication: ReplicationSnapshot;
  /** null until a shutdown starts. */
  shutdown: { reason: string; startedAt: string; phases: readonly PhaseRecord[]; exitCode: number | null } | null;
}

/** What the status reads: narrow views of the coordinator, health check, watcher and registry. */
export interface StatusSources {
  backendAddress: string;
  coordinator: {
    readonly state: ShutdownState;
    readonly isShuttingDown: boolean;
    readonly shutdownReason: string | undefined;
    readonly startedAt: number;
    readonly records: readonly PhaseRecord[];
    readonly report: { exitCode: number } | undefined;
  };
  health: { readonly isUp: boolean; readonly error: string | undefined };
  watcher: { snapshot(): ReplicationSnapshot };
  registry: { readonly size: number; byMode(): Record<string, number>; inflight(): number };
}

/** /readyz: not ready once the shutdown starts, or while the backend is down. */
export function readiness(s: StatusSources): { ready: boolean; reason: string } {
  if (s.coordinator.isShuttingDown) return { ready: false, reason: `shutting down (${s.coordinator.state})` };
  if (!s.health.isUp) return { ready: false, reason: `backend ${s.backendAddress} is down: ${s.health.error ?? 'no answer yet'}` };
  return { ready: true, reason: 'ready' };
}

export function statusBody(s: StatusSources): StatusBody {
  const { coordinator, health, registry } = s;
  const w = s.watcher.snapshot();
  return {
    phase: coordinator.state,
    ready: !coordinator.isShuttingDown && health.isUp,
    backend: { address: s.backendAddress, up: health.isUp, kind: w.kind, role: w.role },
    sessions: { total: registry.size, byMode: registry.byMode() },
    inflight: registry.inflight(),
    replication: w,
    shutdown: coordinator.isShuttingDown
      ? {
          reason: coordinator.shutdownReason ?? '',
          startedAt: new Date(coordinator.startedAt).toISOString(),
          phases: coordinator.records,
          exitCode: coordinator.report?.exitCode ?? null,
        }
      : null,
  };
}
