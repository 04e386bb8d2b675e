/**
 * Backend sockets read into a buffer of their own that is reused from read to read (net's
 * `onread`), instead of a fresh 64 KiB allocation per read as with 'data' events.
 *
 *   kernel ──read──▶ the socket's buffer ──▶ sink(chunk) ──▶ returns: does it still hold chunk?
 *                        ▲                                      │ yes: the next read goes to a
 *                        └──── reused when the sink says no ────┘      fresh buffer instead
 *
 * A chunk is a view of that buffer, valid only until the sink returns: the next read overwrites
 * it. A sink that keeps any reference to it after returning (a write to a socket that did not
 * complete synchronously still points at the bytes; so would a saved slice) must return true, and
 * the socket moves on to a new buffer, leaving the old one to whoever holds it. Anything else a
 * sink wants to keep, it copies.
 *
 * One buffer per socket, never shared: a shared one could not be taken away from the other
 * sockets' next reads once a write pinned it. It starts small (an idle session costs
 * READ_BUFFER_BYTES) and grows to READ_BUFFER_MAX_BYTES once a read fills it.
 *
 * Accepted client sockets: Node 20's net.Server has no `onread` option, so reuseBufferOnAccepted
 * gives an accepted socket the same three fields net.Socket's constructor would have set from
 * `onread` (the private kBuffer/kBufferCb/kBufferGen symbols) and tells its handle
 * (`_handle.useUserBuffer`, what net.js calls). That shape is Node's, not a public API:
 * it is used only when all of it is present and a loopback self-test (probeAcceptedReuse, once
 * per process) saw bytes arrive through it; otherwise the socket is read with 'data' as before.
 */
import net from 'node:net';

/** Gets one read's bytes; returns true when it still references them after returning. */
export type ReadSink = (chunk: Buffer) => boolean;

export const READ_BUFFER_BYTES = 16 * 1024;
export const READ_BUFFER_MAX_BYTES = 64 * 1024;

/** Reads this small from a grown buffer shrink it back: an idle session keeps READ_BUFFER_BYTES. */
export const READ_BUFFER_SHRINK_BELOW = READ_BUFFER_BYTES / 4;

const discard: ReadSink = () => false;

/**
 * The size of the socket's next read buffer after a read of `nread` into one of `size` bytes:
 * a full read grows it to the maximum, a small read (below READ_BUFFER_SHRINK_BELOW) shrinks a
 * grown one back, anything else keeps it. Hysteresis between the two bounds: a stream of reads of
 * one size never switches back and forth.
 */
export function nextSize(size: number, nread: number): number {
  if (nread >= size) return READ_BUFFER_MAX_BYTES;
  if (size > READ_BUFFER_BYTES && nread < READ_BUFFER_SHRINK_BELOW) return READ_BUFFER_BYTES;
  return size;
}

class ReusedReadBuffer {
  sink: ReadSink = discard;
  private buf = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  /** Buffers left to sinks that kept their chunk (for tests). */
  handedOver = 0;

  get currentSize(): number {
    return this.buf.byteLength;
  }

  /** The largest buffer this socket has read into (for tests). */
  peak = READ_BUFFER_BYTES;

  readonly onread: net.OnReadOpts = {
    // Called when the socket connects and after every read: where the next read goes.
    buffer: () => this.buf,
    callback: (nread: number, buf: Uint8Array): boolean => {
      const size = buf.byteLength;
      let kept = true;
      try {
        kept = this.sink(Buffer.from(buf.buffer, buf.byteOffset, nread));
      } finally {
        const next = nextSize(size, nread);
        // A sink that threw may have written part of the chunk somewhere: treat it as kept.
        if (kept) this.handedOver++;
        if (kept || next !== size) this.buf = Buffer.allocUnsafeSlow(next);
        if (next > this.peak) this.peak = next;
      }
      return true;
    },
  };
}

const readers = new WeakMap<net.Socket, ReusedReadBuffer>();

/** net.connect whose reads go to setReadSink's sink (and never to 'data' listeners). */
export function connectReusingBuffer(opts: net.TcpNetConnectOpts): net.Socket {
  const reader = new ReusedReadBuffer();
  const socket = net.connect({ ...opts, onread: reader.onread });
  readers.set(socket, reader);
  return socket;
}

/**
 * Sends the socket's reads to `sink` from now on (undefined: discards them). Returns false when
 * the socket was not made by connectReusingBuffer: the caller reads it with 'data' instead.
 */
