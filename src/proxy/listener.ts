/**
 * The client-facing listener. Each accepted connection is paused until it has a backend
 * connection from the warm pool, then becomes a session. A client that cannot get one receives
 * one `-ERR` line and is closed:
 *
 *   more than maxClients open          -ERR max number of clients reached   (max_clients)
 *   out of file descriptors            -ERR max number of clients reached   (fd_exhausted)
 *   the backend refused the connection the backend's own error line         (backend_refused)
 *   protected mode refuses the client  -DENIED ... (the `admit` hook's line) (protected_mode)
 *   the backend is unreachable         -ERR backend ... is unreachable      (backend_unreachable)
 *
 * Each refusal is counted (client_connections_refused_total{reason}) and logged through a
 * LogSummary: the first of a kind at once, then one summary line per interval.
 */
import net from 'node:net';
import { BackendRefusedError, type BackendPool } from '../backend/backend-pool.js';
import { sidecarErrorReply } from '../backend/encode.js';
import { SidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { LogSummary } from '../observability/log-summary.js';
import type { Metrics } from '../observability/metrics.js';
import type { RefusalReason } from '../observability/names.js';
import type { SessionRegistry } from './session-registry.js';

/** Redis' own words, so clients and their retry logic recognise it. */
export const MAX_CLIENTS_REPLY = Buffer.from('-ERR max number of clients reached\r\n');
const FD_ERRORS = new Set(['EMFILE', 'ENFILE']);

export interface ClientListenerOptions {
  host: string;
  port: number;
  pool: BackendPool;
  registry: SessionRegistry;
  logger: Logger;
  metrics: Metrics;
  /** Client connections at most (already lowered to the open-file limit). */
  maxClients: number;
  /**
   * Asked for every new client before it takes a backend connection: undefined admits it, a
   * line (CRLF included) is sent to it before it is closed (protected mode).
   */
  admit?: ((client: net.Socket) => Promise<Buffer | undefined>) | undefined;
}

export class ClientListener {
  private readonly server: net.Server;
  private state: 'idle' | 'listening' | 'closed' = 'idle';
  private closing: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly summary: LogSummary;
  /** Accepted client sockets not yet closed: sessions and clients waiting for a backend. */
  private clients = 0;

  constructor(private readonly opts: ClientListenerOptions) {
    this.log = opts.logger.child({ component: 'listener' });
    this.summary = new LogSummary(this.log);
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (c) => this.accept(c));
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error & { code?: string }) => {
        reject(
          new SidecarError('ERR_STARTUP', `cannot listen on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      };
      this.server.once('error', onError);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err: Error & { code?: string }) => {
          // libuv drops a connection it could not accept for want of a descriptor: count it at least.
          if (err.code !== undefined && FD_ERRORS.has(err.code)) this.countRefused('fd_exhausted', { err: err.code });
          else this.summary.event('error', 'listener_error', { err: err.message }, 'listener error');
        });
        this.state = 'listening';
        const addr = this.server.address() as net.AddressInfo;
        this.log.info({ address: `${addr.address}:${addr.port}` }, 'listening for clients');
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  get address(): net.AddressInfo | undefined {
    return (this.server.address() as net.AddressInfo | null) ?? undefined;
  }

  /** Clients accepted and not yet closed. */
  get clientCount(): number {
    return this.clients;
  }

  private accept(client: net.Socket): void {
    if (this.state !== 'listening') {
      client.destroy();
      return;
    }
    client.on('error', () => undefined);
    if (this.clients >= this.opts.maxClients) {
      this.refuse(client, 'max_clients', MAX_CLIENTS_REPLY, { maxClients: this.opts.maxClients });
      return;
    }
    this.clients++;
    let gone = false;
    client.once('close', () => {
      gone = true;
      this.clients--;
    });
    const admitted = this.opts.admit === undefined ? Promise.resolve(undefined) : this.opts.admit(client);
    admitted
      .then((denial) => {
        if (denial !== undefined) {
          this.refuse(client, 'protected_mode', denial, { remote: client.remoteAddress });
          return undefined;
        }
        return this.opts.pool.acquire();
      })
      .then(
        (backend) => {
          if (backend === undefined) return;
          if (gone || client.destroyed) {
            backend.destroy();
            return;
          }
          this.opts.registry.add(client, backend);
        },
        (err: Error) => {
          if (gone) return;
          if (err instanceof BackendRefusedError) {
            this.refuse(client, 'backend_refused', err.reply, { reply: err.reply.toString('latin1').trimEnd() });
          } else if (isFdExhausted(err)) {
            this.refuse(client, 'fd_exhausted', MAX_CLIENTS_REPLY, { err: err.message });
          } else {
            this.opts.registry.countRejected('backend_unreachable');
            this.summary.event('warn', 'backend_unreachable', { err: err.message }, 'no backend connection for a new client; refusing it');
            endWith(client, sidecarErrorReply(err.message));
          }
        },
      );
  }

  private refuse(client: net.Socket, reason: RefusalReason, reply: Buffer, fields: Record<string, unknown>): void {
    this.countRefused(reason, fields);
    endWith(client, reply);
  }

  private countRefused(reason: RefusalReason, fields: Record<string, unknown>): void {
    this.opts.metrics.clientConnectionsRefusedTotal.inc({ reason });
    this.summary.event('warn', `refused_${reason}`, { ...fields, reason }, `refused a new client: ${REFUSAL_TEXT[reason]}`);
  }

  /** Stops accepting; open sessions are not touched. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const wasListening = this.state === 'listening';
    this.state = 'closed';
    this.closing = wasListening
      ? new Promise<void>((resolve) => {
          this.server.close(() => resolve());
          // server.close() resolves only when every connection ends: the sessions are the drain's job.
          setImmediate(resolve);
        }).then(() => this.log.info('listener closed; no new clients'))
      : Promise.resolve();
    void this.closing.then(() => this.summary.close());
    return this.closing;
  }
}

const REFUSAL_TEXT: Record<RefusalReason, string> = {
  max_clients: 'max number of clients reached',
  fd_exhausted: 'out of file descriptors (EMFILE/ENFILE); raise the open-file limit or lower maxClients',
  backend_refused: 'the backend refused its connection; its error line was passed on',
  protected_mode: 'protected mode: a non-loopback client while the backend needs no password',
};

function isFdExhausted(err: Error): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && FD_ERRORS.has(code)) return true;
  }
  return false;
}

/** Sends the last words and closes; a paused client never reads our FIN's answer, so destroy once flushed. */
function endWith(client: net.Socket, reply: Buffer): void {
  if (client.destroyed) return;
  client.end(reply, () => client.destroy());
}
