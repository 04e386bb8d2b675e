/**
 * The real CLI as a child process (`node dist/src/cli.js run ...`), as the kubelet runs it: for the
 * demo, `make run`, the tests and the bench. Signals, exit codes, elapsed time and the ordered JSON
 * log lines are what callers read. Started with harness/processes.ts, so the sidecar is in its own
 * process group and killed if this process exits first.
 *
 *   SidecarProcess.start   one sidecar at the addresses given (port 0: the log line says which)
 *   spawnSidecar           the tests' form: free loopback ports, short budgets, debug logs, ready
 *   runCli                 any CLI command run to its exit (start-up refusals, check-config)
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { httpGet } from './http.js';
import { freePort } from './ports.js';
import { exitOfChild, exitWithin, isRunning, killChild, signalChild, spawnTracked, stopChild, tail, type ChildExit } from './processes.js';
import { waitFor } from './wait.js';

/** dist/harness/sidecar-process.js -> dist/src/cli.js */
export const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** One line of the sidecar's stdout: a pino JSON line (or `{ msg, unparsed: true }` for any other line). */
export interface LogLine {
  time?: string;
  msg?: string;
  component?: string;
  phase?: string;
  outcome?: string;
  [field: string]: unknown;
}

export interface SidecarExit extends ChildExit {
  /** Date.now() when it exited. */
  at: number;
}

export interface SidecarProcessOptions {
  listen: string;
  backend: string;
  admin: string;
  /** More `run` flags (--announce-delay 1s ...). */
  args?: readonly string[];
  /** The CLI to run (default: this build's dist/src/cli.js). */
  cli?: string;
  /** Flags for node itself, before the CLI (--cpu-prof ...). */
  nodeFlags?: readonly string[];
  /** Runs node under another program, e.g. ['prlimit', '--nofile=200:200']. */
  launcher?: readonly string[];
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Each stdout line as it arrives, parsed when it is JSON. */
  onLine?: (raw: string, parsed: LogLine | undefined) => void;
  /** Each stderr chunk as it arrives (it is also kept, see `stderr()`). */
  onStderr?: (chunk: string) => void;
  /** Keep only the last this many log lines (default: all). */
  maxLines?: number;
}

/** The node command line of a sidecar (without node itself): node flags, the CLI, `run` and its flags. */
export function sidecarArgv(opts: Pick<SidecarProcessOptions, 'listen' | 'backend' | 'admin' | 'args' | 'cli' | 'nodeFlags'>): string[] {
  return [
    ...(opts.nodeFlags ?? []),
    opts.cli ?? CLI,
    'run',
    '--listen',
    opts.listen,
    '--backend',
    opts.backend,
    '--admin',
    opts.admin,
    ...(opts.args ?? []),
  ];
}

/** The sidecar (`pika-sidecar run`) as a child process in its own process group. */
export class SidecarProcess {
  /** Every log line so far (the last `maxLines`). */
  readonly logs: LogLine[] = [];
  readonly exited: Promise<SidecarExit>;
  private stderrText = '';
  private partial = '';
  private readonly stdoutTail: () => string;

