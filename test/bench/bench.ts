/**
 * `make bench` (design §10): redis-benchmark SET/GET against one redis-server reached three ways —
 * directly, through a bare Node.js pipe proxy (./bare-pipe.ts) and through the sidecar — in
 * interleaved rounds, then the sidecar's memory per idle session and its exit time after SIGTERM.
 * Prints a markdown report (also written to dist/bench-results.md). It is a report, not a test:
 * a missed target prints MISS; the exit code is 1 only when something failed to run.
 *
 * Environment:
 *   BENCH_TARGETS         direct,pipe,sidecar (default); also pipe-data (the bare pipe with 'data'
 *                         handlers instead of pipe()) and pipe2 (a second, identical bare pipe: an
 *                         A/A run whose ratio to pipe shows the noise floor of this machine)
 *   BENCH_ROUNDS          rounds of every (workload, target) pair, order rotated per round (default 5)
 *   BENCH_REQUESTS_SCALE  multiplies every request count (default 1; 0.2 for a quick smoke run)
 *   BENCH_IDLE_SESSIONS   idle sessions for the memory and exit measurements (default 1000, max 9000; 0 = skip)
 *   BENCH_SIDECAR_ARGS    extra flags for `pika-sidecar run`, space-separated
 *   BENCH_SIDECAR_CLI     the sidecar entry point to run (default dist/src/cli.js)
 *
 * Every process started here is killed when the bench exits, on error and on Ctrl-C too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from '../support/ports.js';
import { RedisServer, redisVersion } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

const LOOPBACK = '127.0.0.1';
const BARE_PIPE_JS = fileURLToPath(new URL('./bare-pipe.js', import.meta.url));
const SIDECAR_CLI_JS = process.env.BENCH_SIDECAR_CLI ?? fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const RESULTS_MD = fileURLToPath(new URL('../../bench-results.md', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Settings

export const TARGET_NAMES = ['direct', 'pipe', 'pipe2', 'pipe-data', 'sidecar'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** One redis-benchmark invocation shape; each runs SET then GET. */
interface Workload {
  name: string;
  clients: number;
  pipeline: number;
  requests: number;
}

interface BenchSettings {
  targets: TargetName[];
  rounds: number;
  scale: number;
  idleSessions: number;
  sidecarArgs: string[];
  workloads: Workload[];
}

function readSettings(env: NodeJS.ProcessEnv): BenchSettings {
  const targets = (env.BENCH_TARGETS ?? 'direct,pipe,sidecar')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const t of targets) {
    if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`BENCH_TARGETS: unknown target '${t}' (allowed: ${TARGET_NAMES.join(', ')})`);
  }
  if (!targets.includes('direct')) throw new Error('BENCH_TARGETS must include direct: every result is a ratio to it');
  const rounds = numberFromEnv(env, 'BENCH_ROUNDS', 5, 1, 20, true);
  const scale = numberFromEnv(env, 'BENCH_REQUESTS_SCALE', 1, 0.01, 20, false);
  // Each session holds two sockets in the sidecar (client + backend): 9,000 fits a 20,000 fd limit.
  const idleSessions = numberFromEnv(env, 'BENCH_IDLE_SESSIONS', 1000, 0, 9000, true);
  const sidecarArgs = (env.BENCH_SIDECAR_ARGS ?? '').split(/\s+/).filter((s) => s !== '');
  // Sized so each test (SET or GET) takes about 1 s through a Node.js proxy on 2 shared cores at scale 1:
  // short runs keep the paired runs of one round close in time.
  const n = (base: number): number => Math.max(1000, Math.round(base * scale));
  const workloads: Workload[] = [
    { name: 'c50 P1', clients: 50, pipeline: 1, requests: n(40_000) },
    { name: 'c50 P16', clients: 50, pipeline: 16, requests: n(300_000) },
    { name: 'c1 P1 (serial)', clients: 1, pipeline: 1, requests: n(15_000) },
  ];
  return { targets: [...new Set(targets)] as TargetName[], rounds, scale, idleSessions, sidecarArgs, workloads };
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

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed on exit, error or signal.

const children = new Set<ChildProcess>();
const cleanups: Array<() => void> = [];

function track(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

function killEverything(): void {
  for (const p of children) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const c of cleanups.splice(0)) c();
}

