/** What one `make bench` run measures, read from the BENCH_* environment (see docs/benchmark.md). */

/**
 * Every target the bench knows. pipe2 is an A/A twin of pipe (the noise floor); sidecar-b is a
 * second sidecar (another build or other node flags) measured side by side with the first.
 */
export const TARGET_NAMES = [
  'direct',
  'pipe',
  'pipe2',
  'pipe-data',
  'pipe-onread',
  'pipe-handle',
  'haproxy',
  'twemproxy',
  'sidecar',
  'sidecar-b',
] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export const DEFAULT_TARGETS: readonly TargetName[] = ['direct', 'pipe', 'pipe2', 'haproxy', 'twemproxy', 'sidecar'];

/** One redis-benchmark invocation shape; each runs SET then GET. */
export interface Workload {
  name: string;
  clients: number;
  pipeline: number;
  requests: number;
}

/** How one sidecar target is started: entry point, extra flags for `run`, node flags. */
export interface SidecarLaunch {
  cli: string;
  args: string[];
  nodeFlags: string[];
}

export interface BenchSettings {
  targets: TargetName[];
  rounds: number;
  scale: number;
  idleSessions: number;
  sidecar: SidecarLaunch;
  sidecarB: SidecarLaunch;
  workloads: Workload[];
}

const words = (s: string | undefined): string[] => (s ?? '').split(/\s+/).filter((w) => w !== '');

/** BENCH_QUICK=1 is a smoke run: 2 rounds at 0.2 of the requests and 300 idle sessions, unless set. */
export function readSettings(env: NodeJS.ProcessEnv, defaultCli: string): BenchSettings {
  const quick = env.BENCH_QUICK === '1';
  const targets = (env.BENCH_TARGETS ?? DEFAULT_TARGETS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const t of targets) {
    if (!(TARGET_NAMES as readonly string[]).includes(t))
      throw new Error(`BENCH_TARGETS: unknown target '${t}' (allowed: ${TARGET_NAMES.join(', ')})`);
  }
  if (!targets.includes('direct')) throw new Error('BENCH_TARGETS must include direct: every result is a ratio to it');
  const rounds = numberFromEnv(env, 'BENCH_ROUNDS', quick ? 2 : 5, 1, 20, true);
  const scale = numberFromEnv(env, 'BENCH_REQUESTS_SCALE', quick ? 0.2 : 1, 0.01, 20, false);
  // Each session holds two sockets in the sidecar (client + backend): 9,000 fits a 20,000 fd limit.
  const idleSessions = numberFromEnv(env, 'BENCH_IDLE_SESSIONS', quick ? 300 : 1000, 0, 9000, true);
  const sidecar: SidecarLaunch = {
    cli: env.BENCH_SIDECAR_CLI ?? defaultCli,
    args: words(env.BENCH_SIDECAR_ARGS),
    nodeFlags: words(env.BENCH_SIDECAR_NODE_FLAGS),
  };
  const sidecarB: SidecarLaunch = {
    cli: env.BENCH_SIDECAR_B_CLI ?? sidecar.cli,
    args: env.BENCH_SIDECAR_B_ARGS === undefined ? sidecar.args : words(env.BENCH_SIDECAR_B_ARGS),
    nodeFlags: env.BENCH_SIDECAR_B_NODE_FLAGS === undefined ? sidecar.nodeFlags : words(env.BENCH_SIDECAR_B_NODE_FLAGS),
  };
  // Sized so each test (SET or GET) takes about 1 s through a Node.js proxy on 2 shared cores at scale 1:
  // short runs keep the paired runs of one round close in time.
  const n = (base: number): number => Math.max(1000, Math.round(base * scale));
  const workloads: Workload[] = [
    { name: 'c50 P1', clients: 50, pipeline: 1, requests: n(40_000) },
    { name: 'c50 P16', clients: 50, pipeline: 16, requests: n(300_000) },
    { name: 'c1 P1 (serial)', clients: 1, pipeline: 1, requests: n(15_000) },
  ];
  return { targets: [...new Set(targets)] as TargetName[], rounds, scale, idleSessions, sidecar, sidecarB, workloads };
}

function numberFromEnv(env: NodeJS.ProcessEnv, key: string, dflt: number, min: number, max: number, integer: boolean): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new Error(`${key}=${raw}: expected ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`);
  }
  return v;
}