  private constructor(
    readonly proc: ChildProcess,
    private readonly opts: SidecarProcessOptions,
  ) {
    this.stdoutTail = tail(proc.stdout, 64_000);
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => this.onStdout(chunk));
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      this.stderrText += chunk;
      opts.onStderr?.(chunk);
    });
    this.exited = exitOfChild(proc).then((exit) => ({ ...exit, at: Date.now() }));
  }

  static start(opts: SidecarProcessOptions): SidecarProcess {
    const argv = sidecarArgv(opts);
    const [command, ...prefix] = opts.launcher ?? [process.execPath];
    const args = opts.launcher ? [...prefix, process.execPath, ...argv] : argv;
    const proc = spawnTracked(command!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    return new SidecarProcess(proc, opts);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return isRunning(this.proc);
  }

  /** The sidecar's stderr (usually empty; start-up failures land here). */
  stderr(): string {
    return this.stderrText;
  }

  /** stderr, then the last 64 kB of stdout as it came: for error messages. */
  output(): string {
    return `${this.stderrText}${this.stdoutTail()}`;
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) {
      if (raw.length === 0) continue;
      let parsed: LogLine | undefined;
      try {
        const v: unknown = JSON.parse(raw);
        if (typeof v === 'object' && v !== null) parsed = v as LogLine;
      } catch {
        parsed = undefined;
      }
      this.logs.push(parsed ?? { msg: raw, unparsed: true });
      if (this.opts.maxLines !== undefined && this.logs.length > this.opts.maxLines) this.logs.shift();
      this.opts.onLine?.(raw, parsed);
    }
  }

  /** Sends a signal to the sidecar itself; false when it is already gone. */
  signal(sig: NodeJS.Signals): boolean {
    return signalChild(this.proc, sig);
  }

  /** Waits for the exit at most `timeoutMs`; then SIGKILLs it. `killed` says which happened. */
  async waitForExit(timeoutMs: number): Promise<SidecarExit & { killed: boolean }> {
    const killed = (await exitWithin(this.proc, timeoutMs)) === undefined;
    if (killed) await this.kill();
    return { ...(await this.exited), killed };
  }

  /** SIGKILL (its whole process group) if still running, and wait for it. Idempotent. */
  async kill(): Promise<void> {
    await killChild(this.proc);
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  async stop(graceMs: number): Promise<void> {
    await stopChild(this.proc, graceMs);
  }

  /** The first log line that `pred` accepts, waiting for it at most `timeoutMs`. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 10_000, what = 'log line'): Promise<LogLine> {
    return waitFor(() => this.logs.find(pred), { timeoutMs, what, intervalMs: 10 });
  }

  /** Waits until the sidecar answers GET /readyz with 200 (bounded); fails at once if it exits. */
  async waitReady(admin: { host: string; port: number }, timeoutMs = 15_000): Promise<void> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    await waitFor(
      async () => {
        if (exited || !this.running)
          throw new Error(`the sidecar exited during start-up${this.stderrText ? `: ${this.stderrText.trim()}` : ''}`);
        return (await httpGet(admin.host, admin.port, '/readyz', 500)).status === 200;
      },
      { timeoutMs, what: 'the sidecar to report ready (GET /readyz 200)' },
    );
  }

  /** [phase, outcome] of every `phase X ...` line with a duration, in log order. */
  phaseOutcomes(): Array<[string, string]> {
    return this.logs
      .filter(
        (l) =>
          typeof l.outcome === 'string' &&
          typeof l.phase === 'string' &&
          l['durationMs'] !== undefined &&
          l.msg?.startsWith('phase ') === true,
      )
      .map((l) => [l.phase!, l.outcome!]);
  }

  /** The shutdown report, once it has been logged. */
  report(): Record<string, unknown> | undefined {
    return this.logs.find((l) => l['report'] !== undefined)?.['report'] as Record<string, unknown> | undefined;
  }
}

/** A sidecar spawned by `spawnSidecar`: its ports and admin URL besides. */
export type CliSidecar = SidecarProcess & { port: number; adminPort: number; admin: string };

const bracketed = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/**
 * The tests' sidecar: free loopback ports, `--announce-delay 0 --metrics-linger 0 --log-level
 * debug` unless `extraArgs` sets them, `env` over this process's environment; resolves once ready.
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
  const sp = SidecarProcess.start({
    listen: `${bracketed(opts.listenHost ?? '127.0.0.1')}:${port}`,
    backend: `127.0.0.1:${backendPort}`,
    admin: `${bracketed(opts.adminHost ?? '127.0.0.1')}:${adminPort}`,
    args: [...Object.entries(defaults).flat(), ...extraArgs],
    env: { ...process.env, ...env },
    ...(opts.launcher !== undefined ? { launcher: opts.launcher } : {}),
  });
  const sc: CliSidecar = Object.assign(sp, { port, adminPort, admin: `http://127.0.0.1:${adminPort}` });
  try {
    await sc.waitReady({ host: '127.0.0.1', port: adminPort });
  } catch (e) {
    await sc.kill();
    throw new Error(`${(e as Error).message}\nstderr: ${sc.stderr()}\nlogs: ${sc.logs.map((l) => JSON.stringify(l)).join('\n')}`);
  }
  return sc;
}

/** Runs the CLI (`node dist/src/cli.js ...args`) to its exit, with a deadline (then SIGKILL and a rejection). */
export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 15_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnTracked(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = await exitWithin(p, timeoutMs);
  if (exit === undefined) {
    await killChild(p);
    throw new Error(`the CLI did not exit within ${timeoutMs} ms: ${stderr}`);
  }
  // 'exit' can come before the last of stdout/stderr: wait for the streams to close too.
  await new Promise<void>((resolve) => (p.stdout === null || p.stdout.closed ? resolve() : p.once('close', () => resolve())));
  return { code: exit.code, stdout, stderr };
}
