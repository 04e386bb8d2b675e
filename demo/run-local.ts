/**
 * `make run`: a local redis-server on a free loopback port and the sidecar in front of it, in the
 * foreground. Ctrl-C (or SIGTERM) is forwarded to the sidecar, which drains and exits; then redis
 * stops and this process exits with the sidecar's code. A second Ctrl-C is forwarded too: the
 * sidecar reads it as "force".
 *
 *   PIKA_SIDECAR_LISTEN  where clients connect      (default 127.0.0.1:6380)
 *   PIKA_SIDECAR_ADMIN   the sidecar's admin HTTP    (default 127.0.0.1:9121)
 *   RUN_REDIS_PORT       the redis-server's port     (default: a free one)
 *   extra arguments      passed to `pika-sidecar run` (e.g. --announce-delay 1s --log-level debug)
 *
 * The sidecar is harness/sidecar-process.ts's SidecarProcess (`node dist/src/cli.js run ...`).
 */
import { pathToFileURL } from 'node:url';
import { exitCodeOf } from '../harness/processes.js';
import { RedisServer, type RedisServerOptions } from '../harness/redis-server.js';
import { SidecarProcess, type SidecarExit } from '../harness/sidecar-process.js';

/** The demo's servers: quiet; a replica's first sync starts at once (Redis 7 waits 5 s for more replicas by default). */
export const DEMO_REDIS: RedisServerOptions = { logLevel: 'warning', config: ['repl-diskless-sync-delay', '0'] };

/** Splits "host:port" (IPv6 in brackets or bare). */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  return { host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port: Number(address.slice(i + 1)) };
}

/** `make run`. Resolves with the sidecar's exit code. */
export async function runLocal(
  opts: { env?: NodeJS.ProcessEnv; args?: readonly string[]; out?: (line: string) => void } = {},
): Promise<number> {
  const env = opts.env ?? process.env;
  const out = opts.out ?? ((line: string) => process.stderr.write(`${line}\n`));
  const listen = env['PIKA_SIDECAR_LISTEN'] ?? '127.0.0.1:6380';
  const adminAddress = env['PIKA_SIDECAR_ADMIN'] ?? '127.0.0.1:9121';
  const redisPort = env['RUN_REDIS_PORT'] !== undefined ? Number(env['RUN_REDIS_PORT']) : undefined;

  const redis = await RedisServer.start(redisPort !== undefined ? { ...DEMO_REDIS, port: redisPort } : DEMO_REDIS);
  let sidecar: SidecarProcess | undefined;
  let signals = 0;
  let signalled: () => void = () => undefined;
  const firstSignal = new Promise<void>((resolve) => {
    signalled = resolve;
  });
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    signalled();
    if (sidecar?.signal(sig) === true) {
      out(
        signals === 1
          ? `\n${sig}: forwarded to the sidecar; it drains, then exits (again to force)`
          : `${sig}: forwarded again; the sidecar forces the rest of its shutdown`,
      );
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    sidecar = SidecarProcess.start({
      listen,
      backend: redis.address,
      admin: adminAddress,
      args: opts.args ?? [],
      env,
      maxLines: 5000,
      // Foreground: the sidecar's log goes to this process's stdout as it comes.
      onLine: (raw) => process.stdout.write(`${raw}\n`),
      onStderr: (chunk) => process.stderr.write(chunk),
    });
    const listenAt = splitHostPort(listen);
    const adminAt = splitHostPort(adminAddress);
    try {
      await sidecar.waitReady(adminAt);
      out(
        [
          '',
          `pika-sidecar listens on ${listen}, in front of redis-server ${redis.address} (temp dir ${redis.dir})`,
          `  connect:  redis-cli -h ${listenAt.host} -p ${listenAt.port}`,
          `  status:   curl -s http://${adminAt.host}:${adminAt.port}/status    metrics: http://${adminAt.host}:${adminAt.port}/metrics`,
          '  stop:     Ctrl-C (the sidecar drains, then exits; a second Ctrl-C forces)',
          '',
        ].join('\n'),
      );
    } catch (err) {
      if (sidecar.running) throw err;
    }
    // The sidecar is bounded by its own shutdown deadline; SIGKILL only if it overstays it by far.
    const exit = await waitBounded(sidecar, firstSignal, 120_000);
    const code = exitCodeOf(exit);
    out(
      `sidecar exited with code ${code}${exit.killed ? ' (killed: it did not exit in time)' : ''}; stopping redis-server ${redis.address}`,
    );
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (sidecar?.running === true) await sidecar.kill();
    await redis.stop();
  }
}

/** Waits for the sidecar to exit; once a signal has been forwarded, at most `afterSignalMs`. */
async function waitBounded(
  sidecar: SidecarProcess,
  firstSignal: Promise<void>,
  afterSignalMs: number,
): Promise<SidecarExit & { killed: boolean }> {
  const early = await Promise.race([sidecar.exited, firstSignal.then(() => 'signalled' as const)]);
  if (early !== 'signalled') return { ...early, killed: false };
  return sidecar.waitForExit(afterSignalMs);
}

// The entry point of `make run`: one of the two places (with cli.ts) allowed to call process.exit.
const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  runLocal({ args: process.argv.slice(2) }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`make run failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
