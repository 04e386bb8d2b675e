/**
 * Real redis-server processes for the demo, the tests and the bench: free loopback ports (or one
 * the caller names), one temp directory each, nothing persisted. Started with
 * harness/processes.ts, so each is in its own process group and killed if this process exits
 * first. start() waits until it answers PING; pause() (SIGSTOP) gives real lag until resume();
 * stop() is SIGTERM then SIGKILL after 3 s, kill() is SIGKILL; both are idempotent.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { freePort } from './ports.js';
import { isRunning, killChild, signalChild, spawnTracked, stopChild, tail } from './processes.js';
import { waitFor } from './wait.js';

/**
 * The arguments every redis-server this project starts shares: loopback only, its own directory,
 * nothing persisted, in the foreground, logging to stdout.
 */
export function redisServerArgs(port: number, dir: string, logLevel: 'warning' | 'notice' = 'warning'): string[] {
  // prettier-ignore
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

export interface RedisServerOptions {
  password?: string;
  /** Extra config directives, e.g. ['repl-diskless-sync', 'no']. Pairs: name, value, name, value... */
  config?: string[];
  replicaOf?: { host: string; port: number };
  /** A port chosen by the caller (e.g. freePikaPort, or a restart on the same address); default a free one. */
  port?: number;
  /** Default notice (the tests read the log); the demo asks for warning. */
  logLevel?: 'warning' | 'notice';
}

const NOT_INSTALLED = 'redis-server is not installed; `make deps` installs it (apt-get install redis-server)';

export class RedisServer {
  readonly host = '127.0.0.1';
  private readonly output: () => string;
  private paused = false;

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly proc: ChildProcess,
  ) {
    this.output = tail([proc.stdout, proc.stderr], 20_000);
  }

  /** Starts redis-server and waits (at most 10 s) until it answers PING. Retries on a port race. */
  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = opts.port ?? (await freePort());
      const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-redis-'));
      const args = redisServerArgs(port, dir, opts.logLevel ?? 'notice');
      if (opts.password !== undefined) args.push('--requirepass', opts.password, '--masterauth', opts.password);
      if (opts.replicaOf) args.push('--replicaof', opts.replicaOf.host, String(opts.replicaOf.port));
      if (opts.config) for (let i = 0; i + 1 < opts.config.length; i += 2) args.push(`--${opts.config[i]}`, opts.config[i + 1]!);
      const proc = spawnTracked('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const srv = new RedisServer(port, dir, proc);
      const spawnFailed = new Promise<never>((_, reject) =>
        proc.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new Error(NOT_INSTALLED) : e)),
      );
      spawnFailed.catch(() => undefined);
      try {
        await Promise.race([
          spawnFailed,
          waitFor(async () => (srv.running ? srv.ping(opts.password) : Promise.reject(new Error('redis-server exited'))), {
            timeoutMs: 10_000,
            what: `redis-server on port ${port}`,
          }),
        ]);
        return srv;
      } catch (err) {
        lastErr = new Error(`${(err as Error).message}${srv.log ? `\n${srv.log}` : ''}`);
        await srv.stop();
        if ((err as Error).message === NOT_INSTALLED) break;
      }
    }
    throw lastErr;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** The server's recent output (stdout and stderr), for error messages. */
  get log(): string {
    return this.output();
  }

  get running(): boolean {
    return isRunning(this.proc);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Sends one inline command on a fresh connection and returns the raw reply text. */
  async raw(command: string, password?: string, timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(this.port, this.host);
      let buf = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no reply to '${command.split(' ')[0]}' within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.on('connect', () => {
        if (password !== undefined) sock.write(`AUTH ${password}\r\n`);
        sock.write(`${command}\r\n`);
      });
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        const body = password !== undefined ? buf.replace(/^\+OK\r\n/, '') : buf;
        if (replyComplete(body)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(body);
        }
      });
      sock.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  async ping(password?: string): Promise<boolean> {
    const r = await this.raw('PING', password, 1000);
    return r.startsWith('+PONG');
  }

  /** `INFO <section>` as text. */
  async info(section = 'replication', password?: string): Promise<string> {
    const r = await this.raw(`INFO ${section}`, password);
    return r.slice(r.indexOf('\r\n') + 2);
  }

  /** Waits until this replica's link to its master is up (bounded). */
  async waitForLinkUp(timeoutMs = 15_000, password?: string): Promise<void> {
    await waitFor(async () => (await this.info('replication', password)).includes('master_link_status:up'), {
      timeoutMs,
      what: `replica ${this.address} to sync with its master`,
    });
  }

  /** Real lag: the process stops executing (SIGSTOP) until resume(). */
  pause(): void {
    if (!this.running) return;
    this.paused = true;
    signalChild(this.proc, 'SIGSTOP');
  }

  resume(): void {
    this.paused = false;
    signalChild(this.proc, 'SIGCONT');
  }

  /** SIGKILL, immediately (works on a paused process too); the temp directory stays until stop(). */
  async kill(): Promise<void> {
    await killChild(this.proc);
  }

  /** SIGTERM (resuming a paused process first), SIGKILL after 3 s; then the temp directory goes. Idempotent. */
  async stop(): Promise<void> {
    if (this.running) {
      if (this.paused) this.resume();
      await stopChild(this.proc, 3000);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True when `s` holds one complete RESP2 reply (enough for the harness's simple commands). */
function replyComplete(s: string): boolean {
  if (s.length < 3 || !s.includes('\r\n')) return false;
  const t = s[0];
  if (t === '+' || t === '-' || t === ':') return true;
  if (t === '$') {
    const nl = s.indexOf('\r\n');
    const len = Number(s.slice(1, nl));
    return len < 0 || Buffer.byteLength(s, 'latin1') >= nl + 2 + len + 2;
  }
  return true;
}

/** Starts a master and `n` replicas of it, and waits until every replica's link is up. `port` is the master's. */
export async function startReplicationGroup(
  n: number,
  opts: RedisServerOptions = {},
): Promise<{ master: RedisServer; replicas: RedisServer[] }> {
  const master = await RedisServer.start(opts);
  const { port: _masterPort, ...replicaOpts } = opts;
  const replicas: RedisServer[] = [];
  for (let i = 0; i < n; i++)
    replicas.push(await RedisServer.start({ ...replicaOpts, replicaOf: { host: master.host, port: master.port } }));
  await waitFor(
    async () => {
      for (const r of replicas) if (!(await r.info('replication', opts.password)).includes('master_link_status:up')) return false;
      return true;
    },
    { timeoutMs: 15_000, what: 'replicas in sync' },
  );
  return { master, replicas };
}

export function redisVersion(): string {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return /v=(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}