export function setReadSink(socket: net.Socket, sink: ReadSink | undefined): boolean {
  const reader = readers.get(socket);
  if (reader === undefined) return false;
  reader.sink = sink ?? discard;
  return true;
}

/** The private shape reuseBufferOnAccepted needs, found by the symbols' descriptions. */
interface Internals {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

function internalsOf(socket: net.Socket): Internals | undefined {
  const bySymbol = new Map(Object.getOwnPropertySymbols(socket).map((sym) => [sym.description, sym]));
  const buffer = bySymbol.get('kBuffer');
  const callback = bySymbol.get('kBufferCb');
  const generator = bySymbol.get('kBufferGen');
  if (buffer === undefined || callback === undefined || generator === undefined) return undefined;
  const s = socket as unknown as Record<symbol, unknown> & { _handle?: { useUserBuffer?: unknown; reading?: unknown } | null };
  // Not yet reading with Node's own buffer, nothing buffered: a socket as pauseOnConnect leaves it.
  if (s[buffer] !== null || s[callback] !== null || s[generator] !== null) return undefined;
  const handle = s._handle;
  if (handle == null || typeof handle.useUserBuffer !== 'function' || handle.reading !== false) return undefined;
  if (socket.readableLength !== 0 || socket.readableFlowing === true) return undefined;
  return { buffer, callback, generator };
}

let acceptedReuse: boolean | undefined;

/**
 * Whether reuseBufferOnAccepted works in this Node: a loopback server accepts one connection
 * (pauseOnConnect), converts it and must receive a known message through the reused buffer.
 * Run once at start-up; false (and 'data' for every client) on any surprise.
 */
export async function probeAcceptedReuse(timeoutMs = 2000): Promise<boolean> {
  if (acceptedReuse !== undefined) return acceptedReuse;
  const message = 'pika-sidecar read-buffer probe\r\n';
  const ok = await new Promise<boolean>((resolve) => {
    let client: net.Socket | undefined;
    const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      let got = '';
      accepted.on('error', () => undefined);
      const converted = convert(accepted, (chunk) => {
        got += chunk.toString('latin1');
        if (got === message) finish(true);
        else if (!message.startsWith(got)) finish(false);
        return false;
      });
      if (!converted) return finish(false);
      accepted.on('data', () => finish(false)); // bytes must not take the old path too
      accepted.resume();
      done.push(() => accepted.destroy());
    });
    const done: Array<() => void> = [];
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(result: boolean): void {
      clearTimeout(timer);
      for (const d of done.splice(0)) d();
      client?.destroy();
      server.close();
      resolve(result);
    }
    server.on('error', () => finish(false));
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      client = net.connect({ port, host: '127.0.0.1' }, () => client!.write(message));
      client.on('error', () => finish(false));
    });
  }).catch(() => false);
  acceptedReuse = ok;
  return ok;
}

function convert(socket: net.Socket, sink: ReadSink): boolean {
  const internals = internalsOf(socket);
  if (internals === undefined) return false;
  const reader = new ReusedReadBuffer();
  reader.sink = sink;
  const s = socket as unknown as Record<symbol, unknown> & { _handle: { useUserBuffer(b: Uint8Array): void } };
  const first = reader.onread.buffer as () => Uint8Array;
  const buf = first();
  // What net.Socket's constructor and initSocketHandle do for `onread`, in the same order.
  s[internals.buffer] = buf;
  s[internals.generator] = first;
  s[internals.callback] = reader.onread.callback;
  s._handle.useUserBuffer(buf);
  readers.set(socket, reader);
  return true;
}

/**
 * Reads an accepted, not yet read socket (pauseOnConnect) through a reused buffer into `sink`,
 * when probeAcceptedReuse found that this Node allows it. Returns false when not: the caller
 * reads it with 'data'.
 */
export function reuseBufferOnAccepted(socket: net.Socket, sink: ReadSink): boolean {
  return acceptedReuse === true && convert(socket, sink);
}

/** The size of the buffer the socket's next read goes to and the largest it had (tests). */
export function readBufferSizes(socket: net.Socket): { now: number; peak: number } | undefined {
  const reader = readers.get(socket);
  return reader === undefined ? undefined : { now: reader.currentSize, peak: reader.peak };
}

/** How many read buffers the socket gave away to sinks that kept their chunk (tests). */
export function readBuffersHandedOver(socket: net.Socket): number {
  return readers.get(socket)?.handedOver ?? -1;
}
