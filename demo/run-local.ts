/**
 * `make run`: a local redis-server on a free loopback port and the sidecar in front of it, in the
 * foreground. Ctrl-C (or SIGTERM) is forwarded to the sidecar, which drains and exits; then redis
 * stops and this process exits with the sidecar's code. A second Ctrl-C is forwarded too: the
 * sidecar reads it as "force".
 *
 *   PIKA_SIDECAR_LISTEN  where clients connect      (default 127.0.0.1:6380)
 *   PIKA_SIDECAR_ADMIN   the sidecar's admin HTTP    (default 127.0.0.1:9121)
 *   RUN_REDIS_PORT       the redis-server's port     (default: a free one)
 *   extra arguments      passed to `pika-sidecar run` (e.g. --announce-delay 1s --log-level debug)
 *
 * Also home of SidecarProcess, the sidecar as a child process (`node dist/src/cli.js run ...`),
 * which the demo uses too.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { httpGet } from '../harness/http.js';
import { exitCodeOf, spawnTracked } from '../harness/processes.js';
import { waitFor } from '../harness/wait.js';
import { RedisServer, type RedisServerOptions } from '../harness/redis-server.js';

/** The demo's servers: quiet; a replica's first sync starts at once (Redis 7 waits 5 s for more replicas by default). */
export const DEMO_REDIS: RedisServerOptions = { logLevel: 'warning', config: ['repl-diskless-sync-delay', '0'] };

/** One pino line of the sidecar's stdout (the fields the demo reads; the rest pass through). */
export interface SidecarLogLine {
  time?: string;
  level?: string;
  msg?: string;
  component?: string;
  phase?: string;
  [field: string]: unknown;
}

export interface SidecarExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SidecarProcessOptions {
  listen: string;
  backend: string;
  admin: string;
  /** More `run` flags (--announce-delay 1s ...). */
  args?: readonly string[];
  /** Each stdout line as it arrives, parsed when it is JSON. */
  onLine?: (raw: string, parsed: SidecarLogLine | undefined) => void;
  /** Each stderr chunk as it arrives (it is also kept, see `stderr`). */
  onStderr?: (chunk: string) => void;
  /** Environment for the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

const CLI_PATH = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const MAX_KEPT_LINES = 5000;

/** The sidecar (`pika-sidecar run`) as a child process in its own process group. */
export class SidecarProcess {
  /** Every JSON log line so far (the last MAX_KEPT_LINES). */
  readonly lines: SidecarLogLine[] = [];
  readonly exited: Promise<SidecarExit>;
  private stderrText = '';
  private partial = '';

  private constructor(
    readonly proc: ChildProcess,
    private readonly onLine: SidecarProcessOptions['onLine'],
    onStderr: SidecarProcessOptions['onStderr'],
  ) {
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => this.onStdout(chunk));
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      this.stderrText = (this.stderrText + chunk).slice(-8000);
      onStderr?.(chunk);
    });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => resolve({ code, signal }));
      proc.once('error', () => resolve({ code: proc.exitCode ?? 127, signal: null }));
    });
  }

  static start(opts: SidecarProcessOptions): SidecarProcess {
    const args = [CLI_PATH, 'run', '--listen', opts.listen, '--backend', opts.backend, '--admin', opts.admin, ...(opts.args ?? [])];
    const proc = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    return new SidecarProcess(proc, opts.onLine, opts.onStderr);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The sidecar's stderr (usually empty; start-up failures land here). */
  get stderr(): string {
    return this.stderrText;
  }

  private onStdout(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) {
      if (raw.length === 0) continue;
      let parsed: SidecarLogLine | undefined;
      try {
        const v: unknown = JSON.parse(raw);
        if (typeof v === 'object' && v !== null) parsed = v as SidecarLogLine;
      } catch {
        parsed = undefined;
      }
      if (parsed) {
        this.lines.push(parsed);
        if (this.lines.length > MAX_KEPT_LINES) this.lines.shift();
      }
      this.onLine?.(raw, parsed);
    }
  }

  /** Sends a signal; false when the process is already gone. */
  signal(sig: NodeJS.Signals): boolean {
    if (!this.running) return false;
    return this.proc.kill(sig);
  }

  /** Waits for the exit at most `timeoutMs`; then SIGKILLs it. `killed` says which happened. */
  async waitForExit(timeoutMs: number): Promise<SidecarExit & { killed: boolean }> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      // Unref'd: the child's own handle keeps the loop alive while it runs.
      timer = setTimeout(() => resolve('late'), timeoutMs).unref();
    });
    const first = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (first !== 'late') return { ...first, killed: false };
    this.signal('SIGKILL');
    return { ...(await this.exited), killed: true };
  }

  /** Cleanup: SIGKILL if still running, and wait for it. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}

/** Splits "host:port" (IPv6 in brackets or bare). */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  return { host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port: Number(address.slice(i + 1)) };
}

