/**
 * An in-process sidecar for integration tests: ports chosen by the OS (0), short budgets, logs
 * captured as parsed JSON lines so tests can assert on them.
 */
import type { SidecarConfig } from '../../src/config/schema.js';
import { DEFAULT_CONFIG } from '../../src/config/keys.js';
import { runSidecar, type Sidecar } from '../../src/main.js';
import { captureLogs } from './log-capture.js';
import { RedisServer, type RedisServerOptions } from '../../harness/redis-server.js';

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

export interface TestSidecar extends Sidecar {
  logs: Array<Record<string, unknown>>;
  rawLogs: string[];
  /** Starts a shutdown (as a preStop HTTP call would) and resolves with the exit code. */
  shutdown(reason?: string): Promise<number>;
  exit: Promise<number>;
}

export function testConfig(backendPort: number, over: DeepPartial<SidecarConfig> = {}): SidecarConfig {
  const base = structuredClone(DEFAULT_CONFIG);
  const cfg: SidecarConfig = {
    ...base,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    backend: { host: '127.0.0.1', port: backendPort },
    poolSize: 2,
    logLevel: 'debug',
    healthIntervalMs: 200,
    ...(over as Partial<SidecarConfig>),
    replication: { ...base.replication, pollIntervalMs: 500, settleMs: 50, ...(over.replication as object) },
    shutdown: { ...base.shutdown, announceDelayMs: 0, metricsLingerMs: 0, ...(over.shutdown as object) },
  };
  return cfg;
}

export async function startSidecar(backendPort: number, over: DeepPartial<SidecarConfig> = {}): Promise<TestSidecar> {
  const cfg = testConfig(backendPort, over);
  const { logger, logs, raw: rawLogs } = captureLogs(cfg.logLevel);
  let ready!: (s: Sidecar) => void;
  let failed!: (e: unknown) => void;
  const started = new Promise<Sidecar>((res, rej) => {
    ready = res;
    failed = rej;
  });
  const exit = runSidecar(cfg, { logger, handleSignals: false, onReady: (s) => ready(s) });
  exit.catch((e: unknown) => failed(e));
  const s = await started;
  return {
    ...s,
    logs,
    rawLogs,
    exit,
    shutdown: async (reason = 'test') => {
      void s.coordinator.start(reason);
      return exit;
    },
  };
}

/**
 * A redis-server and an in-process sidecar in front of it. `defer` is a LIFO deferrer
 * (test/support/defer.ts): the sidecar shuts down before its redis stops, or its shutdown would
 * wait on a dead backend.
 */
export async function redisWithSidecar(
  defer: (fn: () => unknown) => void,
  opts: { redis?: RedisServerOptions; sidecar?: DeepPartial<SidecarConfig> } = {},
): Promise<{ redis: RedisServer; sc: TestSidecar }> {
  const redis = await RedisServer.start(opts.redis);
  defer(() => redis.stop());
  const sc = await startSidecar(redis.port, opts.sidecar);
  defer(() => sc.shutdown());
  return { redis, sc };
}