function installCleanupHandlers(): void {
  process.on('exit', killEverything);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      console.error(`\nbench: ${sig} received; killing ${children.size} child processes`);
      killEverything();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Keeps the last `max` characters of a stream, for error messages. */
function tail(stream: NodeJS.ReadableStream | null, max = 8000): () => string {
  let text = '';
  stream?.on('data', (d: Buffer) => {
    text = (text + d.toString()).slice(-max);
  });
  return () => text;
}

async function exitOf(proc: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null } | undefined> {
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode };
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
async function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  if ((await exitOf(proc, graceMs)) === undefined) {
    proc.kill('SIGKILL');
    await exitOf(proc, 5000);
  }
}

// ---------------------------------------------------------------------------------------------
// redis-benchmark

export interface BenchRow {
  test: string;
  rps: number;
  avgMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Parses `redis-benchmark --csv` output; columns are found by the header line's names. */
export function parseBenchmarkCsv(text: string): BenchRow[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('"'));
  const cells = (line: string): string[] => line.split(',').map((c) => c.replace(/^"|"$/g, ''));
  const headerLine = lines.find((l) => cells(l).includes('test'));
  if (headerLine === undefined) throw new Error(`redis-benchmark printed no CSV header:\n${text.slice(0, 500)}`);
  const header = cells(headerLine);
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`redis-benchmark CSV has no '${name}' column (header: ${header.join(',')})`);
    return i;
  };
  const idx = {
    test: col('test'),
    rps: col('rps'),
    avg: col('avg_latency_ms'),
    p50: col('p50_latency_ms'),
    p95: col('p95_latency_ms'),
    p99: col('p99_latency_ms'),
    max: col('max_latency_ms'),
  };
  const num = (row: string[], i: number): number => {
    const v = Number(row[i]);
    if (!Number.isFinite(v)) throw new Error(`redis-benchmark CSV: '${row[i]}' is not a number in ${row.join(',')}`);
    return v;
  };
  return lines
    .filter((l) => l !== headerLine)
    .map(cells)
    .map((row) => ({
      test: row[idx.test] ?? '',
      rps: num(row, idx.rps),
      avgMs: num(row, idx.avg),
      p50Ms: num(row, idx.p50),
      p95Ms: num(row, idx.p95),
      p99Ms: num(row, idx.p99),
      maxMs: num(row, idx.max),
    }));
}

