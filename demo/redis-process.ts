/**
 * Local redis-server processes for the demo and `make run`: free loopback ports, one temp directory
 * each, no persistence (`--save ''`). Children are started with harness/processes.ts: in their own process
 * group, so a Ctrl-C in the terminal reaches only the demo, which then stops them in order; its exit
 * hook SIGKILLs whatever is still alive if the demo process ends any other way.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { spawnTracked, stopChild } from '../harness/processes.js';
import { callOnce } from '../harness/resp-client.js';
import { waitFor } from '../harness/wait.js';

/**
 * The arguments every redis-server this project starts shares (demo and tests): loopback only, its
 * own directory, nothing persisted, in the foreground, logging to stdout.
 */
export function redisServerArgs(port: number, dir: string, logLevel: 'warning' | 'notice' = 'warning'): string[] {
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--protected-mode', 'no',
    '--logfile', '',
    '--loglevel', logLevel,
  ];
}

export interface RedisProcessOptions {
  replicaOf?: { host: string; port: number };
  /** A fixed port; default: a free loopback port. */
  port?: number;
}

/** One redis-server child process. */
export class RedisProcess {
  readonly host = '127.0.0.1';
  private output = '';
  private paused = false;

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly proc: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-8_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** The server's recent output, for error messages. */
  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Starts redis-server and waits (at most 10 s) until it answers PING. Retries on a port race. */
  static async start(opts: RedisProcessOptions = {}): Promise<RedisProcess> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < (opts.port !== undefined ? 1 : 4); attempt++) {
      const port = opts.port ?? (await freePort());
      const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-demo-redis-'));
      const args = [
        ...redisServerArgs(port, dir),
        // A replica's first sync starts at once (Redis 7 waits 5 s for more replicas by default).
        '--repl-diskless-sync-delay', '0',
      ];
      if (opts.replicaOf) args.push('--replicaof', opts.replicaOf.host, String(opts.replicaOf.port));
      const proc = spawnTracked('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const srv = new RedisProcess(port, dir, proc);
      const spawnFailed = new Promise<never>((_, reject) =>
        proc.once('error', (e: NodeJS.ErrnoException) =>
          reject(e.code === 'ENOENT' ? new Error('redis-server is not installed; `make deps` installs it (apt-get install redis-server)') : e),
        ),
      );
      spawnFailed.catch(() => undefined);
      try {
        await Promise.race([
          spawnFailed,
          waitFor(
            async () => {
              if (!srv.running) throw new Error('redis-server exited');
              return (await callOnce(srv.host, port, ['PING'], 1000)) === 'PONG';
            },
            { timeoutMs: 10_000, what: `redis-server on port ${port}` },
          ),
        ]);
        return srv;
      } catch (err) {
        lastErr = new Error(`${(err as Error).message}${srv.output ? `\n${srv.output}` : ''}`);
        await srv.stop();
        if ((err as Error).message.includes('not installed')) break;
      }
    }
    throw lastErr;
  }

  /** `INFO <section>` as text. */
  async info(section = 'replication'): Promise<string> {
    const r = await callOnce(this.host, this.port, ['INFO', section]);
    if (typeof r !== 'string') throw new Error(`INFO ${section}: unexpected reply`);
    return r;
  }

  /** Waits until this replica's link to its master is up (bounded). */
  async waitForLinkUp(timeoutMs = 15_000): Promise<void> {
    await waitFor(async () => (await this.info('replication')).includes('master_link_status:up'), {
      timeoutMs,
      what: `replica ${this.address} to sync with its master`,
    });
  }

  /** Real lag: the process stops executing (SIGSTOP) until resume(). */
  pause(): void {
    if (!this.running) return;
    this.paused = true;
    this.proc.kill('SIGSTOP');
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.running) this.proc.kill('SIGCONT');
  }

  /** SIGTERM (resuming a paused process first), SIGKILL after 3 s; then the temp directory goes. Idempotent. */
  async stop(): Promise<void> {
    if (this.running) {
      this.resume();
      await stopChild(this.proc, 3000);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