/** Waits until the sidecar answers GET /readyz with 200 (bounded); fails at once if it exits. */
export async function waitForReady(sidecar: SidecarProcess, admin: { host: string; port: number }, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      if (!sidecar.running) throw new Error(`the sidecar exited during start-up${sidecar.stderr ? `: ${sidecar.stderr.trim()}` : ''}`);
      return (await httpGet(admin.host, admin.port, '/readyz', 500)).status === 200;
    },
    { timeoutMs, what: 'the sidecar to report ready (GET /readyz 200)' },
  );
}

/** `make run`. Resolves with the sidecar's exit code. */
export async function runLocal(opts: { env?: NodeJS.ProcessEnv; args?: readonly string[]; out?: (line: string) => void } = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const out = opts.out ?? ((line: string) => process.stderr.write(`${line}\n`));
  const listen = env['PIKA_SIDECAR_LISTEN'] ?? '127.0.0.1:6380';
  const adminAddress = env['PIKA_SIDECAR_ADMIN'] ?? '127.0.0.1:9121';
  const redisPort = env['RUN_REDIS_PORT'] !== undefined ? Number(env['RUN_REDIS_PORT']) : undefined;

  const redis = await RedisServer.start(redisPort !== undefined ? { ...DEMO_REDIS, port: redisPort } : DEMO_REDIS);
  let sidecar: SidecarProcess | undefined;
  let signals = 0;
  let signalled: () => void = () => undefined;
  const firstSignal = new Promise<void>((resolve) => {
    signalled = resolve;
  });
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    signalled();
    if (sidecar?.signal(sig) === true) {
      out(signals === 1 ? `\n${sig}: forwarded to the sidecar; it drains, then exits (again to force)` : `${sig}: forwarded again; the sidecar forces the rest of its shutdown`);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    sidecar = SidecarProcess.start({
      listen,
      backend: redis.address,
      admin: adminAddress,
      args: opts.args ?? [],
      env,
      // Foreground: the sidecar's log goes to this process's stdout as it comes.
      onLine: (raw) => process.stdout.write(`${raw}\n`),
      onStderr: (chunk) => process.stderr.write(chunk),
    });
    const listenAt = splitHostPort(listen);
    const adminAt = splitHostPort(adminAddress);
    try {
      await waitForReady(sidecar, adminAt);
      out(
        [
          '',
          `pika-sidecar listens on ${listen}, in front of redis-server ${redis.address} (temp dir ${redis.dir})`,
          `  connect:  redis-cli -h ${listenAt.host} -p ${listenAt.port}`,
          `  status:   curl -s http://${adminAt.host}:${adminAt.port}/status    metrics: http://${adminAt.host}:${adminAt.port}/metrics`,
          '  stop:     Ctrl-C (the sidecar drains, then exits; a second Ctrl-C forces)',
          '',
        ].join('\n'),
      );
    } catch (err) {
      if (sidecar.running) throw err;
    }
    // The sidecar is bounded by its own shutdown deadline; SIGKILL only if it overstays it by far.
    const exit = await waitBounded(sidecar, firstSignal, 120_000);
    const code = exitCodeOf(exit);
    out(`sidecar exited with code ${code}${exit.killed ? ' (killed: it did not exit in time)' : ''}; stopping redis-server ${redis.address}`);
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (sidecar?.running === true) await sidecar.kill();
    await redis.stop();
  }
}

/** Waits for the sidecar to exit; once a signal has been forwarded, at most `afterSignalMs`. */
async function waitBounded(sidecar: SidecarProcess, firstSignal: Promise<void>, afterSignalMs: number): Promise<SidecarExit & { killed: boolean }> {
  const early = await Promise.race([sidecar.exited, firstSignal.then(() => 'signalled' as const)]);
  if (early !== 'signalled') return { ...early, killed: false };
  return sidecar.waitForExit(afterSignalMs);
}

// The entry point of `make run`: one of the two places (with cli.ts) allowed to call process.exit.
const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  runLocal({ args: process.argv.slice(2) }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`make run failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
