/**
 * The baseline the sidecar is measured against (design §10): the least a Node.js TCP proxy can do.
 * One client connection = one backend connection, bytes copied both ways, nothing counted or parsed.
 * Run as its own process (so it has its own event loop, like the sidecar) by test/bench/bench.ts:
 *
 *   node dist/test/bench/bare-pipe.js --listen 127.0.0.1:7001 --backend 127.0.0.1:6379 [--mode pipe|data]
 *
 * --mode pipe (default): `c.pipe(b).pipe(c)`.
 * --mode data: 'data' handlers + write() + pause/resume on backpressure, as the sidecar's session does.
 * Both set TCP_NODELAY on both sockets, as a proxy of small request/reply frames must.
 * Prints `ready <port>` once listening; exits on SIGTERM/SIGINT or when stdin closes (parent gone).
 */
import net from 'node:net';
import { connectReusingBuffer, probeAcceptedReuse, reuseBufferOnAccepted, setReadSink } from '../../src/backend/read-buffer.js';

type Mode = 'pipe' | 'data' | 'onread' | 'handle';
const MODES: readonly Mode[] = ['pipe', 'data', 'onread', 'handle'];

function parseArgs(argv: string[]): { listen: { host: string; port: number }; backend: { host: string; port: number }; mode: Mode } {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const hostPort = (flag: string): { host: string; port: number } => {
    const v = get(flag);
    const m = v === undefined ? null : /^(.+):(\d+)$/.exec(v);
    if (m === null) throw new Error(`${flag} must be host:port (got ${String(v)})`);
    return { host: m[1]!, port: Number(m[2]) };
  };
  const mode = get('--mode') ?? 'pipe';
  if (!(MODES as readonly string[]).includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')} (got ${mode})`);
  return { listen: hostPort('--listen'), backend: hostPort('--backend'), mode: mode as Mode };
}

/** Copies bytes with stream.pipe(): backpressure and flow handled by Node. */
function joinWithPipe(client: net.Socket, backend: net.Socket): void {
  client.pipe(backend).pipe(client);
}

/** Copies bytes with 'data' handlers; a full write buffer pauses the other side until 'drain'. */
function joinWithDataHandlers(client: net.Socket, backend: net.Socket): void {
  client.on('data', (chunk: Buffer) => {
    if (!backend.write(chunk)) client.pause();
  });
  backend.on('drain', () => client.resume());
  backend.on('data', (chunk: Buffer) => {
    if (!client.write(chunk)) backend.pause();
  });
  client.on('drain', () => backend.resume());
  client.on('end', () => backend.end());
  backend.on('end', () => client.end());
}

/** Writes one chunk read from `reader` to `to`; returns whether the bytes are still referenced. */
type ChunkWriter = (chunk: Buffer) => boolean;

/**
 * Reads both sockets into reused buffers (src/backend/read-buffer.ts, as the sidecar does) and
 * hands each chunk to a writer for the other socket; a write still queued keeps its buffer.
 */
function joinReusingBuffers(client: net.Socket, backend: net.Socket, writer: (to: net.Socket, reader: net.Socket) => ChunkWriter): void {
  const toBackend = writer(backend, client);
  if (!reuseBufferOnAccepted(client, toBackend)) client.on('data', toBackend);
  setReadSink(backend, writer(client, backend));
  backend.on('drain', () => client.resume());
  client.on('drain', () => backend.resume());
  client.on('end', () => backend.end());
  backend.on('end', () => client.end());
  client.resume();
}

/** write(), pausing the reader while the target's buffer is full. */
function streamWriter(to: net.Socket, reader: net.Socket): ChunkWriter {
  return (chunk) => {
    if (!to.write(chunk)) reader.pause();
    return to.writableLength > 0;
  };
}

// The experiment below writes to the socket's handle directly (Node-internal, not for the product):
// what the Writable stream machinery costs per chunk.
interface StreamWrap {
  WriteWrap: new () => Record<string, unknown>;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}
let streamWrapBinding: StreamWrap | undefined;
/** Loaded only by --mode handle: the other modes, the baselines, touch no internal binding. */
function streamWrap(): StreamWrap {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return (streamWrapBinding ??= (process as any).binding('stream_wrap') as StreamWrap);
}

/**
 * Writes `chunk` to the socket's handle when nothing is queued, else through the stream (which
 * libuv orders after a direct write still in flight). Returns whether the bytes are still referenced.
 */
function writeDirect(socket: net.Socket, chunk: Buffer, pending: { n: number }, reader: net.Socket): boolean {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const handle = (socket as any)._handle;
  if (pending.n > 0 || socket.writableLength > 0 || handle == null) {
    if (!socket.write(chunk)) reader.pause();
    return socket.writableLength > 0 || pending.n > 0;
  }
  const binding = streamWrap();
  const req = new binding.WriteWrap();
  req.handle = handle;
  req.oncomplete = (status: number) => {
    pending.n--;
    if (status < 0) socket.destroy();
  };
  req.async = false;
  const err = handle.writeBuffer(req, chunk) as number;
  if (err !== 0) {
    socket.destroy();
    return false;
  }
  if (binding.streamBaseState[binding.kLastWriteWasAsync] === 0) return false;
  req.buffer = chunk;
  pending.n++;
  return true;
}

/** writeDirect, with the count of direct writes still in flight to `to`. */
function handleWriter(to: net.Socket, reader: net.Socket): ChunkWriter {
  const pending = { n: 0 };
  return (chunk) => writeDirect(to, chunk, pending, reader);
}

async function main(): Promise<void> {
  const { listen, backend, mode } = parseArgs(process.argv.slice(2));
  const join = {
    pipe: joinWithPipe,
    data: joinWithDataHandlers,
    onread: (c: net.Socket, b: net.Socket) => joinReusingBuffers(c, b, streamWriter),
    handle: (c: net.Socket, b: net.Socket) => joinReusingBuffers(c, b, handleWriter),
  }[mode];
  const reused = mode === 'onread' || mode === 'handle';
  if (reused && !(await probeAcceptedReuse())) console.error('bare-pipe: this Node cannot read accepted sockets into reused buffers');
  const server = net.createServer({ noDelay: true, pauseOnConnect: reused }, (client) => {
    const opts = { host: backend.host, port: backend.port, noDelay: true };
    const upstream = reused ? connectReusingBuffer(opts) : net.connect(opts);
    // One teardown for every way a connection ends: an error or close on either side closes both.
    const teardown = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', teardown).on('close', teardown);
    upstream.on('error', teardown).on('close', teardown);
    join(client, upstream);
  });
  server.on('error', (err) => {
    console.error(`bare-pipe: ${err.message}`);
    process.exit(1);
  });
  server.listen(listen.port, listen.host, () => {
    process.stdout.write(`ready ${listen.port}\n`);
  });
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop).on('SIGINT', stop);
  // The bench holds our stdin open; when it goes away (even SIGKILLed) we go too.
  process.stdin.on('end', stop).on('close', stop).resume();
}

void main();
