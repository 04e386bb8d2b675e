/**
 * Raw byte streams for the fronted Pika ports: a fake server standing in for Pika's +2000 or
 * +10001 (no protocol, whatever the test's handler does with the bytes), and the two ends of a
 * verified transfer — a writer of random bytes that obeys backpressure and a reader that hashes
 * what arrives — so a test can say "these N bytes arrived, in order, unchanged".
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

export class RawServer {
  readonly sockets = new Set<net.Socket>();
  /** Connections accepted since the start. */
  accepted = 0;

  private constructor(
    readonly port: number,
    private readonly server: net.Server,
  ) {}

  /** Listens on 127.0.0.1:port; each connection goes to `onConnection` (default: echo). */
  static start(port: number, onConnection: (s: net.Socket) => void = (s) => s.pipe(s)): Promise<RawServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true }, (s) => {
        raw.accepted += 1;
        raw.sockets.add(s);
        s.on('error', () => undefined);
        s.once('close', () => raw.sockets.delete(s));
        onConnection(s);
      });
      const raw = new RawServer(port, server);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(raw));
    });
  }

  /** Stops listening and destroys open connections. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface StreamWriter {
  /** Resolves with the SHA-256 of everything written, once `end()` is called after the last byte. */
  done: Promise<string>;
  written: number;
  /** True while the last write() returned false and 'drain' has not come yet. */
  blocked: boolean;
}

/** Writes `total` random bytes in `chunk`-sized writes, waiting for 'drain' whenever write() says so, then ends. */
export function writeRandom(socket: net.Socket, total: number, chunk = 256 * 1024): StreamWriter {
  const hash = createHash('sha256');
  const w: StreamWriter = { done: undefined as unknown as Promise<string>, written: 0, blocked: false };
  w.done = new Promise((resolve, reject) => {
    socket.once('error', reject);
    const pump = () => {
      w.blocked = false;
      while (w.written < total) {
        const block = randomBytes(Math.min(chunk, total - w.written));
        hash.update(block);
        w.written += block.length;
        if (!socket.write(block)) {
          w.blocked = true;
          socket.once('drain', pump);
          return;
        }
      }
      socket.end(() => resolve(hash.digest('hex')));
    };
    pump();
  });
  return w;
}

export interface StreamReader {
  /** Resolves at the peer's FIN with the SHA-256 and byte count of everything read. */
  done: Promise<{ digest: string; bytes: number }>;
  bytes: number;
}

/** Hashes every byte read from `socket` until its end. */
export function readAll(socket: net.Socket): StreamReader {
  const hash = createHash('sha256');
  const r: StreamReader = { done: undefined as unknown as Promise<{ digest: string; bytes: number }>, bytes: 0 };
  r.done = new Promise((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      hash.update(d);
      r.bytes += d.length;
    });
    socket.once('end', () => resolve({ digest: hash.digest('hex'), bytes: r.bytes }));
    socket.once('error', reject);
  });
  return r;
}

/**
 * A connected socket to 127.0.0.1:port. A test may end its side and keep reading; a FIN from the
 * peer ends ours too unless `allowHalfOpen` (a transfer that must go on after the peer finished).
 */
export function connectRaw(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves once the socket has closed (however it closed). */
export function closed(socket: net.Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}
