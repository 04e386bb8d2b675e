/**
 * Warm pool of pre-connected backend connections (generic-pool). A new client session takes one so
 * it does not wait for a connect; each is validated with PING when taken. A connection that served
 * a client is destroyed afterwards, never reused: the backend keeps per-connection state (db, auth,
 * transaction, subscriptions, name) that the next client must not inherit.
 *
 * Pool connections are never authenticated by the sidecar: each client authenticates itself, so
 * the sidecar cannot be used to bypass the backend's password.
 *
 * A connection the backend refused (Redis at its `maxclients` writes `-ERR max number of clients
 * reached` on accept and closes) is a failed connection: counted, never lent. The client that
 * would have had it gets exactly the backend's line (BackendRefusedError.reply), as it would have
 * directly. `-NOAUTH` is not a refusal: the client authenticates itself.
 */
import type net from 'node:net';
import { createPool, type Pool } from 'generic-pool';
import { SidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { RESP_TYPES } from '../resp/resp-types.js';
import { connectReusingBuffer, setReadSink } from './read-buffer.js';

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
/** A password-protected backend's answer to an unauthenticated PING (Redis; Pika adds `ERR `). */
const AUTH_CHALLENGE = /^-(ERR )?NOAUTH\b/;
/** A warm socket found dead or refused is replaced by a fresh connect this many times. */
const ACQUIRE_ATTEMPTS = 3;

/** The backend refused a new connection; `reply` is its error line, CRLF included. */
export class BackendRefusedError extends SidecarError {
  constructor(readonly reply: Buffer) {
    super('ERR_BACKEND_REFUSED', `the backend refused the connection: ${reply.toString('latin1').trimEnd()}`);
  }
}

/** What a PING on a new backend connection found. */
type PingResult = { ok: true } | { ok: false; refusal: Buffer | undefined };

/** Bytes the backend sent before being asked: Redis' maxclients refusal arrives on accept. */
const unsolicited = new WeakMap<net.Socket, Buffer[]>();
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
      },
      {
        min: opts.size,
        max: Math.max(opts.size, 1) + 100_000,
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

  /**
   * A connected, PING-validated backend socket, owned by the caller from now on. A warm socket
   * that died idle or was refused is replaced by a fresh connect (bounded); when the backend
   * refuses that too, BackendRefusedError carries its line for the client.
   */
  async acquire(): Promise<net.Socket> {
    let refusal: Buffer | undefined;
    for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS; attempt++) {
      if (this.state !== 'open') throw new SidecarError('ERR_POOL_CLOSED', 'the backend pool is closed');
      const socket = attempt === 0 ? await this.borrow() : await this.connect(false);
      const result = await this.ping(socket);
      if (result.ok) return socket;
      socket.destroy();
      if (result.refusal !== undefined) {
        refusal = result.refusal;
        this.opts.metrics.backendConnectFailuresTotal.inc();
        this.log.debug({ reply: refusal.toString('latin1').trimEnd() }, 'the backend refused a connection');
        // A refusal from a fresh connect is what a direct client would get now.
        if (attempt > 0) break;
      }
    }
    if (refusal !== undefined) throw new BackendRefusedError(refusal);
    throw new SidecarError(
      'ERR_BACKEND_UNREACHABLE',
      `backend ${this.address} is unreachable: its connections closed before answering PING`,
    );
  }

  /** A warm socket from the pool (or a new one), taken out of the pool's books. */
  private async borrow(): Promise<net.Socket> {
    let socket: net.Socket;
    try {
      socket = await this.pool.acquire();
    } catch (err) {
      const why =
        err instanceof Error && err.name === 'TimeoutError'
          ? `no connection within ${this.opts.connectTimeoutMs} ms`
          : String((err as Error).message);
      throw new SidecarError('ERR_BACKEND_UNREACHABLE', `backend ${this.address} is unreachable: ${why}`, { cause: err });
    }
    // The session owns the socket now; take it out of the pool's books so it is never lent again.
    // generic-pool refills to `min` by itself.
    this.lent.add(socket);
    void this.pool.destroy(socket).catch(() => undefined);
    return socket;
  }

  /** `backoff` false: a replacement for a warm socket that failed, wanted now. */
  private async connect(backoff = true): Promise<net.Socket> {
    if (backoff && this.failures > 0) {
      const wait = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.failures, 10));
      await new Promise((r) => setTimeout(r, wait).unref());
    }
    if (this.state !== 'open') throw new SidecarError('ERR_POOL_CLOSED', 'the backend pool is closed');
    return new Promise((resolve, reject) => {
      // Reads go to a buffer reused from read to read (read-buffer.ts): a chunk is valid only
      // until its sink returns, so whatever is kept of one here is a copy.
      const socket = connectReusingBuffer({ host: this.opts.host, port: this.opts.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy(new Error(`connect timed out after ${this.opts.connectTimeoutMs} ms`));
      }, this.opts.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        // An idle warm socket that errors is found dead by the PING at acquire time.
        socket.on('error', () => undefined);
        const early: Buffer[] = [];
        unsolicited.set(socket, early);
        setReadSink(socket, (d) => {
          early.push(Buffer.from(d));
          // A backend that talks unasked sends one error line; more than that is not a refusal to keep.
          if (early.reduce((n, b) => n + b.length, 0) > 1024) socket.destroy();
          return false;
        });
        this.failures = 0;
        resolve(socket);
      });
      socket.once('error', (err: Error & { code?: string }) => {
        clearTimeout(timer);
        this.failures++;
        this.opts.metrics.backendConnectFailuresTotal.inc();
        socket.destroy();
        reject(
          new SidecarError('ERR_BACKEND_UNREACHABLE', `cannot connect to backend ${this.address}: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      });
    });
  }

  /**
   * PING on a connection before lending it; consumes the reply so the client's stream starts
   * clean. `+PONG` and an authentication challenge (`-NOAUTH`: the client will authenticate
   * itself) prove a usable connection. Any other error line, or bytes the backend sent before
   * being asked, is a refusal. A close or a timeout is a dead connection.
   */
  private ping(socket: net.Socket): Promise<PingResult> {
    const early = unsolicited.get(socket);
    unsolicited.delete(socket);
    setReadSink(socket, undefined);
    const before = early === undefined || early.length === 0 ? undefined : Buffer.concat(early);
    // Refused on accept (Redis writes the error and closes): do not write into a closing socket.
    if (before !== undefined) return Promise.resolve({ ok: false, refusal: firstLine(before) });
    if (socket.destroyed || socket.readyState !== 'open') return Promise.resolve({ ok: false, refusal: undefined });
    return new Promise((resolve) => {
      let got = '';
      const done = (r: PingResult) => {
        clearTimeout(timer);
        setReadSink(socket, undefined);
        socket.off('close', onClose);
        resolve(r);
      };
      const onData = (d: Buffer): boolean => {
        got += d.toString('latin1');
        const nl = got.indexOf('\r\n');
        if (nl < 0) {
          if (got.length > 1024) done({ ok: false, refusal: undefined });
          return false;
        }
        const line = got.slice(0, nl + 2);
        // Exactly one line: anything after it would belong to nobody.
        const usable = nl + 2 === got.length;
        if (line[0] === '+' || AUTH_CHALLENGE.test(line)) done(usable ? { ok: true } : { ok: false, refusal: undefined });
        else if (line[0] === '-') done({ ok: false, refusal: Buffer.from(line, 'latin1') });
        else done({ ok: false, refusal: undefined });
        return false; // what is kept of d is the string
      };
      const onClose = () => done({ ok: false, refusal: got.includes('\r\n') ? firstLine(Buffer.from(got, 'latin1')) : undefined });
      const timer = setTimeout(() => done({ ok: false, refusal: undefined }), this.opts.connectTimeoutMs);
      setReadSink(socket, onData);
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

/** The first CRLF-terminated line of what the backend sent, if it is an error line. */
function firstLine(bytes: Buffer): Buffer | undefined {
  const nl = bytes.indexOf('\r\n');
  if (nl < 0 || bytes[0] !== RESP_TYPES.ERROR) return undefined;
  return bytes.subarray(0, nl + 2);
}
