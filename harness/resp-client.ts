/**
 * A small RESP client for the harness: connects with a deadline, sends commands pipelined and
 * returns the replies in order, decoded (redis-parser). A server's `-ERR` reply is a value (the
 * project's ErrorReply), not a failure; the encoding is the product's own encodeCommand.
 */
import net from 'node:net';
import RedisParser from 'redis-parser';
import { encodeCommand } from '../src/backend/encode.js';
import { ErrorReply } from '../src/backend/control-connection.js';

export { ErrorReply };

/** A connected socket (TCP_NODELAY), or a rejection naming the address within `timeoutMs`. */
export function connectSocket(host: string, port: number, timeoutMs = 3000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/**
 * One connection that sends commands pipelined and returns the replies in order. Bounded: every
 * `pipeline()` call has a deadline; on timeout or a closed socket the pending calls fail.
 */
export class RespClient {
  private readonly waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  private readonly parser = new RedisParser({
    returnReply: (reply: unknown) => this.waiting.shift()?.resolve(reply),
    returnError: (err: Error) => this.waiting.shift()?.resolve(new ErrorReply(err.message)),
    returnFatalError: (err: Error) => this.fail(new Error(`unreadable reply: ${err.message}`)),
  });
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.parser.execute(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static async connect(host: string, port: number, timeoutMs = 3000): Promise<RespClient> {
    return new RespClient(await connectSocket(host, port, timeoutMs));
  }

  private fail(err: Error): void {
    this.closedError ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
    this.socket.destroy();
  }

  /** Sends every command in one write; resolves with the replies in order. */
  async pipeline(commands: ReadonlyArray<readonly string[]>, timeoutMs = 10_000): Promise<unknown[]> {
    if (this.closedError) throw this.closedError;
    const replies = commands.map(() => new Promise<unknown>((resolve, reject) => this.waiting.push({ resolve, reject })));
    this.socket.write(Buffer.concat(commands.map(encodeCommand)));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`no reply to ${commands.length} pipelined commands within ${timeoutMs} ms`);
        this.fail(err);
        reject(err);
      }, timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(replies), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async call(...args: string[]): Promise<unknown> {
    const [reply] = await this.pipeline([args]);
    return reply;
  }

  close(): void {
    this.fail(new Error('client closed'));
  }
}

/** One command on a fresh connection, for occasional calls (INFO, PING, REPLICAOF). */
export async function callOnce(host: string, port: number, args: string[], timeoutMs = 3000): Promise<unknown> {
  const c = await RespClient.connect(host, port, timeoutMs);
  try {
    const [reply] = await c.pipeline([args], timeoutMs);
    return reply;
  } finally {
    c.close();
  }
}
