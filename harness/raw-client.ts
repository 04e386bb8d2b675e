/** Raw RESP over a socket, for tests that must see the exact bytes a client receives (resp(): encodeCommand with Buffer arguments too). */
import net from 'node:net';

export function resp(...args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RawClient {
  readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(data: Buffer | string): void {
    this.socket.write(data);
  }

  get received(): Buffer {
    return this.buf;
  }

  /** Waits until `done(bytes)` holds, the socket closes, or the deadline passes (then throws). */
  async until(done: (b: Buffer) => boolean, timeoutMs = 5000, what = 'reply'): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.buf)) {
      if (this.closed)
        throw new Error(`connection closed before ${what}; got ${JSON.stringify(this.buf.subarray(0, 200).toString('latin1'))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.buf.subarray(-200).toString('latin1'))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.buf;
  }

  untilEndsWith(suffix: string, timeoutMs = 5000): Promise<Buffer> {
    const s = Buffer.from(suffix);
    return this.until((b) => b.length >= s.length && b.subarray(b.length - s.length).equals(s), timeoutMs, JSON.stringify(suffix));
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.closed, timeoutMs, 'close').catch((e: Error) => {
      if (!this.closed) throw e;
    });
  }

  take(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Sends `bytes` on a fresh connection and returns everything received up to and including the
 * reply to a trailing `ECHO <marker>` (appended here), so the exchange has a known end.
 */
export async function exchange(port: number, bytes: Buffer, timeoutMs = 10_000): Promise<Buffer> {
  const marker = `end-${Math.random().toString(36).slice(2)}`;
  const c = await RawClient.connect(port);
  try {
    c.write(Buffer.concat([bytes, resp('ECHO', marker)]));
    const suffix = `$${marker.length}\r\n${marker}\r\n`;
    const out = await c.untilEndsWith(suffix, timeoutMs);
    return out.subarray(0, out.length - suffix.length);
  } finally {
    c.close();
  }
}
