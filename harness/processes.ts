/**
 * Child processes of the demo, the tests and the bench: the one place that kills them on exit.
 *
 * `spawnTracked` starts a child in its own process group (`detached`): a Ctrl-C in the terminal
 * then reaches only this process, which stops its children in order, and a kill reaches the whole
 * group (a redis-server's forked save or sync child too). `trackChild` tracks a child someone else
 * spawned (in its own group or not). One exit hook SIGKILLs every tracked child (its group, where it
 * has one) still alive when this process exits; a SIGINT/SIGTERM/SIGHUP that nobody else listens
 * for does the same, then ends this process as the signal would have.
 *
 * `stopChild` is the graceful stop (SIGTERM, SIGKILL after a bound), `killChild` the SIGKILL; both
 * resolve once the child has exited and do nothing for one that has.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { waitFor } from './wait.js';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Tracked children; true where the child leads its own process group. */
const live = new Map<ChildProcess, boolean>();
let hooksInstalled = false;

const TERMINATING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function killAllNow(): void {
  for (const [child, group] of live) sendSignal(child, 'SIGKILL', group);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of TERMINATING_SIGNALS) {
    const onSignal = (): void => {
      // Someone else handles this signal (the demo's Ctrl-C, the bench's cleanup): theirs to act on.
      if (process.listenerCount(sig) > 1) return;
      killAllNow();
      process.off(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Sends `sig` to the child (to its group where `group`); false when it is gone. */
function sendSignal(child: ChildProcess, sig: NodeJS.Signals, group: boolean): boolean {
  if (!isRunning(child) || child.pid === undefined) return false;
  try {
    if (group) process.kill(-child.pid, sig);
    else child.kill(sig);
    return true;
  } catch {
    return false; // already gone
  }
}

/**
 * Tracks an already-spawned child: SIGKILLed (its whole group when `group`, i.e. it was spawned
 * with `detached: true`) if this process exits while it runs. Returns the child.
 */
export function trackChild<C extends ChildProcess>(child: C, opts: { group?: boolean } = {}): C {
  installHooks();
  if (!isRunning(child)) return child;
  live.set(child, opts.group === true);
  child.once('exit', () => live.delete(child));
  return child;
}

/** spawn(), tracked, in its own process group unless `detached: false` is given. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const detached = options.detached ?? true;
  const child = spawn(command, args, { ...options, detached });
  return trackChild(child, { group: detached });
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends a signal to the child itself (not its group); false when it is gone. */
export function signalChild(child: ChildProcess, sig: NodeJS.Signals): boolean {
  return sendSignal(child, sig, false);
}

/** Resolves with the exit once the child has exited (at once when it has); a spawn error counts as exit 127. */
export function exitOfChild(child: ChildProcess): Promise<ChildExit> {
  if (!isRunning(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => {
      if (child.pid === undefined) resolve({ code: 127, signal: null });
    });
  });
}

/** The exit within `timeoutMs`, or undefined when the child still runs then. */
export async function exitWithin(child: ChildProcess, timeoutMs: number): Promise<ChildExit | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    // Unref'd: the child's own handle keeps the loop alive while it runs.
    timer = setTimeout(() => resolve(undefined), timeoutMs).unref();
  });
  try {
    return await Promise.race([exitOfChild(child), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILL (the whole group of a tracked group leader), then waits for the exit. Idempotent. */
export async function killChild(child: ChildProcess): Promise<ChildExit> {
  sendSignal(child, 'SIGKILL', live.get(child) === true);
  return exitOfChild(child);
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves once it has exited. Idempotent. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<ChildExit> {
  if (!isRunning(child)) return exitOfChild(child);
  signalChild(child, 'SIGTERM');
  return (await exitWithin(child, graceMs)) ?? killChild(child);
}

/** A process exit as a shell would report it: the code, or 128 + the signal number. */
export function exitCodeOf(exit: ChildExit): number {
  if (exit.code !== null) return exit.code;
  const signals: Partial<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return 128 + (exit.signal !== null ? (signals[exit.signal] ?? 0) : 0);
}

type Stream = NodeJS.ReadableStream | null | undefined;

/** Keeps the last `max` characters of a stream (or of several, interleaved as they come), for error messages. */
export function tail(streams: Stream | readonly Stream[], max = 8000): () => string {
  let text = '';
  const keep = (d: Buffer | string): void => {
    text = (text + d.toString()).slice(-max);
  };
  for (const stream of Array.isArray(streams) ? streams : [streams]) stream?.on('data', keep);
  return () => text;
}

/** True when `command` can be run (found on PATH or by its path). */
export function haveBinary(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' }).status === 0;
}

/**
 * Resolves once `ready()` is true; rejects at once if the child exits first (waitFor alone would
 * retry through that until its deadline), or when the deadline passes.
 */
export async function whenReady(
  child: ChildProcess,
  ready: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  let settled = false;
  const exitedEarly = exitOfChild(child).then((exit) => {
    if (!settled) throw new Error(`${what}: the process exited (code ${exit.code ?? exit.signal}) before it was ready`);
  });
  exitedEarly.catch(() => {}); // observed by the race below; never an unhandled rejection later
  try {
    await Promise.race([exitedEarly.then(() => new Promise<never>(() => {})), waitFor(ready, { timeoutMs, intervalMs, what })]);
  } finally {
    settled = true;
  }
}
