/**
 * The bench's cleanups and the small probes it runs against its children. The children themselves
 * are started with harness/processes.ts (spawnTracked), whose one exit hook kills them; a signal
 * runs the bench's other cleanups (temp dirs, sockets) and exits, which fires that hook.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

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