async function runRedisBenchmark(port: number, w: Workload): Promise<BenchRow[]> {
  const args = ['-h', LOOPBACK, '-p', String(port), '-c', String(w.clients), '-n', String(w.requests), '-P', String(w.pipeline), '-t', 'set,get', '--csv'];
  const proc = track(spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = tail(proc.stdout, 20_000);
  const err = tail(proc.stderr);
  // Generous: assumes at least 10k requests/s per test, plus start-up.
  const timeoutMs = 20_000 + (2 * w.requests) / 10;
  const exit = await exitOf(proc, timeoutMs);
  const what = `redis-benchmark ${args.join(' ')}`;
  if (exit === undefined) {
    proc.kill('SIGKILL');
    throw new Error(`${what}: no result within ${Math.round(timeoutMs / 1000)} s\n${err()}`);
  }
  if (exit.code !== 0) throw new Error(`${what}: exit ${exit.code ?? exit.signal}\n${err()}${out()}`);
  const rows = parseBenchmarkCsv(out());
  for (const test of ['SET', 'GET']) {
    const row = rows.find((r) => r.test === test);
    if (row === undefined || row.rps <= 0) throw new Error(`${what}: no ${test} result\n${out()}\n${err()}`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Targets

interface Target {
  name: TargetName;
  port: number;
  /** The process serving the port (redis-server itself for direct), for its CPU time. */
  pid: number | undefined;
  stop(): Promise<void>;
}

let clockTicksPerSecond: number | undefined;
function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    const v = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
    clockTicksPerSecond = Number.isInteger(v) && v > 0 ? v : 100;
  }
  return clockTicksPerSecond;
}

/**
 * User + system CPU seconds a process has used (Linux /proc), or undefined. CPU per request is
 * steadier than req/s on a shared machine: background load steals time more than cycles per request.
 */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, LOOPBACK);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function httpGet(port: number, path: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: LOOPBACK, port, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Resolves once `ready()` is true; rejects at once if the process exits first (waitFor alone would
 * retry through that until its deadline), or when the deadline passes.
 */
async function whenReady(proc: ChildProcess, ready: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  let settled = false;
  const exitedEarly = new Promise<never>((_resolve, reject) => {
    proc.once('exit', (code, signal) => {
      if (!settled) reject(new Error(`${what}: the process exited (code ${code ?? signal}) before it was ready`));
    });
  });
  exitedEarly.catch(() => {}); // observed by the race below; never an unhandled rejection later
  try {
    await Promise.race([exitedEarly, waitFor(ready, { timeoutMs, intervalMs: 50, what })]);
  } finally {
    settled = true;
  }
}

async function startBarePipe(name: 'pipe' | 'pipe2' | 'pipe-data', backendPort: number): Promise<Target> {
  const port = await freePort();
  const mode = name === 'pipe-data' ? 'data' : 'pipe';
  // stdin stays a pipe: the child exits when it closes, so even a SIGKILLed bench leaves nothing behind.
  const proc = track(
    spawn(process.execPath, [BARE_PIPE_JS, '--listen', `${LOOPBACK}:${port}`, '--backend', `${LOOPBACK}:${backendPort}`, '--mode', mode], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const err = tail(proc.stderr);
  try {
    await whenReady(proc, () => canConnect(port), `bare pipe (${mode}) on port ${port}`, 10_000);
  } catch (e) {
    await stopProcess(proc, 1000);
    throw new Error(`${(e as Error).message}\n${err()}`);
  }
  return { name, port, pid: proc.pid, stop: () => stopProcess(proc, 3000) };
}

interface SidecarProcess {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  output(): string;
}

/** `pika-sidecar run` as a child process; resolves once GET /readyz answers 200. */
async function startSidecarProcess(backendPort: number, extraArgs: string[], logLevel = 'warn'): Promise<SidecarProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const args = [
    SIDECAR_CLI_JS,
    'run',
    '--listen', `${LOOPBACK}:${port}`,
    '--backend', `${LOOPBACK}:${backendPort}`,
    '--admin', `${LOOPBACK}:${adminPort}`,
    '--log-level', logLevel,
    ...extraArgs,
  ];
  const proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = tail(proc.stdout, 64_000);
  const err = tail(proc.stderr);
  const output = (): string => `${err()}${out()}`;
  try {
    const ready = async (): Promise<boolean> => (await httpGet(adminPort, '/readyz', 1000)).status === 200;
    await whenReady(proc, ready, `sidecar GET /readyz = 200 on admin port ${adminPort}`, 15_000);
  } catch (e) {
    await stopProcess(proc, 1000);
    throw new Error(
      `${(e as Error).message}\ncommand: node ${args.join(' ')}\n${output()}\n` +
        '(to bench without the sidecar: BENCH_TARGETS=direct,pipe)',
    );
  }
  return { proc, port, adminPort, output };
}

async function startTarget(name: TargetName, redis: RedisServer, settings: BenchSettings): Promise<Target> {
  switch (name) {
    case 'direct':
      return { name, port: redis.port, pid: redis.proc.pid, stop: async () => {} };
    case 'pipe':
    case 'pipe2':
    case 'pipe-data':
      return startBarePipe(name, redis.port);
    case 'sidecar': {
      const s = await startSidecarProcess(redis.port, ['--announce-delay', '0', ...settings.sidecarArgs]);
      return { name, port: s.port, pid: s.proc.pid, stop: () => stopProcess(s.proc, 15_000) };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds and statistics

interface Sample {
  target: TargetName;
  workload: string;
  round: number;
  row: BenchRow;
  /** CPU time of the target's process per request over the whole invocation (SET + GET). */
  cpuUsPerRequest: number | undefined;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Round r runs the targets starting at index r: each target takes each position in turn. */
export function rotated<T>(items: readonly T[], r: number): T[] {
  const k = items.length === 0 ? 0 : r % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function runRounds(targets: Target[], settings: BenchSettings): Promise<Sample[]> {
  // Warm-up (not recorded): JIT, pool and socket buffers of each proxy reach steady state.
  const warmup: Workload = { name: 'warm-up', clients: 50, pipeline: 16, requests: Math.max(1000, Math.round(100_000 * settings.scale)) };
  for (const t of targets) await runRedisBenchmark(t.port, warmup);
  const samples: Sample[] = [];
  for (let round = 0; round < settings.rounds; round++) {
    for (const w of settings.workloads) {
      for (const t of rotated(targets, round)) {
        const started = Date.now();
        const cpuBefore = cpuSeconds(t.pid);
        const rows = await runRedisBenchmark(t.port, w);
        const cpuAfter = cpuSeconds(t.pid);
        // redis-benchmark sends w.requests SETs and w.requests GETs.
        const cpuUsPerRequest = cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1e6) / (2 * w.requests);
        for (const row of rows) samples.push({ target: t.name, workload: w.name, round, row, cpuUsPerRequest });
        const set = rows.find((r) => r.test === 'SET');
        const get = rows.find((r) => r.test === 'GET');
        log(
          `round ${round + 1}/${settings.rounds}  ${w.name.padEnd(15)} ${t.name.padEnd(9)} ` +
            `SET ${fmtRps(set?.rps)}  GET ${fmtRps(get?.rps)} req/s  (${((Date.now() - started) / 1000).toFixed(1)} s)`,
        );
      }
    }
  }
  return samples;
}

interface Summary {
  target: TargetName;
  workload: string;
  test: string;
  rps: number;
  rpsSpread: number;
  p50Ms: number;
  p99Ms: number;
  /** Median over rounds of this run's req/s over direct's in the same round (paired). */
  rpsVsDirect: number;
  /** Median over rounds of this run's p50 minus direct's in the same round, in µs (paired). */
  p50OverDirectUs: number;
}

const TESTS = ['SET', 'GET'] as const;

/**
 * Values of f over pairs of runs of targets a and b in the same round, workload and test: runs
 * close in time share the machine's background load, so their ratio is steadier than a ratio of
 * medians taken across rounds.
 */
function paired(samples: Sample[], a: TargetName, b: TargetName, workload: string, tests: readonly string[], f: (a: BenchRow, b: BenchRow) => number): number[] {
  const values: number[] = [];
  for (const sa of samples) {
    if (sa.target !== a || sa.workload !== workload || !tests.includes(sa.row.test)) continue;
    const sb = samples.find((s) => s.target === b && s.workload === workload && s.round === sa.round && s.row.test === sa.row.test);
    if (sb !== undefined) values.push(f(sa.row, sb.row));
  }
  return values;
}

function summarize(samples: Sample[], settings: BenchSettings): Summary[] {
  const out: Summary[] = [];
  for (const w of settings.workloads) {
    for (const test of TESTS) {
      for (const target of settings.targets) {
        const rows = samples.filter((s) => s.target === target && s.workload === w.name && s.row.test === test).map((s) => s.row);
        if (rows.length === 0) continue;
        const rpsValues = rows.map((r) => r.rps);
        const rps = median(rpsValues);
        out.push({
          target,
          workload: w.name,
          test,
          rps,
          rpsSpread: (Math.max(...rpsValues) - Math.min(...rpsValues)) / rps,
          p50Ms: median(rows.map((r) => r.p50Ms)),
          p99Ms: median(rows.map((r) => r.p99Ms)),
          rpsVsDirect: median(paired(samples, target, 'direct', w.name, [test], (x, d) => x.rps / d.rps)),
          p50OverDirectUs: median(paired(samples, target, 'direct', w.name, [test], (x, d) => (x.p50Ms - d.p50Ms) * 1000)),
        });
      }
    }
  }
  return out;
}

/** Target a against target b for one workload, SET and GET pooled: medians of paired values. */
interface Comparison {
  workload: Workload;
  pairs: number;
  rpsRatio: number;
  p99Ratio: number;
  p50DiffUs: number;
}

function compare(samples: Sample[], a: TargetName, b: TargetName, settings: BenchSettings): Comparison[] {
  const out: Comparison[] = [];
  for (const w of settings.workloads) {
    const ratios = paired(samples, a, b, w.name, TESTS, (x, y) => x.rps / y.rps);
    if (ratios.length === 0) continue;
    out.push({
      workload: w,
      pairs: ratios.length,
      rpsRatio: median(ratios),
      p99Ratio: median(paired(samples, a, b, w.name, TESTS, (x, y) => x.p99Ms / y.p99Ms)),
      p50DiffUs: median(paired(samples, a, b, w.name, TESTS, (x, y) => (x.p50Ms - y.p50Ms) * 1000)),
    });
  }
  return out;
}

interface Check {
  what: string;
  target: string;
  measured: string;
  pass: boolean;
}

/** The §10 targets: the sidecar against the bare pipe at each depth, and serially. */
function checkTargets(samples: Sample[], settings: BenchSettings): Check[] {
  const checks: Check[] = [];
  for (const c of compare(samples, 'sidecar', 'pipe', settings)) {
    const n = `median of ${c.pairs} paired runs`;
    if (c.workload.clients > 1) {
      checks.push({
        what: `${c.workload.name} throughput`,
        target: '≥ 0.90 × pipe',
        measured: `${c.rpsRatio.toFixed(2)} × pipe (${n})`,
        pass: c.rpsRatio >= 0.9,
      });
      checks.push({
        what: `${c.workload.name} p99 latency`,
        target: '≤ 1.2 × pipe',
        measured: `${c.p99Ratio.toFixed(2)} × pipe (${n})`,
        pass: c.p99Ratio <= 1.2,
      });
    } else {
      checks.push({
        what: `${c.workload.name} p50 latency`,
        target: '≤ pipe + 10 µs',
        measured: `${signed(c.p50DiffUs)} µs over pipe (${n})`,
        pass: c.p50DiffUs <= 10,
      });
    }
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------
// Idle sessions: memory per session, and exit time after SIGTERM

/** Flags of the sidecar measured with idle sessions: no announce delay, no metrics linger. */
const EXIT_MEASURE_ARGS = ['--announce-delay', '0', '--metrics-linger', '0'];

interface IdleResult {
  sessions: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number | undefined;
  heapAfter: number | undefined;
  rssSource: string;
  /** SIGTERM → every idle client connection closed by the sidecar (undefined: not all were). */
  allClosedMs: number | undefined;
  closedBeforeExit: number;
  /** SIGTERM → process exit (undefined: it did not exit within the deadline). */
  exitMs: number | undefined;
  exitCode: number | string | undefined;
  /** Phases from the sidecar's final shutdown report log line, when it printed one. */
  phases: string | undefined;
}

/** Opens a connection, sends PING, resolves once +PONG arrived (the session reached the backend). */
function openSession(port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, LOOPBACK);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no PONG within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.on('error', fail);
    sock.once('connect', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.on('data', function onData(d: Buffer) {
      buf += d.toString('latin1');
      if (buf.includes('+PONG\r\n')) {
        clearTimeout(timer);
        sock.off('data', onData).off('error', fail);
        sock.on('error', () => {}); // the sidecar closing idle sessions later is expected
        resolve(sock);
      }
    });
  });
}

async function openSessions(port: number, count: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  cleanups.push(() => socks.forEach((s) => s.destroy()));
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    socks.push(...(await Promise.all(Array.from({ length: n }, () => openSession(port, 10_000)))));
  }
  return socks;
}

/** RSS (and heap used) as the sidecar's /metrics reports it; /proc as the fallback for RSS. */
async function sidecarMemory(s: SidecarProcess): Promise<{ rss: number; heap: number | undefined; source: string }> {
  const metric = (text: string, name: string): number | undefined => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]);
  };
  let text = '';
  try {
    text = (await httpGet(s.adminPort, '/metrics')).body;
  } catch {
    /* fall back to /proc below */
  }
  const heap = metric(text, 'pika_sidecar_nodejs_heap_size_used_bytes');
  const rss = metric(text, 'pika_sidecar_process_resident_memory_bytes');
  if (rss !== undefined) return { rss, heap, source: '/metrics pika_sidecar_process_resident_memory_bytes' };
  const status = readFileSync(`/proc/${s.proc.pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (kib === null) throw new Error('cannot read the sidecar RSS from /metrics or /proc');
  return { rss: Number(kib[1]) * 1024, heap, source: '/proc/<pid>/status VmRSS' };
}

async function measureIdleSessions(redis: RedisServer, settings: BenchSettings): Promise<IdleResult> {
  const sessions = settings.idleSessions;
  // info: the shutdown report (phases with durations) is logged at info when every phase completed.
  const s = await startSidecarProcess(redis.port, [...EXIT_MEASURE_ARGS, ...settings.sidecarArgs], 'info');
  try {
    // Warm the session path once so lazy initialisation is not charged to the idle sessions.
    (await openSessions(s.port, 20)).forEach((sock) => sock.destroy());
    const before = await sidecarMemory(s);
    const socks = await openSessions(s.port, sessions);
    const after = await sidecarMemory(s);
    log(`idle sessions: ${sessions} open; RSS ${kib(before.rss)} -> ${kib(after.rss)} KiB`);

    let closed = 0;
    let allClosedAt: number | undefined;
    const t0 = performance.now();
    for (const sock of socks) {
      sock.once('close', () => {
        closed++;
        if (closed === sessions) allClosedAt = performance.now();
      });
    }
    s.proc.kill('SIGTERM');
    const exit = await exitOf(s.proc, 60_000);
    const exitMs = exit === undefined ? undefined : performance.now() - t0;
    const closedBeforeExit = closed;
    const phases = shutdownPhases(s.output());
    log(`idle sessions: SIGTERM -> ${closedBeforeExit} closed, exit ${exitMs === undefined ? 'none within 60 s' : `after ${exitMs.toFixed(0)} ms`}`);
    if (exit === undefined || exit.code !== 0) log(`sidecar output at exit:\n${s.output().trim().split('\n').slice(-3).join('\n')}`);
    socks.forEach((sock) => sock.destroy());
    return {
      sessions,
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heap,
      heapAfter: after.heap,
      rssSource: after.source,
      allClosedMs: allClosedAt === undefined ? undefined : allClosedAt - t0,
      closedBeforeExit,
      exitMs,
      exitCode: exit === undefined ? undefined : (exit.code ?? exit.signal ?? undefined),
      phases,
    };
  } finally {
    await stopProcess(s.proc, 2000);
  }
}

/** "intercept 1 ms completed, drain 150 ms completed, ..." from the last log line carrying a report. */
function shutdownPhases(output: string): string | undefined {
  const lines = output.split('\n').reverse();
  for (const line of lines) {
    if (!line.includes('"report"')) continue;
    try {
      const report = (JSON.parse(line) as { report?: { phases?: Array<{ phase: string; outcome: string; durationMs: number }> } }).report;
      if (report?.phases === undefined) continue;
      return report.phases.map((p) => `${p.phase} ${Math.round(p.durationMs)} ms ${p.outcome}`).join(', ');
    } catch {
      /* not a JSON log line */
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Report

function log(line: string): void {
  console.error(`bench: ${line}`);
}

function fmtRps(v: number | undefined): string {
  return v === undefined ? '-' : Math.round(v).toLocaleString('en-US');
}

function signed(v: number, digits = 0): string {
  return `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(0);
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The command lines, with the ports left as names: the lead pastes them into the README. */
function commandLines(settings: BenchSettings): string {
  const lines = settings.workloads.map(
    (w) => `redis-benchmark -h 127.0.0.1 -p PORT -c ${w.clients} -n ${w.requests} -P ${w.pipeline} -t set,get --csv`,
  );
  if (settings.targets.includes('pipe') || settings.targets.includes('pipe2')) lines.push('node dist/test/bench/bare-pipe.js --listen 127.0.0.1:PORT --backend 127.0.0.1:REDIS_PORT --mode pipe');
  if (settings.targets.includes('pipe-data')) lines.push('node dist/test/bench/bare-pipe.js --listen 127.0.0.1:PORT --backend 127.0.0.1:REDIS_PORT --mode data');
  if (settings.targets.includes('sidecar')) {
    lines.push(
      ['node dist/src/cli.js run --listen 127.0.0.1:PORT --backend 127.0.0.1:REDIS_PORT --admin 127.0.0.1:ADMIN_PORT --log-level warn --announce-delay 0', ...settings.sidecarArgs].join(' '),
    );
  }
  return ['```', ...lines, '```'].join('\n');
}

/** CPU time per request of the process behind each target: steadier than req/s under background load. */
function renderCpuTable(samples: Sample[], settings: BenchSettings): string {
  // One value per invocation: take it from the SET row only.
  const cpu = (target: TargetName, workload: string): number[] =>
    samples
      .filter((s) => s.target === target && s.workload === workload && s.row.test === 'SET' && s.cpuUsPerRequest !== undefined)
      .map((s) => s.cpuUsPerRequest ?? NaN);
  const withRatio = settings.targets.includes('sidecar') && settings.targets.includes('pipe');
  const header = ['workload', ...settings.targets.map((t) => (t === 'direct' ? 'redis-server (direct)' : t)), ...(withRatio ? ['sidecar / pipe'] : [])];
  const rows = settings.workloads.map((w) => {
    const cells = settings.targets.map((t) => {
      const v = cpu(t, w.name);
      return v.length === 0 ? 'n/a' : `${median(v).toFixed(1)} µs`;
    });
    if (withRatio) {
      const ratios: number[] = [];
      for (const sc of samples) {
        if (sc.target !== 'sidecar' || sc.workload !== w.name || sc.row.test !== 'SET' || sc.cpuUsPerRequest === undefined) continue;
        const bp = samples.find((s) => s.target === 'pipe' && s.workload === w.name && s.round === sc.round && s.row.test === 'SET');
        if (bp?.cpuUsPerRequest !== undefined && bp.cpuUsPerRequest > 0) ratios.push(sc.cpuUsPerRequest / bp.cpuUsPerRequest);
      }
      cells.push(ratios.length === 0 ? 'n/a' : `${median(ratios).toFixed(2)} ×`);
    }
    return [w.name, ...cells];
  });
  return [
    '### CPU time per request of the process behind each target',
    table(header, rows),
    'User + system CPU of that one process (/proc/<pid>/stat) over a whole run divided by its requests; median over the rounds. ' +
      'Less sensitive to background load than req/s, not immune: under contention each read and write carries fewer requests.',
  ].join('\n\n');
}

function renderReport(settings: BenchSettings, samples: Sample[], idle: IdleResult | undefined, elapsedS: number, loadAtStart: number): string {
  const cpu = os.cpus();
  const summaries = summarize(samples, settings);
  const checks = checkTargets(samples, settings);
  const parts: string[] = [];
  parts.push('## Benchmark results');
  parts.push(
    `redis-benchmark against redis-server ${redisVersion()} on 127.0.0.1; Node ${process.version}; ` +
      `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'} (shared by redis-server, the proxy and redis-benchmark). ` +
      `${settings.rounds} interleaved rounds (in each round every target runs each workload once, order rotated per round), ` +
      `after one unrecorded warm-up run per target. Bench took ${elapsedS.toFixed(0)} s; ` +
      `1-minute load average ${loadAtStart.toFixed(1)} before it started and ${(os.loadavg()[0] ?? 0).toFixed(1)} at the end ` +
      `(the bench itself adds about 2-3; more means other work competed with it: read the spread and the A/A run). Command lines:`,
  );
  parts.push(commandLines(settings));
  parts.push(
    table(
      ['workload', 'test', 'target', 'req/s', 'spread', '× direct', 'p50 ms', 'p99 ms', 'p50 over direct'],
      summaries.map((s) => [
        s.workload,
        s.test,
        s.target,
        fmtRps(s.rps),
        `±${((s.rpsSpread / 2) * 100).toFixed(0)} %`,
        s.rpsVsDirect.toFixed(2),
        s.p50Ms.toFixed(3),
        s.p99Ms.toFixed(3),
        s.target === 'direct' ? '-' : `${signed(s.p50OverDirectUs)} µs`,
      ]),
    ),
  );
  parts.push(
    'req/s, p50 and p99 are medians over the rounds; "spread" is half the range of req/s over the rounds; ' +
      '"× direct" and "p50 over direct" are medians of per-round pairs (a run against direct in the same round).',
  );
  parts.push(renderCpuTable(samples, settings));
  if (checks.length > 0) {
    parts.push('### Sidecar against the bare pipe (design §10 targets)');
    parts.push(table(['check', 'target', 'measured', 'result'], checks.map((c) => [c.what, c.target, c.measured, c.pass ? 'PASS' : 'MISS'])));
    parts.push('Each check pools SET and GET: the median of sidecar/pipe ratios (or differences) of runs in the same round.');
  } else {
    parts.push('_Sidecar vs bare-pipe checks not run (they need the targets pipe and sidecar)._');
  }
  const others: Array<[TargetName, string]> = [
    ['pipe2', 'A/A: a second, identical bare pipe against pipe (the noise floor of this machine)'],
    ['pipe-data', "Bare pipe variant: 'data' handlers + write() + backpressure against pipe()"],
  ];
  for (const [name, title] of others) {
    const rows = compare(samples, name, 'pipe', settings);
    if (rows.length === 0) continue;
    parts.push(`### ${title}`);
    parts.push(
      table(
        ['workload', 'req/s ratio', 'p99 ratio', 'p50 difference'],
        rows.map((c) => [c.workload.name, `${c.rpsRatio.toFixed(2)} ×`, `${c.p99Ratio.toFixed(2)} ×`, `${signed(c.p50DiffUs)} µs`]),
      ),
    );
  }
  if (idle !== undefined) {
    const perSessionKiB = (idle.rssAfter - idle.rssBefore) / idle.sessions / 1024;
    const heapPerSession =
      idle.heapBefore !== undefined && idle.heapAfter !== undefined ? `${((idle.heapAfter - idle.heapBefore) / idle.sessions / 1024).toFixed(1)} KiB` : 'n/a';
    parts.push(`### Idle sessions (a fresh sidecar with ${EXIT_MEASURE_ARGS.join(' ')})`);
    parts.push(
      table(
        ['measure', 'target', 'measured', 'result'],
        [
          [
            `memory per idle session (${idle.sessions} sessions, RSS delta)`,
            '≤ 64 KiB',
            `${perSessionKiB.toFixed(1)} KiB (RSS ${kib(idle.rssBefore)} → ${kib(idle.rssAfter)} KiB; JS heap ${heapPerSession}/session)`,
            perSessionKiB <= 64 ? 'PASS' : 'MISS',
          ],
          [
            `SIGTERM → all ${idle.sessions} idle client connections closed`,
            '< 1 s (design: 10,000 sessions)',
            idle.allClosedMs === undefined ? `only ${idle.closedBeforeExit} closed before exit` : `${idle.allClosedMs.toFixed(0)} ms`,
            idle.allClosedMs !== undefined && idle.allClosedMs < 1000 ? 'PASS' : 'MISS',
          ],
          [
            'SIGTERM → process exit',
            '-',
            idle.exitMs === undefined ? 'did not exit within 60 s' : `${idle.exitMs.toFixed(0)} ms, exit code ${String(idle.exitCode)}`,
            '-',
          ],
        ],
      ),
    );
    if (idle.phases !== undefined) parts.push(`Shutdown report: ${idle.phases}.`);
    parts.push(`RSS read from ${idle.rssSource}; each session sent one PING and got PONG before it was counted.`);
  }
  return `${parts.join('\n\n')}\n`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = os.loadavg()[0] ?? 0;
  installCleanupHandlers();
  const settings = readSettings(process.env);
  log(`targets ${settings.targets.join(', ')}; ${settings.rounds} rounds; request scale ${settings.scale}`);
  // maxclients above the idle sessions plus the sidecar's pool and control connection.
  const redis = await RedisServer.start({ config: ['maxclients', '12000'] });
  cleanups.push(() => rmSync(redis.dir, { recursive: true, force: true }));
  log(`redis-server on ${LOOPBACK}:${redis.port}`);
  const targets: Target[] = [];
  try {
    for (const name of settings.targets) {
      const t = await startTarget(name, redis, settings);
      targets.push(t);
      log(`${name} listening on ${LOOPBACK}:${t.port}`);
    }
    const samples = await runRounds(targets, settings);
    for (const t of targets) await t.stop();
    targets.length = 0;

    let idle: IdleResult | undefined;
    if (settings.targets.includes('sidecar') && settings.idleSessions > 0) idle = await measureIdleSessions(redis, settings);

    const report = renderReport(settings, samples, idle, (Date.now() - started) / 1000, loadAtStart);
    process.stdout.write(`\n${report}`);
    mkdirSync(dirname(RESULTS_MD), { recursive: true });
    writeFileSync(RESULTS_MD, report);
    log(`report written to ${RESULTS_MD}`);
  } finally {
    for (const t of targets) await t.stop();
    await redis.stop();
  }
}

// Runs only as the entry point, so the parsers above can be imported by a unit test.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
