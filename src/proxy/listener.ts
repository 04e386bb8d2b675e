/**
 * The client-facing listener. Each accepted connection is paused until it has a backend
 * connection from the warm pool, then becomes a session. A client that cannot get one receives
 * one `-ERR` naming the backend and is closed.
 */
import net from 'node:net';
import type { BackendPool } from '../backend/backend-pool.js';
import { sidecarErrorReply } from '../backend/encode.js';
import { SidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { SessionRegistry } from './session-registry.js';

export class ClientListener {
  private readonly server: net.Server;
  private state: 'idle' | 'listening' | 'closed' = 'idle';
  private closing: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(
    private readonly opts: { host: string; port: number; pool: BackendPool; registry: SessionRegistry; logger: Logger },
  ) {
    this.log = opts.logger.child({ component: 'listener' });
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (c) => this.accept(c));
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error & { code?: string }) => {
        reject(new SidecarError('ERR_STARTUP', `cannot listen on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`, { cause: err }));
      };
      this.server.once('error', onError);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.log.error({ err: err.message }, 'listener error'));
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

  private accept(client: net.Socket): void {
    if (this.state !== 'listening') {
      client.destroy();
      return;
    }
    client.on('error', () => undefined);
    let gone = false;
    const onGone = () => {
      gone = true;
    };
    client.once('close', onGone);
    this.opts.pool.acquire().then(
      (backend) => {
        client.off('close', onGone);
        if (gone || client.destroyed) {
          backend.destroy();
          return;
        }
        this.opts.registry.add(client, backend);
      },
      (err: Error) => {
        client.off('close', onGone);
        this.opts.registry.countRejected('backend_unreachable');
        this.log.warn({ err: err.message }, 'no backend connection for a new client; refusing it');
        if (!gone) client.end(sidecarErrorReply(err.message));
      },
    );
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
    return this.closing;
  }
}
