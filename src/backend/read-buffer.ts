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
 */
import net from 'node:net';

/** Gets one read's bytes; returns true when it still references them after returning. */
export type ReadSink = (chunk: Buffer) => boolean;

export const READ_BUFFER_BYTES = 16 * 1024;
export const READ_BUFFER_MAX_BYTES = 64 * 1024;

const discard: ReadSink = () => false;

class ReusedReadBuffer {
  sink: ReadSink = discard;
  private buf = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  /** Buffers left to sinks that kept their chunk (for tests). */
  handedOver = 0;

  readonly onread: net.OnReadOpts = {
    // Called when the socket connects and after every read: where the next read goes.
    buffer: () => this.buf,
    callback: (nread: number, buf: Uint8Array): boolean => {
      const size = buf.byteLength;
      let kept = true;
      try {
        kept = this.sink(Buffer.from(buf.buffer, buf.byteOffset, nread));
      } finally {
        // A sink that threw may have written part of the chunk somewhere: treat it as kept.
        if (kept) {
          this.handedOver++;
          this.buf = Buffer.allocUnsafeSlow(nread === size ? READ_BUFFER_MAX_BYTES : size);
        } else if (nread === size && size < READ_BUFFER_MAX_BYTES) {
          this.buf = Buffer.allocUnsafeSlow(READ_BUFFER_MAX_BYTES);
        }
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

/** How many read buffers the socket gave away to sinks that kept their chunk (tests). */
export function readBuffersHandedOver(socket: net.Socket): number {
  return readers.get(socket)?.handedOver ?? -1;
}
