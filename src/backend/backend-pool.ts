/**
 * Warm pool of pre-connected backend connections (generic-pool). A new client session takes one so
 * it does not wait for a connect; each is validated with PING when taken. A connection that served
 * a client is destroyed afterwards, never reused: the backend keeps per-connection state (db, auth,
 * transaction, subscriptions, name) that the next client must not inherit.
 *
 * Pool connections are never authenticated by the sidecar: each client authenticates itself, so
 * the sidecar cannot be used to bypass the backend's password.
 */
import net from 'node:net';
import { createPool, type Pool } from 'generic-pool';
import { SidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface BackendPoolOptions {
  host: string;
  port: number;
  /** Warm connections kept ready (0 = connect on demand). */
  size: number;
  connectTimeoutMs: number;
  logger: Logger;
  metrics: Metrics;
}

const PING = Buffer.from('*1\r\n$4\r\nPING\r\n');
/** Backoff after failed connects, so a down backend does not spin the pool's refill loop. */
const BACKOFF_BASE_MS = 50;
const BACKOFF_MAX_MS = 1000;

export class BackendPool {
  private readonly pool: Pool<net.Socket>;
  private readonly opts: BackendPoolOptions;
  private readonly log: Logger;
  private failures = 0;
  private readonly lent = new WeakSet<net.Socket>();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | undefined;

  constructor(opts: BackendPoolOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'pool' });
    this.pool = createPool<net.Socket>(
      {
        create: () => this.connect(),
        destroy: async (s) => {
          // A socket lent to a session belongs to it: the pool only forgets it.
          if (!this.lent.has(s)) s.destroy();
        },
        validate: (s) => this.ping(s),
      },
      {
        min: opts.size,
        max: Math.max(opts.size, 1) + 100_000,
        testOnBorrow: true,
        acquireTimeoutMillis: opts.connectTimeoutMs,
        autostart: true,
      },
    );
    this.pool.on('factoryCreateError', (err) => {
      this.log.debug({ err: (err as Error).message }, 'warm backend connection failed');
    });
  }

  get address(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** Counts for metrics and /status. */
  stats(): { warm: number; pending: number; size: number } {
    return { warm: this.pool.available, pending: this.pool.pending, size: this.pool.size };
  }

  /** A connected, PING-validated backend socket, owned by the caller from now on. */
  async acquire(): Promise<net.Socket> {
    if (this.state !== 'open') throw new SidecarError('ERR_POOL_CLOSED', 'the backend pool is closed');
    let socket: net.Socket;
    try {
      socket = await this.pool.acquire();
    } catch (err) {
      const why = err instanceof Error && err.name === 'TimeoutError' ? `no connection within ${this.opts.connectTimeoutMs} ms` : String((err as Error).message);
      throw new SidecarError('ERR_BACKEND_UNREACHABLE', `backend ${this.address} is unreachable: ${why}`, { cause: err });
    }
    // The session owns the socket now; take it out of the pool's books so it is never lent again.
    // generic-pool refills to `min` by itself.
    this.lent.add(socket);
    void this.pool.destroy(socket).catch(() => undefined);
    return socket;
  }

  private async connect(): Promise<net.Socket> {
    if (this.failures > 0) {
      const wait = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.failures, 10));
      await new Promise((r) => setTimeout(r, wait).unref());
    }
    if (this.state !== 'open') throw new SidecarError('ERR_POOL_CLOSED', 'the backend pool is closed');
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.opts.host, port: this.opts.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy(new Error(`connect timed out after ${this.opts.connectTimeoutMs} ms`));
      }, this.opts.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        // An idle warm socket that errors is found dead by the PING at acquire time.
        socket.on('error', () => undefined);
        this.failures = 0;
        resolve(socket);
      });
      socket.once('error', (err: Error & { code?: string }) => {
        clearTimeout(timer);
        this.failures++;
        this.opts.metrics.backendConnectFailuresTotal.inc();
        socket.destroy();
        reject(new SidecarError('ERR_BACKEND_UNREACHABLE', `cannot connect to backend ${this.address}: ${err.code ?? err.message}`, { cause: err }));
      });
    });
  }

  /**
   * PING on a warm connection before lending it. Any single-line reply proves the backend is there
   * (`-NOAUTH` included: the client will authenticate itself). Consumes the reply so the client's
   * stream starts clean.
   */
  private ping(socket: net.Socket): Promise<boolean> {
    if (socket.destroyed || socket.readyState !== 'open') return Promise.resolve(false);
    return new Promise((resolve) => {
      let got = '';
      const done = (ok: boolean) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (!ok) socket.destroy();
        resolve(ok);
      };
      const onData = (d: Buffer) => {
        got += d.toString('latin1');
        const nl = got.indexOf('\r\n');
        if (nl < 0) {
          if (got.length > 1024) done(false);
          return;
        }
        // Exactly one line: anything after it would belong to nobody.
        done(nl + 2 === got.length && (got[0] === '+' || got[0] === '-'));
      };
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), this.opts.connectTimeoutMs);
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.write(PING);
    });
  }

  /** Stops refilling and closes the warm connections. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.state = 'closing';
    this.closing = (async () => {
      await this.pool.drain();
      await this.pool.clear();
      if (this.state === 'closed') return; // destroyed meanwhile: it already said so
      this.state = 'closed';
      this.log.info('backend pool closed');
    })();
    return this.closing;
  }

  /**
   * Like close(), without waiting: closed from now on; warm connections and connects under way are
   * destroyed as generic-pool gets to them. Idempotent.
   */
  destroy(): void {
    if (this.state === 'closed') return;
    void this.close().catch(() => undefined);
    this.state = 'closed';
    this.log.info('backend pool destroyed');
  }
}
