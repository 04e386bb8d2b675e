/**
 * The proxies a user would pick instead of the sidecar, as bench targets: HAProxy in TCP mode with
 * one thread, and twemproxy (nutcracker) with one redis server in its pool. Each gets a generated
 * config in a temp directory and a free loopback port; a missing binary skips the target.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../harness/ports.js';
import { haveBinary, spawnTracked, stopChild, tail, whenReady } from '../../harness/processes.js';
import { atExit, canConnect, LOOPBACK } from './processes.js';

export const HAPROXY_BIN = process.env.BENCH_HAPROXY ?? (haveBinary('haproxy') ? 'haproxy' : '/usr/sbin/haproxy');
export const NUTCRACKER_BIN = process.env.BENCH_NUTCRACKER ?? (haveBinary('nutcracker') ? 'nutcracker' : '/usr/sbin/nutcracker');

export interface PeerProcess {
  port: number;
  pid: number | undefined;
  /** How it was started, for the report (ports as names). */
  command: string;
  stop(): Promise<void>;
}

/** HAProxy: TCP mode, one thread, as a plain byte relay (what the sidecar does, minus the framing). */
export function haproxyConfig(port: number | string, backendPort: number | string): string {
  return [
    'global',
    '  nbthread 1',
    '  maxconn 9500', // two fds per connection under this machine's 20,000 fd limit; BENCH_IDLE_SESSIONS ≤ 9,000
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 1h',
    '  timeout server 1h',
    'listen bench',
    `  bind ${LOOPBACK}:${port}`,
    `  server backend ${LOOPBACK}:${backendPort}`,
    '',
  ].join('\n');
}

/** twemproxy: one pool, one redis server, RESP-aware (`redis: true`); it multiplexes clients over its server connection. */
export function twemproxyConfig(port: number | string, backendPort: number | string): string {
  return [
    'bench:',
    `  listen: ${LOOPBACK}:${port}`,
    '  hash: fnv1a_64',
    '  distribution: ketama',
    '  redis: true',
    '  preconnect: true',
    '  auto_eject_hosts: false',
    '  timeout: 60000',
    '  servers:',
    `   - ${LOOPBACK}:${backendPort}:1`,
    '',
  ].join('\n');
}

async function startPeer(
  what: string,
  bin: string,
  port: number,
  config: string,
  configName: string,
  args: (configPath: string) => string[],
  command: string,
): Promise<PeerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-bench-'));
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  atExit(removeDir);
  const configPath = join(dir, configName);
  writeFileSync(configPath, config);
  const proc = spawnTracked(bin, args(configPath), { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = tail(proc.stdout);
  const err = tail(proc.stderr);
  try {
    await whenReady(proc, () => canConnect(port), `${what} on port ${port}`, 10_000);
  } catch (e) {
    await stopChild(proc, 1000);
    removeDir();
    throw new Error(`${(e as Error).message}\n${err()}${output()}\nconfig:\n${config}`);
  }
  return {
    port,
    pid: proc.pid,
    command,
    stop: async () => {
      await stopChild(proc, 3000);
      removeDir();
    },
  };
}

export async function startHaproxy(backendPort: number): Promise<PeerProcess> {
  const port = await freePort();
  // -db: foreground, no daemon, no master process: the pid is the one process doing the work.
  return startPeer(
    'haproxy',
    HAPROXY_BIN,
    port,
    haproxyConfig(port, backendPort),
    'haproxy.cfg',
    (cfg) => ['-db', '-f', cfg],
    `${HAPROXY_BIN} -db -f haproxy.cfg`,
  );
}

export async function startTwemproxy(backendPort: number): Promise<PeerProcess> {
  const port = await freePort();
  const statsPort = await freePort();
  return startPeer(
    'twemproxy',
    NUTCRACKER_BIN,
    port,
    twemproxyConfig(port, backendPort),
    'nutcracker.yml',
    (cfg) => ['-c', cfg, '-s', String(statsPort), '-a', LOOPBACK, '-v', '2', '-o', join(cfg, '..', 'nutcracker.log')],
    `${NUTCRACKER_BIN} -c nutcracker.yml -s STATS_PORT -a 127.0.0.1`,
  );
}
