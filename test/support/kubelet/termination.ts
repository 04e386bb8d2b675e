/**
 * Pod deletion as the kubelet does it: regular containers' preStop hooks run together, each
 * container gets SIGTERM after its own hook; native sidecars (initContainers with restartPolicy
 * Always) only after every regular container exited, in reverse order; SIGKILL when the grace
 * period runs out. Every step lands on a timeline.
 */
import type { ProcessExit } from './container-process.js';
import type { HookResult } from './hooks.js';
import type { LocalPod } from './local-pod.js';

export type TimelineEventName = 'preStop:start' | 'preStop:end' | 'SIGTERM' | 'SIGKILL' | 'exited' | 'already-exited';

export interface TimelineEvent {
  /** Milliseconds since the pod's deletion. */
  at: number;
  container: string;
  event: TimelineEventName;
  detail: string;
}

export interface ContainerTermination {
  name: string;
  /** undefined when the container had already exited and the kubelet ran nothing. */
  hook: HookResult | undefined;
  /** The main process was still running when its preStop hook returned. */
  runningAfterHook: boolean;
  /** Date.now() when SIGTERM was sent; undefined if it exited before. */
  sigtermAt: number | undefined;
  killed: boolean;
  exit: ProcessExit;
}

export interface TerminationResult {
  /** Date.now() at the deletion. */
  deletedAt: number;
  gracePeriodMs: number;
  timeline: TimelineEvent[];
  containers: Map<string, ContainerTermination>;
}

export interface TerminationOptions {
  gracePeriodSeconds: number;
  /**
   * Regular containers: the order of their SIGTERMs (each still waits for its own preStop hook).
   * The kubelet promises no order; a test names one to cover each. Default: as hooks return.
   */
  sigtermOrder?: readonly string[];
  /** Called with each event as it happens (the result has them all too). */
  onEvent?: (e: TimelineEvent) => void;
}

/** The kubelet gives a container at least this long after SIGTERM, even past the grace period. */
export const MIN_GRACE_AFTER_SIGTERM_MS = 2000;

/**
 * Deletes the pod as the kubelet does: regular containers together (preStop, then SIGTERM, then
 * SIGKILL at the end of the grace period); once they have all exited, native sidecars one by one
 * in reverse order, the same way. Every container of the pod must have a process.
 */
export async function terminatePod(pod: LocalPod, opts: TerminationOptions): Promise<TerminationResult> {
  const deletedAt = Date.now();
  const gracePeriodMs = opts.gracePeriodSeconds * 1000;
  const deadline = deletedAt + gracePeriodMs;
  const timeline: TimelineEvent[] = [];
  const record = (container: string, event: TimelineEventName, detail = '') => {
    const e = { at: Date.now() - deletedAt, container, event, detail };
    timeline.push(e);
    opts.onEvent?.(e);
  };
  const spec = pod.deployment.podSpec;
  const sidecars = pod.deployment.nativeSidecars.map((c) => c.name).reverse();
  const regular = spec.containers.map((c) => c.name);
  const order = opts.sigtermOrder ?? [];
  for (const name of order) if (!regular.includes(name)) throw new Error(`sigtermOrder names ${name}, not a regular container`);

  for (const name of [...regular, ...sidecars]) {
    void pod.process(name).exited.then((e) => record(name, 'exited', `code=${e.code} signal=${e.signal}`));
  }
  const sigtermSent = new Map(order.map((name) => [name, deferred()]));

  const stop = async (name: string): Promise<ContainerTermination> => {
    const proc = pod.process(name);
    if (!proc.running) {
      record(name, 'already-exited');
      sigtermSent.get(name)?.resolve();
      return { name, hook: undefined, runningAfterHook: false, sigtermAt: undefined, killed: false, exit: await proc.exited };
    }
    record(name, 'preStop:start');
    const hook = await pod.runPreStop(name, deadline);
    record(name, 'preStop:end', hookSummary(hook));
    const runningAfterHook = proc.running;
    const before = order.indexOf(name) > 0 ? sigtermSent.get(order[order.indexOf(name) - 1]!) : undefined;
    if (before) await before.promise;
    let sigtermAt: number | undefined;
    if (proc.running) {
      sigtermAt = Date.now();
      record(name, 'SIGTERM');
      proc.signal('SIGTERM');
    }
    sigtermSent.get(name)?.resolve();
    const waitMs = Math.max(deadline - Date.now(), MIN_GRACE_AFTER_SIGTERM_MS);
    const inTime = await Promise.race([proc.exited.then(() => true), delay(waitMs).then(() => false)]);
    let killed = false;
    if (!inTime && proc.running) {
      killed = true;
      record(name, 'SIGKILL', 'grace period over');
      proc.signal('SIGKILL');
    }
    return { name, hook, runningAfterHook, sigtermAt, killed, exit: await proc.exited };
  };

  const containers = new Map<string, ContainerTermination>();
  for (const r of await Promise.all(regular.map(stop))) containers.set(r.name, r);
  for (const name of sidecars) containers.set(name, await stop(name));
  timeline.sort((a, b) => a.at - b.at);
  return { deletedAt, gracePeriodMs, timeline, containers };
}

export function hookSummary(h: HookResult): string {
  if (h.kind === 'httpGet') return `httpGet ${h.status ?? h.error ?? '?'}`;
  if (h.kind === 'exec') return `exec exit=${h.exitCode ?? h.error ?? '?'}`;
  return h.kind;
}

/** The timeline as text, for failure messages. */
export function formatTimeline(timeline: readonly TimelineEvent[]): string {
  return timeline
    .map((e) => `${String(e.at).padStart(6)} ms  ${e.container.padEnd(14)} ${e.event}${e.detail ? `  ${e.detail}` : ''}`)
    .join('\n');
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
