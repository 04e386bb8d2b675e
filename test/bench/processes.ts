/**
 * The bench's child processes and the small probes it runs against them. Children are tracked by
 * the project's one "kill my children on exit" hook (demo/redis-process.ts `track`); a signal
 * runs the bench's other cleanups (temp dirs, sockets) and exits, which fires that hook.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { track } from '../../demo/redis-process.js';
import { waitFor } from '../support/wait.js';

export const LOOPBACK = '127.0.0.1';

const cleanups: Array<() => void> = [];

/** Runs at exit (normal, error or signal): for what is not a child process. */
export function atExit(cleanup: () => void): void {
  cleanups.push(cleanup);
}

export function installCleanupHandlers(log: (line: string) => void): void {
  process.on('exit', () => {
    for (const c of cleanups.splice(0)) c();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      log(`${sig} received; killing the child processes`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/** spawn(), tracked: the child is SIGKILLed if the bench exits before stopping it. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const proc = spawn(command, args, options);
  track(proc);
  return proc;
}

/** Keeps the last `max` characters of a stream, for error messages. */
export function tail(stream: NodeJS.ReadableStream | null, max = 8000): () => string {
  let text = '';
  stream?.on('data', (d: Buffer) => {
    text = (text + d.toString()).slice(-max);
  });
  return () => text;
}

export async function exitOf(proc: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null } | undefined> {
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode };
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  if ((await exitOf(proc, graceMs)) === undefined) {
    proc.kill('SIGKILL');
    await exitOf(proc, 5000);
  }
}

/**
 * Resolves once `ready()` is true; rejects at once if the process exits first (waitFor alone would
 * retry through that until its deadline), or when the deadline passes.
 */
export async function whenReady(proc: ChildProcess, ready: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  let settled = false;
  const exitedEarly = new Promise<never>((_resolve, reject) => {
    proc.once('exit', (code, signal) => {
      if (!settled) reject(new Error(`${what}: the process exited (code ${code ?? signal}) before it was ready`));
    });
  });
  exitedEarly.catch(() => {}); // observed by the race below; never an unhandled rejection later
  try {
    await Promise.race([exitedEarly, waitFor(ready, { timeoutMs, intervalMs: 50, what })]);
  } finally {
    settled = true;
  }
}

export async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, LOOPBACK);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export function httpGet(port: number, path: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: LOOPBACK, port, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** True when `command` can be run (found on PATH or by its path). */
export function haveBinary(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' }).status === 0;
}

let clockTicksPerSecond: number | undefined;
function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    const v = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
    clockTicksPerSecond = Number.isInteger(v) && v > 0 ? v : 100;
  }
  return clockTicksPerSecond;
}

/**
 * User + system CPU seconds a process has used (Linux /proc), or undefined. CPU per request is
 * steadier than req/s on a shared machine: background load steals time more than cycles per request.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes (/proc/<pid>/status VmRSS), or undefined. */
export function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kib === null ? undefined : Number(kib[1]) * 1024;
  } catch {
    return undefined;
  }
}
