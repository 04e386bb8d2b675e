/**
 * Admin HTTP server (node:http): probes, metrics, status, the drain trigger and the stop gate.
 * The endpoints are declared in ./endpoints.ts (docs/reference.md is generated from it):
 *
 *   GET  /healthz       liveness: 200 while the process runs, draining included
 *   GET  /readyz        readiness: 503 once `intercept` starts or while the backend is down
 *   GET  /metrics       Prometheus text (the sidecar's own registry)
 *   GET  /status        JSON: phase, sessions by mode, in flight, backend, replication, shutdown
 *   POST /drain         starts the shutdown (202, idempotent); ?wait=true answers 200 once drained
 *   GET  /drain/gate    for a backend container's httpGet preStop: starts the drain if none runs,
 *                       answers 200 once the sidecar is `drained` (after replication_sync), 504 past
 *                       the deadline
 *
 * Mutating endpoints (/drain, /drain/gate) accept loopback callers or `Authorization: Bearer
 * <adminToken>`; anyone else gets 403. A scrape or probe never counts as a client session.
 *
 * Limits, so a hostile or broken caller cannot hold the server (Node's defaults would let a
 * header trickled at 1 byte/s hold a connection for a minute or more, and accept any number):
 *   - the request head must arrive within headersTimeout (5 s), the whole request within
 *     requestTimeout (10 s); the wait of /drain/gate for `drained` is the response, not the request;
 *   - at most maxConnections (32) connections at once; beyond, a connection is closed on accept;
 *   - request heads up to 8 KiB; request bodies are never read: a request that announces one
 *     gets 413 and the connection is closed.
 */
import http from 'node:http';
import type net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { SidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { StatusBody } from './status.js';
import { ADMIN_PATHS } from './endpoints.js';
import { LogSummary } from '../observability/log-summary.js';

export interface AdminLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxConnections: number;
}

export const DEFAULT_ADMIN_LIMITS: AdminLimits = { headersTimeoutMs: 5000, requestTimeoutMs: 10_000, maxConnections: 32 };

export type DrainWaitResult = 'drained' | 'deadline';

export interface AdminHooks {
  ready(): { ready: boolean; reason: string };
  status(): StatusBody;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Starts the shutdown if none runs (idempotent). `source` names the trigger in logs. */
  startDrain(source: string): void;
  /** Resolves when the sidecar reaches `drained`, or 'deadline' when the shutdown deadline passes. */
  waitDrained(): Promise<DrainWaitResult>;
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;
  private readonly summary: LogSummary;

  constructor(
    private readonly opts: {
      host: string;
      port: number;
      token: string | undefined;
      hooks: AdminHooks;
      logger: Logger;
      limits?: Partial<AdminLimits>;
    },
  ) {
    this.log = opts.logger.child({ component: 'admin' });
    this.summary = new LogSummary(this.log);
    const limits = { ...DEFAULT_ADMIN_LIMITS, ...opts.limits };
    const serverOptions: http.ServerOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often Node checks the two timeouts above (its default, 30 s, would make them coarse).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
      maxHeaderSize: 8192,
    };
    this.server = http.createServer(serverOptions, (req, res) => {
      if (announcesBody(req)) {
        this.summary.event(
          'warn',
          'admin_body_refused',
          { path: req.url, remote: req.socket.remoteAddress },
          'refused an admin request with a body; bodies are never read',
        );
        res.shouldKeepAlive = false;
        send(res, 413, { error: 'request bodies are not accepted' });
        res.once('finish', () => req.socket.destroy());
        return;
      }
      this.handle(req, res).catch((err: Error) => {
        this.log.error({ err: err.message, path: req.url }, 'admin request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.end();
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.maxConnections = limits.maxConnections;
    this.server.on('drop', (data?: { remoteAddress?: string }) => {
      this.summary.event(
        'warn',
        'admin_connection_refused',
        { remote: data?.remoteAddress, maxConnections: limits.maxConnections },
        'refused an admin connection: too many open',
      );
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Timeouts, oversized heads, malformed requests: answer if the socket still can, then close.
      const code = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      this.summary.event('info', 'admin_client_error', { err: err.code ?? err.message }, 'closed an admin connection: bad or slow request');
      if (!socket.writable || (socket as net.Socket & { _httpMessage?: unknown })._httpMessage) {
        socket.destroy();
        return;
      }
      socket.end(`HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () =>
        socket.destroy(),
      );
    });
  }

  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error & { code?: string }) =>
        reject(
          new SidecarError(
            'ERR_STARTUP',
            `cannot listen for admin HTTP on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`,
            { cause: err },
          ),
        );
      this.server.once('error', onError);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError);
        const addr = this.server.address() as net.AddressInfo;
        this.log.info({ address: `${addr.address}:${addr.port}` }, 'admin http listening');
        resolve(addr);
      });
    });
  }

  get address(): net.AddressInfo | undefined {
    return (this.server.address() as net.AddressInfo | null) ?? undefined;
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (isLoopback(req.socket.remoteAddress)) return true;
    const token = this.opts.token;
    const header = req.headers.authorization;
    if (token === undefined || token === '' || header === undefined || !header.startsWith('Bearer ')) return false;
    const given = Buffer.from(header.slice(7));
    const want = Buffer.from(token);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    const hooks = this.opts.hooks;
    switch (route) {
      case 'GET /healthz':
        return send(res, 200, 'ok\n');
      case 'GET /readyz': {
        const r = hooks.ready();
        return send(res, r.ready ? 200 : 503, `${r.reason}\n`);
      }
      case 'GET /metrics': {
        const m = await hooks.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
        return;
      }
      case 'GET /status':
        return send(res, 200, hooks.status());
      case 'POST /drain':
      case 'GET /drain/gate': {
        if (!this.authorized(req)) {
          this.log.warn(
            { route, remote: req.socket.remoteAddress },
            'refused a drain request from a non-loopback caller without a valid token',
          );
          return send(res, 403, { error: 'forbidden: loopback callers or a bearer token only' });
        }
        const source = route === 'POST /drain' ? 'http' : 'gate';
        hooks.startDrain(source);
        const wait = route === 'GET /drain/gate' || url.searchParams.get('wait') === 'true';
        if (!wait) return send(res, 202, { accepted: true, status: hooks.status() });
        const result = await hooks.waitDrained();
        return send(res, result === 'drained' ? 200 : 504, { result, status: hooks.status() });
      }
      default:
        if (ADMIN_PATHS.has(url.pathname)) {
          return send(res, 405, { error: `method ${req.method ?? ''} not allowed on ${url.pathname}` });
        }
        return send(res, 404, { error: `no route ${url.pathname}` });
    }
  }

  /** Stops accepting; lets requests under way finish within `graceMs`, then cuts the rest. Idempotent. */
  close(graceMs = 1000): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
      timer.unref();
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
    });
    void this.closing.then(() => this.summary.close());
    return this.closing;
  }

  /** Forced: every connection now. Idempotent. */
  destroy(): void {
    void this.close(0);
    this.server.closeAllConnections();
  }
}

function send(res: http.ServerResponse, code: number, body: unknown): void {
  const text =
    typeof body === 'string' ? body : `${JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
  res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json' });
  res.end(text);
}

/** A request that says a body follows (Content-Length above 0, or any Transfer-Encoding). */
function announcesBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
