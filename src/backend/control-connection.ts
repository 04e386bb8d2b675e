/**
 * The control connection: one authenticated connection to the backend for the sidecar's own
 * commands (PING, INFO, CLIENT LIST/UNBLOCK/PAUSE). It is not a client session and never counts
 * as in flight. Replies are decoded with redis-parser; a backend `-ERR` reply resolves as an
 * `ErrorReply` value (backend errors are data). Calls reject only for transport problems, with a
 * stable code. A call that times out destroys the socket (replies would be out of step); the next
 * call reconnects.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import RedisParser from 'redis-parser';
import { SidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { encodeCommand } from './encode.js';
import { clientIdsByPortFromList } from './client-list.js';

/** A backend `-ERR ...` reply, returned as a value. */
export class ErrorReply {
  constructor(readonly message: string) {}
  toString(): string {
    return this.message;
  }
}

export interface ControlConnectionOptions {
  host: string;
  port: number;
  password?: string | undefined;
  user?: string | undefined;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** Shown in logs: 'control' for the backend, 'replica 127.0.0.1:6381' for a probe. */
  name?: string | undefined;
}

type State = 'idle' | 'connecting' | 'ready' | 'closing' | 'closed';
/** Allowed transitions; `closed` is final. */
const TRANSITIONS: Record<State, readonly State[]> = {
  idle: ['connecting', 'closed'],
  connecting: ['ready', 'idle', 'closed'],
  ready: ['idle', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  started: bigint;
  command: string;
}

export class ControlConnection extends EventEmitter {
  private state: State = 'idle';
  private socket: net.Socket | undefined;
  private connecting: Promise<void> | undefined;
  private readonly pending: Pending[] = [];
  private readonly opts: ControlConnectionOptions;
  private readonly log: Logger;
  private closedPromise: Promise<void> | undefined;

  constructor(opts: ControlConnectionOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger.child({ component: 'control', target: opts.name ?? 'control' });
  }

  get status(): State {
    return this.state;
  }

  get address(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  private setState(to: State): void {
    const from = this.state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`control connection: illegal transition ${from} -> ${to}`);
    this.state = to;
    this.log.debug({ from, to }, 'control connection state changed');
    this.emit('state', to, from);
  }

  /** Sends one command; resolves with the decoded reply (ErrorReply for `-ERR`). */
  async call(...args: string[]): Promise<unknown> {
    if (this.state === 'closing' || this.state === 'closed') {
      throw new SidecarError('ERR_CONTROL_DESTROYED', `control connection to ${this.address} is closed`);
    }
    await this.ensureConnected();
    return this.send(args);
  }

  /**
   * The backend's client ids by client port, from `CLIENT LIST`; an `ErrorReply` where the backend
   * has no usable CLIENT LIST. Rejects only for transport problems, like call().
   */
  async clientIdsByPort(): Promise<Map<number, string> | ErrorReply> {
    const list = await this.call('CLIENT', 'LIST');
    if (list instanceof ErrorReply) return list;
    if (typeof list !== 'string') return new ErrorReply(`CLIENT LIST answered with a ${typeof list}, not text`);
    return clientIdsByPortFromList(list);
  }

  /** `CLIENT UNBLOCK <id>`: true when a blocked client was released, an ErrorReply where unsupported. */
  async unblockClient(id: string): Promise<boolean | ErrorReply> {
    const r = await this.call('CLIENT', 'UNBLOCK', id);
    return r instanceof ErrorReply ? r : r === 1;
  }

  private send(args: string[]): Promise<unknown> {
    const socket = this.socket;
    if (!socket || this.state !== 'ready') {
      return Promise.reject(new SidecarError('ERR_BACKEND_CLOSED', `control connection to ${this.address} is not connected`));
    }
    const command = (args[0] ?? '').toLowerCase();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new SidecarError(
          'ERR_CONTROL_TIMEOUT',
          `backend ${this.address} did not answer '${command}' within ${this.opts.commandTimeoutMs} ms`,
        );
        this.log.warn({ command, timeoutMs: this.opts.commandTimeoutMs }, 'control command timed out; dropping the connection');
        this.failAll(err);
        this.dropSocket();
      }, this.opts.commandTimeoutMs);
      timer.unref();
      this.pending.push({ resolve, reject, timer, started: process.hrtime.bigint(), command });
      socket.write(encodeCommand(args));
    });
  }

  private ensureConnected(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.connecting) return this.connecting;
    this.connecting = this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private connect(): Promise<void> {
    this.setState('connecting');
    return new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: this.opts.host, port: this.opts.port, noDelay: true });
      this.socket = socket;
      const parser = new RedisParser({
        returnReply: (reply: unknown) => this.onReply(reply),
        returnError: (err: Error) => this.onReply(new ErrorReply(err.message)),
        returnFatalError: (err: Error) => {
          this.log.error({ err: err.message }, 'backend sent malformed RESP on the control connection; dropping it');
          this.failAll(new SidecarError('ERR_PROTOCOL', `backend ${this.address} sent malformed RESP: ${err.message}`));
          this.dropSocket();
        },
        returnBuffers: false,
        stringNumbers: false,
      });
      const connectTimer = setTimeout(() => {
        socket.destroy(
          new SidecarError(
            'ERR_BACKEND_UNREACHABLE',
            `connect to backend ${this.address} timed out after ${this.opts.connectTimeoutMs} ms`,
          ),
        );
      }, this.opts.connectTimeoutMs);
      connectTimer.unref();
      let settled = false;
      socket.once('connect', () => {
        clearTimeout(connectTimer);
        this.setState('ready');
        this.authenticate().then(
          () => {
            settled = true;
            this.log.debug('control connection ready');
            resolve();
          },
          (err: Error) => {
            settled = true;
            this.dropSocket();
            reject(err);
          },
        );
      });
      socket.on('data', (d) => parser.execute(d));
      socket.on('error', (err: Error & { code?: string }) => {
        if (!settled) {
          clearTimeout(connectTimer);
          settled = true;
          this.opts.metrics?.backendConnectFailuresTotal.inc();
          reject(
            err instanceof SidecarError
              ? err
              : new SidecarError('ERR_BACKEND_UNREACHABLE', `cannot connect to backend ${this.address}: ${err.code ?? err.message}`, {
                  cause: err,
                }),
          );
        }
      });
      socket.once('close', () => {
        clearTimeout(connectTimer);
        if (this.socket === socket) this.socket = undefined;
        this.failAll(new SidecarError('ERR_BACKEND_CLOSED', `backend ${this.address} closed the control connection`));
        if (this.state === 'ready' || this.state === 'connecting') this.setState('idle');
        if (this.state === 'closing') this.setState('closed');
        this.emit('disconnect');
      });
    });
  }

  private async authenticate(): Promise<void> {
    if (this.opts.password === undefined) return;
    const args = this.opts.user !== undefined ? ['AUTH', this.opts.user, this.opts.password] : ['AUTH', this.opts.password];
    const reply = await this.send(args);
    if (reply instanceof ErrorReply) {
      // The reply text never contains the password; it is safe to show.
      throw new SidecarError('ERR_BACKEND_AUTH', `backend ${this.address} refused the configured password: ${reply.message}`);
    }
  }

  private onReply(reply: unknown): void {
    const p = this.pending.shift();
    if (!p) {
      this.log.warn('control connection got a reply nobody asked for; dropping the connection');
      this.dropSocket();
      return;
    }
    clearTimeout(p.timer);
    this.opts.metrics?.controlCommandSeconds.observe(Number(process.hrtime.bigint() - p.started) / 1e9);
    p.resolve(reply);
    if (this.pending.length === 0) this.emit('settled');
  }

  private failAll(err: Error): void {
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.emit('settled');
  }

  private dropSocket(): void {
    this.socket?.destroy();
  }

  /** Graceful: waits for pending calls (each bounded by its timeout), then closes. Idempotent. */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.closedPromise = (async () => {
      // Each pending call ends by its reply, its timeout or the socket closing.
      if (this.pending.length > 0) await new Promise<void>((r) => this.once('settled', r));
      const socket = this.socket;
      if (socket && this.state === 'ready') {
        this.setState('closing');
        await new Promise<void>((r) => {
          socket.once('close', () => r());
          socket.end();
          setTimeout(() => socket.destroy(), this.opts.commandTimeoutMs).unref();
        });
      }
      if (this.state !== 'closed') this.setState('closed');
    })();
    return this.closedPromise;
  }

  /** Forced: fails pending calls and closes now. Idempotent. */
  destroy(reason = 'destroyed'): void {
    if (this.state === 'closed') return;
    this.failAll(new SidecarError('ERR_CONTROL_DESTROYED', `control connection to ${this.address} destroyed: ${reason}`));
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    this.setState('closed');
    this.closedPromise ??= Promise.resolve();
  }
}
