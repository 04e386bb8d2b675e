/**
 * One replication link through a fronted Pika port: the socket a replica opened to the sidecar's
 * +2000 or +10001, and the sidecar's own connection to the backend's same port. Bytes go through
 * 1:1 (Pika speaks protobuf and rsync2 there, not RESP: nothing is framed or counted but bytes).
 *
 *   replica ─bytes─▶ replica.on('data') ─ backend.write() false? pause the replica until 'drain' ─▶ backend
 *   replica ◀─bytes─ replica.write() false? pause the backend until 'drain' ◀─ backend.on('data') ◀─ backend
 *
 * Half-close is passed on: an `end` from one side ends the other side's writing half, and the link
 * is closed once both sockets are. An error, a reset or an abrupt close on either side destroys
 * both (with a reset, so the other peer does not take it for a clean close). Graceful and forced are separate verbs: close() stops reading, flushes what is queued and
 * sends FIN both ways (destroying what has not flushed within `flushMs`); destroy() stops now.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { FrontDirection } from '../observability/names.js';
import type { FrontPortRole } from './pika-ports.js';

/**
 *   connecting ─▶ open ─▶ closing ─▶ closed
 *        │          └──────────────────▲   (both sides ended, an error, destroy())
 *        └─────────────────────────────┘   (backend unreachable, destroy())
 */
export type FrontLinkState = 'connecting' | 'open' | 'closing' | 'closed';

/** Why a link ended: both sides finished, the backend could not be reached, an error, or a verb. */
export type FrontLinkEnd = 'ended' | 'unreachable' | 'error' | 'closed' | 'destroyed';

export interface FrontLinkOptions {
  role: FrontPortRole;
  /** The replica's socket, paused (the server accepts with pauseOnConnect). */
  replica: net.Socket;
  /** The backend's port for this role (backend port + 2000 or + 10001). */
  backend: { host: string; port: number };
  connectTimeoutMs: number;
  logger: Logger;
  /** Called per forwarded chunk (metrics). */
  onBytes(direction: FrontDirection, n: number): void;
}

export class FrontLink extends EventEmitter<{ close: [end: FrontLinkEnd, error: string | undefined] }> {
  readonly role: FrontPortRole;
  /** `host:port` of the replica's end of the connection, for logs. */
  readonly peer: string;
  readonly bytes: Record<FrontDirection, number> = { to_backend: 0, to_replica: 0 };
  /** The most bytes ever queued in the sidecar for one side (writableLength after a write). */
  peakBuffered = 0;
  private _state: FrontLinkState = 'connecting';
  private readonly replica: net.Socket;
  private readonly backend: net.Socket;
  private readonly log: Logger;
  private readonly paused: Record<FrontDirection, boolean> = { to_backend: false, to_replica: false };
  private end: FrontLinkEnd = 'ended';
  private error: string | undefined;
  private openSockets = 2;
  private connectTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly closed: Promise<void>;

  constructor(private readonly opts: FrontLinkOptions) {
    super();
    this.role = opts.role;
    this.replica = opts.replica;
    this.peer = `${opts.replica.remoteAddress ?? '?'}:${opts.replica.remotePort ?? '?'}`;
    this.log = opts.logger.child({ link: opts.role, peer: this.peer });
    this.closed = new Promise((resolve) => this.once('close', () => resolve()));

    this.backend = net.connect({ host: opts.backend.host, port: opts.backend.port, allowHalfOpen: true, noDelay: true });
    this.connectTimer = setTimeout(
      () => this.fail('unreachable', `connect timed out after ${opts.connectTimeoutMs} ms`),
      opts.connectTimeoutMs,
    );
    this.connectTimer.unref();
    this.backend.once('connect', () => this.onConnect());
    for (const s of [this.replica, this.backend]) {
      s.on('error', (err: NodeJS.ErrnoException) =>
        this.fail(this._state === 'connecting' && s === this.backend ? 'unreachable' : 'error', err.code ?? err.message),
      );
      s.once('close', () => this.onSocketClose(s));
    }
  }

