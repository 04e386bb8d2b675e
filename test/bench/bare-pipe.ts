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

type Mode = 'pipe' | 'data';

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
  if (mode !== 'pipe' && mode !== 'data') throw new Error(`--mode must be pipe or data (got ${mode})`);
  return { listen: hostPort('--listen'), backend: hostPort('--backend'), mode };
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

function main(): void {
  const { listen, backend, mode } = parseArgs(process.argv.slice(2));
  const join = mode === 'pipe' ? joinWithPipe : joinWithDataHandlers;
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: backend.host, port: backend.port, noDelay: true });
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

main();
