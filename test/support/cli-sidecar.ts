/**
 * The real CLI as a child process (`node dist/src/cli.js run ...`), as the kubelet runs it:
 * signals, exit codes, elapsed time and the ordered JSON log lines are what tests assert.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../harness/ports.js';
import { killChild, spawnTracked } from '../../harness/processes.js';
import { waitFor } from '../../harness/wait.js';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; phase?: string; outcome?: string };

export interface CliSidecar {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  admin: string;
  logs: LogLine[];
  stderr: () => string;
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  phaseOutcomes(): Array<[string, string]>;
  report(): Record<string, unknown> | undefined;
  kill(): void;
}

const bracketed = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/**
 * `launcher` runs the CLI under another program, e.g. ['prlimit', '--nofile=200:200']; `listenHost`
 * and `adminHost` are bind addresses (0.0.0.0 for protected-mode tests; clients still connect to loopback).
 */
export async function spawnSidecar(
  backendPort: number,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
  opts: { launcher?: string[]; listenHost?: string; adminHost?: string } = {},
): Promise<CliSidecar> {
  const port = await freePort();
  const adminPort = await freePort();
  const defaults: Record<string, string> = { '--announce-delay': '0', '--metrics-linger': '0', '--log-level': 'debug' };
  for (const flag of extraArgs) delete defaults[flag];
  const args = [
    CLI, 'run',
    '--listen', `${bracketed(opts.listenHost ?? '127.0.0.1')}:${port}`,
    '--backend', `127.0.0.1:${backendPort}`,
    '--admin', `${bracketed(opts.adminHost ?? '127.0.0.1')}:${adminPort}`,
    ...Object.entries(defaults).flat(),
    ...extraArgs,
  ];
  const [command, ...prefix] = opts.launcher ?? [process.execPath];
  const proc = spawnTracked(command!, opts.launcher ? [...prefix, process.execPath, ...args] : args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const logs: LogLine[] = [];
  let partial = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once('exit', (code, signal) => {
      resolve({ code, signal, at: Date.now() });
    }),
  );
  const sc: CliSidecar = {
    proc,
    port,
    adminPort,
    admin: `http://127.0.0.1:${adminPort}`,
    logs,
    stderr: () => stderr,
    exited,
    async waitForLog(pred, timeoutMs = 10_000, what = 'log line') {
      return waitFor(() => logs.find(pred), { timeoutMs, what, intervalMs: 10 });
    },
    phaseOutcomes: () => logs.filter((l) => typeof l.outcome === 'string' && typeof l.phase === 'string' && l.durationMs !== undefined && l.msg?.startsWith('phase ')).map((l) => [l.phase!, l.outcome!]),
    report: () => logs.find((l) => l.report !== undefined)?.report as Record<string, unknown> | undefined,
    kill: () => void killChild(proc),
  };
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
  });
  await waitFor(
    async () => {
      if (exitedEarly) throw new Error(`sidecar exited during start-up: ${stderr}`);
      const r = await fetch(`${sc.admin}/readyz`).catch(() => undefined);
      return r?.status === 200;
    },
    { timeoutMs: 15_000, what: 'the sidecar to be ready' },
  ).catch((e: Error) => {
    void killChild(proc);
    throw new Error(`${e.message}\nstderr: ${stderr}\nlogs: ${logs.map((l) => JSON.stringify(l)).join('\n')}`);
  });
  return sc;
}
