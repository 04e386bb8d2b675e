/** The bench's targets: one redis-server reached directly, through bare pipes, peer proxies and sidecars. */
import { fileURLToPath } from 'node:url';
import type { RedisServer } from '../../harness/redis-server.js';
import { freePort } from '../../harness/ports.js';
import { HAPROXY_BIN, NUTCRACKER_BIN, startHaproxy, startTwemproxy } from './peers.js';
import { haveBinary, spawnTracked, stopChild, tail, whenReady } from '../../harness/processes.js';
import { canConnect, LOOPBACK } from './processes.js';
import type { BenchSettings, TargetName } from './settings.js';
import { sidecarCommand, startSidecarProcess } from './sidecar-process.js';

const BARE_PIPE_JS = fileURLToPath(new URL('./bare-pipe.js', import.meta.url));

export interface Target {
  name: TargetName;
  port: number;
  /** The process serving the port (redis-server itself for direct), for its CPU time and RSS. */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** A target that cannot run here (its binary is missing): skipped, with the reason in the report. */
export interface Skipped {
  name: TargetName;
  reason: string;
}

export type BarePipeName = 'pipe' | 'pipe2' | 'pipe-data' | 'pipe-onread' | 'pipe-handle';
const isBarePipe = (name: TargetName): name is BarePipeName => name.startsWith('pipe');
/** bare-pipe.ts's --mode for each bare pipe target. */
const barePipeMode = (name: BarePipeName): string => (name === 'pipe' || name === 'pipe2' ? 'pipe' : name.slice('pipe-'.length));

export async function startBarePipe(name: BarePipeName, backendPort: number): Promise<Target> {
  const port = await freePort();
  const mode = barePipeMode(name);
  // stdin stays a pipe: the child exits when it closes, so even a SIGKILLed bench leaves nothing behind.
  const proc = spawnTracked(
    process.execPath,
    [BARE_PIPE_JS, '--listen', `${LOOPBACK}:${port}`, '--backend', `${LOOPBACK}:${backendPort}`, '--mode', mode],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const err = tail(proc.stderr);
  try {
    await whenReady(proc, () => canConnect(port), `bare pipe (${mode}) on port ${port}`, 10_000);
  } catch (e) {
    await stopChild(proc, 1000);
    throw new Error(`${(e as Error).message}\n${err()}`);
  }
  return {
    name,
    port,
    pid: proc.pid,
    stop: async () => {
      await stopChild(proc, 3000);
    },
  };
}

/** Why a target cannot run on this machine, or undefined when it can. */
export function missingBinary(name: TargetName): string | undefined {
  if (name === 'haproxy' && !haveBinary(HAPROXY_BIN))
    return `${HAPROXY_BIN} not found (Debian: apt-get install haproxy; or set BENCH_HAPROXY)`;
  if (name === 'twemproxy' && !haveBinary(NUTCRACKER_BIN))
    return `${NUTCRACKER_BIN} not found (Debian: apt-get install nutcracker; or set BENCH_NUTCRACKER)`;
  return undefined;
}

export async function startTarget(name: TargetName, redis: RedisServer, settings: BenchSettings): Promise<Target> {
  switch (name) {
    case 'direct':
      return { name, port: redis.port, pid: redis.proc.pid, stop: async () => {} };
    case 'pipe':
    case 'pipe2':
    case 'pipe-data':
    case 'pipe-onread':
    case 'pipe-handle':
      return startBarePipe(name, redis.port);
    case 'haproxy':
      return { name, ...(await startHaproxy(redis.port)) };
    case 'twemproxy':
      return { name, ...(await startTwemproxy(redis.port)) };
    case 'sidecar':
    case 'sidecar-b': {
      const launch = name === 'sidecar' ? settings.sidecar : settings.sidecarB;
      const s = await startSidecarProcess(redis.port, { ...launch, args: ['--announce-delay', '0', ...launch.args] });
      return {
        name,
        port: s.port,
        pid: s.proc.pid,
        stop: async () => {
          await stopChild(s.proc, 15_000);
        },
      };
    }
  }
}

/** The command line of each target, with the ports left as names. */
export function targetCommands(settings: BenchSettings): string[] {
  const lines: string[] = [];
  for (const name of settings.targets) {
    if (isBarePipe(name)) {
      lines.push(
        `${name}: node dist/test/bench/bare-pipe.js --listen 127.0.0.1:PORT --backend 127.0.0.1:REDIS_PORT --mode ${barePipeMode(name)}`,
      );
    } else if (name === 'haproxy') {
      lines.push(`haproxy: ${HAPROXY_BIN} -db -f haproxy.cfg  (mode tcp, nbthread 1, one server)`);
    } else if (name === 'twemproxy') {
      lines.push(`twemproxy: ${NUTCRACKER_BIN} -c nutcracker.yml  (one pool, redis: true, one server)`);
    } else if (name === 'sidecar' || name === 'sidecar-b') {
      const launch = name === 'sidecar' ? settings.sidecar : settings.sidecarB;
      const cmd = sidecarCommand(
        { ...launch, args: ['--announce-delay', '0', ...launch.args] },
        'PORT',
        'REDIS_PORT',
        'ADMIN_PORT',
        'warn',
      );
      lines.push(`${name}: node ${cmd.join(' ').replace(process.cwd() + '/', '')}`);
    }
  }
  return lines;
}