  get state(): FrontLinkState {
    return this._state;
  }

  /** Bytes queued in the sidecar right now, both sides together. */
  get bufferedBytes(): number {
    return this.replica.writableLength + this.backend.writableLength;
  }

  /** Whether a side is paused because the other side's write() returned false. */
  isPaused(direction: FrontDirection): boolean {
    return this.paused[direction];
  }

  private setState(to: FrontLinkState): void {
    if (this._state === to) return;
    this.log.debug({ from: this._state, to }, `replication link ${this._state} -> ${to}`);
    this._state = to;
  }

  private onConnect(): void {
    clearTimeout(this.connectTimer);
    if (this._state !== 'connecting') return;
    this.setState('open');
    this.forward(this.replica, this.backend, 'to_backend');
    this.forward(this.backend, this.replica, 'to_replica');
    this.replica.resume();
  }

  private forward(from: net.Socket, to: net.Socket, direction: FrontDirection): void {
    from.on('data', (chunk: Buffer) => {
      this.bytes[direction] += chunk.length;
      this.opts.onBytes(direction, chunk.length);
      const more = to.write(chunk);
      if (to.writableLength > this.peakBuffered) this.peakBuffered = to.writableLength;
      if (!more && !this.paused[direction]) {
        this.paused[direction] = true;
        from.pause();
        to.once('drain', () => {
          this.paused[direction] = false;
          if (this._state === 'open') from.resume();
        });
      }
    });
    // Half-close: the peer is done sending; pass the FIN on once what it sent is written.
    from.once('end', () => to.end());
  }

  private onSocketClose(s: net.Socket): void {
    this.openSockets -= 1;
    // A side that closed without its peer's FIN (reset, destroy) takes the other side with it.
    if (!s.readableEnded && this._state !== 'closed') {
      const unreachable = this._state === 'connecting' && s === this.backend;
      this.fail(
        unreachable ? 'unreachable' : 'error',
        s === this.backend ? 'backend closed the connection' : 'replica closed the connection',
      );
    }
    if (this.openSockets === 0) this.finish();
  }

  private fail(end: FrontLinkEnd, error: string): void {
    if (this._state === 'closed') return;
    if (this.end === 'ended') {
      this.end = end;
      this.error = error;
    }
    // A broken link is reset, not ended: the peer must not take it for a clean close.
    this.destroySockets(true);
  }

  private destroySockets(reset = false): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.flushTimer);
    for (const s of [this.replica, this.backend]) {
      if (reset && !s.destroyed && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
  }

  private finish(): void {
    if (this._state === 'closed') return;
    clearTimeout(this.connectTimer);
    clearTimeout(this.flushTimer);
    this.setState('closed');
    this.emit('close', this.end, this.error);
  }

  /**
   * Graceful: stop reading both sides, flush what is queued, FIN both ways; whatever has not
   * flushed within `flushMs` (a stalled peer) is destroyed. Resolves once both sockets are closed.
   * Idempotent.
   */
  close(flushMs: number): Promise<void> {
    if (this._state === 'closed' || this._state === 'closing') return this.closed;
    if (this._state === 'connecting') {
      this.end = 'closed';
      this.setState('closing');
      this.destroySockets();
      return this.closed;
    }
    this.end = 'closed';
    this.setState('closing');
    let finished = 0;
    for (const s of [this.replica, this.backend]) {
      s.pause();
      s.end(() => {
        finished += 1;
        if (finished === 2) this.destroySockets(); // our FINs are out: the peers' FINs are not awaited
      });
    }
    this.flushTimer = setTimeout(() => this.destroySockets(), flushMs);
    this.flushTimer.unref();
    return this.closed;
  }

  /** Forced: both sockets destroyed now. Idempotent. */
  destroy(reason = 'destroyed'): void {
    if (this._state === 'closed') return;
    if (this.end === 'ended' || this.end === 'closed') {
      this.end = 'destroyed';
      this.error = reason;
    }
    this.destroySockets();
  }
}
