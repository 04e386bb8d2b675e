/**
 * The soak's mixed clients, beside harness/write-load.ts's pipelined writers. Each keeps a ledger the
 * soak checks against the servers afterwards:
 *   RetryingWriter   reconnects and retries unanswered SETs; every attempt writes its own key
 *                    (`soak:rc:<id>:<attempt>`), so a phantom execution of any attempt is visible
 *   TransactionLoop  MULTI / SET a / SET b / EXEC, one transaction at a time
 *   PubSubPair       a subscriber and a publisher (traffic only)
 *   BlockingLoop     BLPOP on a list nobody pushes to (released in close_clients)
 *   NeverReader      pipelines GETs of a large value and never reads a byte
 */
import type net from 'node:net';
import RedisParser from 'redis-parser';
import { encodeCommand } from '../../src/backend/encode.js';
import { connectSocket } from '../../harness/resp-client.js';

const enc = (...args: string[]): Buffer => encodeCommand(args);

/** A loopback connection whose later errors (the sidecar closing it) end it quietly. */
async function connect(port: number): Promise<net.Socket> {
  const s = await connectSocket('127.0.0.1', port);
  s.on('error', () => undefined);
  return s;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends SETs with up to `window` outstanding; on a close, what was unanswered is retried on a new connection. */
export class RetryingWriter {
  readonly acked: string[] = [];
  /** Attempt keys sent and never answered: must not exist on the master. */
  readonly unanswered: string[] = [];
  reconnects = 0;
  private nextId = 0;
  private readonly retry: number[] = [];
  private readonly attempts = new Map<number, number>();
  private sending = true;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(
    private readonly port: number,
    private readonly window = 8,
  ) {
    this.done = this.loop();
  }

  /** No new ids; retries still go out while a connection can be had. */
  stopSending(): void {
    this.sending = false;
  }

  /** No more connections. */
  stop(): void {
    this.stopped = true;
    this.sending = false;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let socket: net.Socket;
      try {
        socket = await connect(this.port);
      } catch {
        await sleep(50);
        continue;
      }
      this.reconnects++;
      await this.serve(socket);
      if (!this.sending && this.retry.length === 0) break;
    }
  }

  private serve(socket: net.Socket): Promise<void> {
    const inflight: Array<{ id: number; key: string }> = [];
    return new Promise((resolve) => {
      const parser = new RedisParser({
        returnReply: (r: unknown) => {
          const c = inflight.shift();
          if (c && r === 'OK') this.acked.push(c.key);
          top();
        },
        returnError: () => {
          inflight.shift();
          top();
        },
        returnFatalError: () => socket.destroy(),
      });
      const top = () => {
        while (!socket.destroyed && inflight.length < this.window) {
          const id = this.retry.shift() ?? (this.sending ? this.nextId++ : undefined);
          if (id === undefined) return;
          const attempt = (this.attempts.get(id) ?? 0) + 1;
          this.attempts.set(id, attempt);
          const key = `soak:rc:${id}:${attempt}`;
          inflight.push({ id, key });
          socket.write(enc('SET', key, 'v'));
        }
      };
      socket.on('data', (d: Buffer) => parser.execute(d));
      socket.once('close', () => {
        for (const c of inflight.splice(0)) {
          this.unanswered.push(c.key);
          this.retry.push(c.id);
        }
        resolve();
      });
      top();
    });
  }
}

/** One MULTI/EXEC at a time, each setting `soak:tx:<n>:a` and `:b`. */
export class TransactionLoop {
  /** Transactions whose EXEC answered with an array. */
  readonly committed: number[] = [];
  /** Transactions whose EXEC never answered: neither key may exist on the master. */
  readonly unanswered: number[] = [];
  readonly done: Promise<void>;
  private sending = true;

  constructor(socket: net.Socket) {
    let n = 0;
    let replies = 0;
    let current = -1;
    const send = () => {
      if (!this.sending || socket.destroyed) return;
      current = n++;
      replies = 0;
      socket.write(
        Buffer.concat([enc('MULTI'), enc('SET', `soak:tx:${current}:a`, '1'), enc('SET', `soak:tx:${current}:b`, '1'), enc('EXEC')]),
      );
    };
    const parser = new RedisParser({
      returnReply: (r: unknown) => {
        if (++replies < 4) return;
        if (Array.isArray(r)) this.committed.push(current);
        current = -1;
        send();
      },
      returnError: () => {
        if (++replies < 4) return;
        current = -1;
        send();
      },
      returnFatalError: () => socket.destroy(),
    });
    socket.on('data', (d: Buffer) => parser.execute(d));
    this.done = new Promise((resolve) =>
      socket.once('close', () => {
        if (current >= 0) this.unanswered.push(current);
        resolve();
      }),
    );
    send();
  }

  static async start(port: number): Promise<TransactionLoop> {
    return new TransactionLoop(await connect(port));
  }

  stopSending(): void {
    this.sending = false;
  }
}

/** SUBSCRIBE on one connection, PUBLISH every few milliseconds on another. */
export class PubSubPair {
  received = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly done: Promise<void>;

  private constructor(
    private readonly sub: net.Socket,
    private readonly pub: net.Socket,
  ) {
    sub.on('data', (d: Buffer) => {
      this.received += d.toString('latin1').split('$7\r\nmessage\r\n').length - 1;
    });
    pub.on('data', () => undefined);
    sub.write(enc('SUBSCRIBE', 'soak:ch'));
    this.timer = setInterval(() => {
      if (!pub.destroyed) pub.write(enc('PUBLISH', 'soak:ch', 'hello'));
    }, 5);
    this.done = Promise.all([new Promise((r) => sub.once('close', r)), new Promise((r) => pub.once('close', r))]).then(() =>
      this.stopSending(),
    );
  }

  static async start(port: number): Promise<PubSubPair> {
    return new PubSubPair(await connect(port), await connect(port));
  }

  stopSending(): void {
    clearInterval(this.timer);
  }

  destroy(): void {
    this.stopSending();
    this.sub.destroy();
    this.pub.destroy();
  }
}

/** BLPOP with no timeout, again after each answer. */
export async function blockingLoop(port: number): Promise<net.Socket> {
  const s = await connect(port);
  s.on('data', () => {
    if (!s.destroyed) s.write(enc('BLPOP', 'soak:nothing', '0'));
  });
  s.write(enc('BLPOP', 'soak:nothing', '0'));
  return s;
}

/** Asks for `count` GETs of `key` and never reads. */
export async function neverReader(port: number, key: string, count: number): Promise<net.Socket> {
  const s = await connect(port);
  s.pause();
  s.write(Buffer.concat(Array.from({ length: count }, () => enc('GET', key))));
  return s;
}
