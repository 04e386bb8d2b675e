/**
 * Idle sessions: memory per idle connection of every target (RSS delta), and the sidecar's drain
 * of them after SIGTERM (a fresh sidecar: every client closed, then the process exit).
 */
import net from 'node:net';
import type { RedisServer } from '../../harness/redis-server.js';
import { httpGet } from '../../harness/http.js';
import { exitWithin, stopChild } from '../../harness/processes.js';
import { atExit, LOOPBACK, rssBytes } from './processes.js';
import type { BenchSettings } from './settings.js';
import { startSidecarProcess, type BenchSidecar } from './sidecar-process.js';
import type { Target } from './targets.js';

/** Flags of the sidecar measured with idle sessions: no announce delay, no metrics linger. */
export const EXIT_MEASURE_ARGS = ['--announce-delay', '0', '--metrics-linger', '0'];

export interface DrainResult {
  sessions: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number | undefined;
  heapAfter: number | undefined;
  rssSource: string;
  /** SIGTERM → every idle client connection closed by the sidecar (undefined: not all were). */
  allClosedMs: number | undefined;
  closedBeforeExit: number;
  /** SIGTERM → process exit (undefined: it did not exit within the deadline). */
  exitMs: number | undefined;
  exitCode: number | string | undefined;
  /** Phases from the sidecar's final shutdown report log line, when it printed one. */
  phases: string | undefined;
}

/** Opens a connection, sends PING, resolves once +PONG arrived (the connection reached the backend). */
function openSession(port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, LOOPBACK);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no PONG within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.on('error', fail);
    sock.once('connect', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.on('data', function onData(d: Buffer) {
      buf += d.toString('latin1');
      if (buf.includes('+PONG\r\n')) {
        clearTimeout(timer);
        sock.off('data', onData).off('error', fail);
        sock.on('error', () => {}); // the proxy closing idle sessions later is expected
        resolve(sock);
      }
    });
  });
}

async function openSessions(port: number, count: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  atExit(() => socks.forEach((s) => s.destroy()));
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    socks.push(...(await Promise.all(Array.from({ length: n }, () => openSession(port, 10_000)))));
  }
  return socks;
}

/** KiB of RSS per idle connection of a running target (its serving process, /proc), or undefined. */
export async function idleMemoryPerSession(target: Target, sessions: number): Promise<number | undefined> {
  // Warm the connection path once so lazy initialisation is not charged to the idle sessions.
  (await openSessions(target.port, 20)).forEach((sock) => sock.destroy());
  const before = rssBytes(target.pid);
  const socks = await openSessions(target.port, sessions);
  const after = rssBytes(target.pid);
  socks.forEach((sock) => sock.destroy());
  return before === undefined || after === undefined ? undefined : (after - before) / sessions / 1024;
}

/** RSS (and heap used) as the sidecar's /metrics reports it; /proc as the fallback for RSS. */
async function sidecarMemory(s: BenchSidecar): Promise<{ rss: number; heap: number | undefined; source: string }> {
  const metric = (text: string, name: string): number | undefined => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]);
  };
  let text = '';
  try {
    text = (await httpGet(LOOPBACK, s.adminPort, '/metrics', 2000)).body;
  } catch {
    /* fall back to /proc below */
  }
  const heap = metric(text, 'pika_sidecar_nodejs_heap_size_used_bytes');
  const rss = metric(text, 'pika_sidecar_process_resident_memory_bytes');
  if (rss !== undefined) return { rss, heap, source: '/metrics pika_sidecar_process_resident_memory_bytes' };
  const procRss = rssBytes(s.proc.pid);
  if (procRss === undefined) throw new Error('cannot read the sidecar RSS from /metrics or /proc');
  return { rss: procRss, heap, source: '/proc/<pid>/status VmRSS' };
}

/** A fresh sidecar with `sessions` idle sessions; SIGTERM; times until all are closed and until exit. */
export async function measureSidecarDrain(redis: RedisServer, settings: BenchSettings, log: (line: string) => void): Promise<DrainResult> {
  const sessions = settings.idleSessions;
  // info: the shutdown report (phases with durations) is logged at info when every phase completed.
  const s = await startSidecarProcess(redis.port, { ...settings.sidecar, args: [...EXIT_MEASURE_ARGS, ...settings.sidecar.args] }, 'info');
  try {
    (await openSessions(s.port, 20)).forEach((sock) => sock.destroy());
    const before = await sidecarMemory(s);
    const socks = await openSessions(s.port, sessions);
    const after = await sidecarMemory(s);
    log(`idle sessions: ${sessions} open; RSS ${(before.rss / 1024).toFixed(0)} -> ${(after.rss / 1024).toFixed(0)} KiB`);

    let closed = 0;
    let allClosedAt: number | undefined;
    const t0 = performance.now();
    for (const sock of socks) {
      sock.once('close', () => {
        closed++;
        if (closed === sessions) allClosedAt = performance.now();
      });
    }
    s.proc.kill('SIGTERM');
    const exit = await exitWithin(s.proc, 60_000);
    const exitMs = exit === undefined ? undefined : performance.now() - t0;
    const closedBeforeExit = closed;
    const phases = shutdownPhases(s.output());
    log(
      `idle sessions: SIGTERM -> ${closedBeforeExit} closed, exit ${exitMs === undefined ? 'none within 60 s' : `after ${exitMs.toFixed(0)} ms`}`,
    );
    if (exit === undefined || exit.code !== 0) log(`sidecar output at exit:\n${s.output().trim().split('\n').slice(-3).join('\n')}`);
    socks.forEach((sock) => sock.destroy());
    return {
      sessions,
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heap,
      heapAfter: after.heap,
      rssSource: after.source,
      allClosedMs: allClosedAt === undefined ? undefined : allClosedAt - t0,
      closedBeforeExit,
      exitMs,
      exitCode: exit === undefined ? undefined : (exit.code ?? exit.signal ?? undefined),
      phases,
    };
  } finally {
    await stopChild(s.proc, 2000);
  }
}

/** "intercept 1 ms completed, drain 150 ms completed, ..." from the last log line carrying a report. */
export function shutdownPhases(output: string): string | undefined {
  const lines = output.split('\n').reverse();
  for (const line of lines) {
    if (!line.includes('"report"')) continue;
    try {
      const report = (JSON.parse(line) as { report?: { phases?: Array<{ phase: string; outcome: string; durationMs: number }> } }).report;
      if (report?.phases === undefined) continue;
      return report.phases.map((p) => `${p.phase} ${Math.round(p.durationMs)} ms ${p.outcome}`).join(', ');
    } catch {
      /* not a JSON log line */
    }
  }
  return undefined;
}
