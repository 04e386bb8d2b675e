/**
 * `make demo` / `pika-sidecar demo`: the sidecar's exit, shown and checked end to end.
 *
 *   1. a redis master and one replica (free loopback ports, temp dirs, no persistence);
 *   2. the sidecar as a child process in front of the master (announce delay 1 s, other budgets
 *      default), until GET /readyz answers 200;
 *   3. a pipelined write load through the sidecar (harness/write-load.ts), with one progress line;
 *   4. after 3 s the replica is stalled (SIGSTOP), 0.3 s later the sidecar gets SIGTERM while the
 *      load keeps writing, 1.5 s after that the replica resumes (SIGCONT);
 *   5. the sidecar exits by itself (bounded: 60 s, then SIGKILL and a failure);
 *   6. the shutdown timeline from the sidecar's log lines, then the verdict from the real servers:
 *      every acknowledged write is on the replica, and no unanswered write ran on the master.
 *
 * Exit code 0 only when both counts are 0 and the sidecar exited 0. Every process started here is
 * stopped on the way out, on errors and on Ctrl-C too.
 */
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { PHASES } from '../src/observability/names.js';
import { httpGet } from '../harness/http.js';
import { exitCodeOf } from '../harness/processes.js';
import { waitFor } from '../harness/wait.js';
import { callOnce } from '../harness/resp-client.js';
import { RedisServer, type RedisServerOptions } from '../harness/redis-server.js';
import { SidecarProcess, type LogLine } from '../harness/sidecar-process.js';
import { DEMO_REDIS, splitHostPort } from './run-local.js';
import { WriteLoad, verifyWrites, type LoadStats, type Verdict } from '../harness/write-load.js';

export interface DemoOptions {
  /** Where each output line goes (default: stdout). */
  log?: (line: string) => void;
  /** Print one JSON summary instead of the human output. */
  json?: boolean;
}

/** The timings of the act; short so the whole demo takes seconds. */
const LOAD_BEFORE_STALL_MS = 3000;
const STALL_BEFORE_SIGTERM_MS = 300;
const STALL_AFTER_SIGTERM_MS = 1500;
/** ...and at least this long into replication_sync, so the sidecar is seen waiting for it. */
const STALL_INTO_SYNC_MS = 500;
/** Never longer than this after SIGTERM (well inside the 20 s replication budget). */
const STALL_MAX_AFTER_SIGTERM_MS = 8000;
const ANNOUNCE_DELAY = '1s';
const SIDECAR_EXIT_TIMEOUT_MS = 60_000;
const LOAD_CONNECTIONS = 8;
/** Enough to show a busy server; low enough that ~5 s of it stays small in both servers' memory. */
const LOAD_MAX_WRITES_PER_SEC = 100_000;

/** One row of the timeline: a phase of the sidecar, or something the demo did. */
export interface TimelineRow {
  /** Milliseconds from the moment SIGTERM was sent. */
  atMs: number;
  kind: 'phase' | 'event';
  phase?: string;
  durationMs?: number;
  outcome?: string;
  what: string;
  detail?: Record<string, unknown>;
}

export interface DemoSummary {
  pass: boolean;
  exitCode: number;
  servers: { master: string; replica: string; sidecar: string; admin: string } | null;
  load: (LoadStats & { acknowledgedAfterSigterm: number }) | null;
  sidecar: { exitCode: number | null; signal: string | null; killed: boolean; report: Record<string, unknown> | null } | null;
  timeline: TimelineRow[];
  verdict: Verdict | null;
  /** Every process the demo started (all stopped by the time the summary is printed). */
  pids: number[];
  error?: string;
}

class Interrupted extends Error {
  constructor() {
    super('interrupted (Ctrl-C)');
  }
}

export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const json = opts.json === true;
  const out = opts.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  // In place (\r) only on a terminal we write to ourselves; otherwise one plain line a second.
  const tty = opts.log === undefined && !json && process.stdout.isTTY === true;
  const say = (line: string) => {
    if (!json) progress.event(line);
  };
  const progress = new ProgressLine(out, tty);

  const ac = new AbortController();
  const onSigint = () => ac.abort(new Interrupted());
  process.on('SIGINT', onSigint);
  const interrupted = new Promise<never>((_, reject) =>
    ac.signal.addEventListener('abort', () => reject(ac.signal.reason as Error), { once: true }),
  );
  interrupted.catch(() => undefined);
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, interrupted]);
  const pause = (ms: number) => guard(sleep(ms, undefined, { signal: ac.signal }));

  let master: RedisServer | undefined;
  let replica: RedisServer | undefined;
  let sidecar: SidecarProcess | undefined;
  let load: WriteLoad | undefined;
  const summary: DemoSummary = {
    pass: false,
    exitCode: 1,
    servers: null,
    load: null,
    sidecar: null,
    timeline: [],
    verdict: null,
    pids: [],
  };
  const events: TimelineRow[] = [];
  // Every redis start, so one that completes after a Ctrl-C is stopped too.
  const starting: Array<Promise<RedisServer>> = [];
  const startRedis = (o: RedisServerOptions = {}) => {
    const p = RedisServer.start({ ...DEMO_REDIS, ...o });
    starting.push(p);
    return guard(p);
  };

  try {
    if (!json) out('pika-sidecar demo: a master, a replica, a write load through the sidecar, then SIGTERM\n');
    master = await startRedis();
    if (master.proc.pid !== undefined) summary.pids.push(master.proc.pid);
    replica = await startRedis({ replicaOf: { host: master.host, port: master.port } });
    if (replica.proc.pid !== undefined) summary.pids.push(replica.proc.pid);
    await guard(replica.waitForLinkUp());

    const env = withoutSidecarEnv(process.env);
    sidecar = SidecarProcess.start({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      backend: master.address,
      args: ['--announce-delay', ANNOUNCE_DELAY, '--log-level', 'info'],
      env,
      maxLines: 5000,
    });
    if (sidecar.pid !== undefined) summary.pids.push(sidecar.pid);
    const started = sidecar;
    const startLine = await guard(
      waitFor(
        () => {
          if (!started.running)
            throw new Error(`the sidecar exited during start-up${started.stderr() ? `:\n${started.stderr().trim()}` : ''}`);
          return started.logs.find((l) => l.msg === 'pika-sidecar started');
        },
        { timeoutMs: 15_000, what: "the sidecar's start-up log line" },
      ),
    );
    const listenAt = splitHostPort(String(startLine['listen']));
    const adminAt = splitHostPort(String(startLine['admin']));
    await guard(sidecar.waitReady(adminAt));
    summary.servers = {
      master: master.address,
      replica: replica.address,
      sidecar: `${listenAt.host}:${listenAt.port}`,
      admin: `${adminAt.host}:${adminAt.port}`,
    };
    if (!json) {
      out(`  redis master    ${master.address}`);
      out(`  redis replica   ${replica.address}   replicating from the master (link up)`);
      out(
        `  pika-sidecar    ${listenAt.host}:${listenAt.port}   in front of the master; admin http://${adminAt.host}:${adminAt.port}   ready`,
      );
      out('');
      out(`Write load: ${LOAD_CONNECTIONS} connections pipelining SET demo:<conn>:<seq> through the sidecar`);
    }

    load = await guard(
      WriteLoad.start({
        host: listenAt.host,
        port: listenAt.port,
        connections: LOAD_CONNECTIONS,
        maxWritesPerSec: LOAD_MAX_WRITES_PER_SEC,
      }),
    );
    const running = load;
    const phaseWatch = new PhaseWatch(adminAt, sidecar);
    const ticker = json
      ? undefined
      : progress.start(
          () => running.stats(),
          () => phaseWatch.phase,
        );

    try {
      await pause(LOAD_BEFORE_STALL_MS);
      const stalledAt = Date.now();
      replica.pause();
      say(`  > replica ${replica.address} stalled (SIGSTOP): it stops taking the master's stream`);
      await pause(STALL_BEFORE_SIGTERM_MS);

      const sigtermAt = Date.now();
      const ackedAtSigterm = load.stats().acknowledged;
      sidecar.signal('SIGTERM');
      say('  > SIGTERM sent to the sidecar; the load keeps writing');
      events.push({ atMs: stalledAt - sigtermAt, kind: 'event', what: `replica ${replica.address} stalled (SIGSTOP)` });
      events.push({ atMs: 0, kind: 'event', what: 'SIGTERM sent to the sidecar' });
      const stalled = replica;
      const watched = sidecar;
      void resumeWhenWaitedFor(watched, sigtermAt, ac.signal).then(() => {
        if (!stalled.isPaused) return;
        stalled.resume();
        events.push({ atMs: Date.now() - sigtermAt, kind: 'event', what: 'replica resumed (SIGCONT)' });
        say('  > replica resumed (SIGCONT)');
      });

      const exit = await guard(sidecar.waitForExit(SIDECAR_EXIT_TIMEOUT_MS));
      events.push({
        atMs: Date.now() - sigtermAt,
        kind: 'event',
        what: exit.killed
          ? `sidecar did not exit within ${SIDECAR_EXIT_TIMEOUT_MS / 1000} s: killed`
          : `sidecar exited with code ${exitCodeOf(exit)}`,
      });
      // Whatever the sidecar did, the replica runs again before anything is read from it.
      if (replica.isPaused) {
        replica.resume();
        events.push({ atMs: Date.now() - sigtermAt, kind: 'event', what: 'replica resumed (SIGCONT)' });
      }
      // The sidecar is gone, so every load connection ends now if it has not already.
      await guard(Promise.race([load.finished, sleep(2000, undefined, { ref: false })]));
      load.stopSending();
      phaseWatch.stop(sidecar.running ? 'unknown' : 'exited');
      ticker?.stop();

      const stats = load.stats();
      summary.load = { ...stats, acknowledgedAfterSigterm: stats.acknowledged - ackedAtSigterm };
      const report = findReport(sidecar.logs);
      summary.sidecar = { exitCode: exit.code, signal: exit.signal, killed: exit.killed, report };
      const abandoned = num(report?.['commandsAbandoned']);
      const exitEvent = events.find((e) => e.what.startsWith('sidecar exited'));
      if (exitEvent && abandoned !== undefined) exitEvent.what += ` (${fmt(abandoned)} commands abandoned)`;
      summary.timeline = buildTimeline(sidecar.logs, report, sigtermAt, summary.load.acknowledgedAfterSigterm)
        .concat(events)
        .sort((a, b) => a.atMs - b.atMs);
      if (!json) {
        out(
          stats.openConnections === 0
            ? `  every load connection was closed by the sidecar at a command boundary; none reconnected (${fmt(stats.acknowledged - ackedAtSigterm)} writes acknowledged after SIGTERM)`
            : `  ${stats.openConnections} load connections were still open when the sidecar exited`,
        );
        out('');
        printTimeline(out, summary.timeline);
      }

      // A failover's first step: the replica stops following the master, so it can take nothing
      // more from it. What it holds now is what a promoted replica would serve.
      await guard(callOnce(replica.host, replica.port, ['REPLICAOF', 'NO', 'ONE']));
      summary.verdict = await guard(verifyWrites(load.ledger(), { replica, master }, load.valueBytes));
    } finally {
      phaseWatch.stop(sidecar.running ? 'unknown' : 'exited');
      ticker?.stop();
    }

    const v = summary.verdict;
    const sidecarOk = summary.sidecar.exitCode === 0 && !summary.sidecar.killed;
    summary.pass = v.pass && sidecarOk;
    summary.exitCode = summary.pass ? 0 : 1;
    if (!json) printVerdict(out, v, summary.sidecar);
  } catch (err) {
    const isInterrupt = err instanceof Interrupted;
    summary.exitCode = isInterrupt ? 130 : 1;
    summary.error = (err as Error).message;
    progress.stopAll();
    if (!json) out(`\ndemo ${isInterrupt ? 'interrupted' : 'failed'}: ${(err as Error).message}`);
  } finally {
    process.off('SIGINT', onSigint);
    ac.abort(new Error('demo finished'));
    load?.destroy();
    if (sidecar?.running === true) await sidecar.kill();
    await Promise.allSettled(starting.map((p) => p.then((r) => r.stop())));
    if (!json && summary.error === undefined) out('\n(master, replica and sidecar stopped; temp dirs removed)');
  }
  if (json) out(JSON.stringify(summary, bigintSafe, 2));
  return summary.exitCode;
}

/**
 * Resolves when the stalled replica should resume: STALL_AFTER_SIGTERM_MS after SIGTERM, and not
 * before replication_sync has been waiting STALL_INTO_SYNC_MS (or the sidecar is gone); at the
 * latest STALL_MAX_AFTER_SIGTERM_MS after SIGTERM. Never rejects.
 */
async function resumeWhenWaitedFor(sidecar: SidecarProcess, sigtermAt: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(STALL_AFTER_SIGTERM_MS, undefined, { signal });
    const syncStarted = () => {
      const line = sidecar.logs.find((l) => l.msg === 'phase replication_sync started');
      return typeof line?.time === 'string' ? Date.parse(line.time) : undefined;
    };
    await waitFor(
      () => {
        const t = syncStarted();
        return !sidecar.running || (t !== undefined && Date.now() - t >= STALL_INTO_SYNC_MS);
      },
      { timeoutMs: Math.max(0, STALL_MAX_AFTER_SIGTERM_MS - (Date.now() - sigtermAt)), intervalMs: 20, what: 'replication_sync', signal },
    );
  } catch {
    // Interrupted, or the bound passed: resume now either way.
  }
}

/** The child sidecar reads PIKA_SIDECAR_* from its environment; the demo's act must not change with it. */
function withoutSidecarEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('PIKA_SIDECAR_')) copy[k] = v;
  return copy;
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

// ─── the progress line ───────────────────────────────────────────────────────────────────────────

/** The sidecar's phase from GET /status, polled every 250 ms (one request at a time). */
class PhaseWatch {
  phase = 'running';
  private stopped = false;

  constructor(
    private readonly admin: { host: string; port: number },
    private readonly sidecar: SidecarProcess,
  ) {
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const r = await httpGet(this.admin.host, this.admin.port, '/status', 500);
        const phase = (JSON.parse(r.body) as { phase?: unknown }).phase;
        if (typeof phase === 'string' && !this.stopped) this.phase = phase;
      } catch {
        // The admin server closes at the end of release; the log says the rest.
        if (!this.sidecar.running && !this.stopped) this.phase = 'exited';
      }
      await sleep(250);
    }
  }

  stop(final: string): void {
    if (!this.stopped) this.phase = final;
    this.stopped = true;
  }
}

/** One line of numbers: rewritten in place on a terminal, printed once a second otherwise. */
class ProgressLine {
  private timer: NodeJS.Timeout | undefined;
  private render: (() => string) | undefined;
  private shown = false;

  constructor(
    private readonly out: (line: string) => void,
    private readonly tty: boolean,
  ) {}

  start(stats: () => LoadStats, phase: () => string): { stop(): void } {
    const samples: Array<{ t: number; acked: number }> = [{ t: Date.now(), acked: stats().acknowledged }];
    this.render = () => {
      const now = Date.now();
      const s = stats();
      samples.push({ t: now, acked: s.acknowledged });
      while (samples.length > 2 && (samples[1]?.t ?? now) <= now - 1000) samples.shift();
      const first = samples[0] ?? { t: now, acked: s.acknowledged };
      const rate = now > first.t ? ((s.acknowledged - first.acked) * 1000) / (now - first.t) : 0;
      return `  writes/s ${pad(fmt(Math.round(rate)), 8)}   acknowledged ${pad(fmt(s.acknowledged), 9)}   in flight ${pad(fmt(s.inFlight), 4)}   connections ${s.openConnections}/${s.connections}   sidecar ${phase()}`;
    };
    const every = this.tty ? 200 : 1000;
    this.timer = setInterval(() => this.draw(), every);
    return { stop: () => this.stop() };
  }

  private draw(): void {
    if (!this.render) return;
    const line = this.render();
    if (this.tty) {
      process.stdout.write(`\r\x1b[K${line}`);
      this.shown = true;
    } else this.out(line);
  }

  /** A line of its own, above the progress line. */
  event(line: string): void {
    if (this.tty && this.shown) process.stdout.write('\r\x1b[K');
    this.out(line);
    if (this.tty && this.shown) this.draw();
  }

  /** Final numbers, then no more updates. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.draw();
    if (this.tty) process.stdout.write('\n');
    this.render = undefined;
  }

  /** On an error: stop without a last line. */
  stopAll(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.shown) process.stdout.write('\n');
    this.render = undefined;
  }
}

// ─── the timeline, from the sidecar's log ────────────────────────────────────────────────────────

function findReport(lines: readonly LogLine[]): Record<string, unknown> | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const r = lines[i]?.['report'];
    if (typeof r === 'object' && r !== null) return r as Record<string, unknown>;
  }
  return null;
}

interface PhaseRecordLike {
  phase: string;
  outcome: string;
  durationMs: number;
  detail?: Record<string, unknown>;
}

/** One row per phase: its start from the `phase X started` line, the rest from the report (or the finish line). */
export function buildTimeline(
  lines: readonly LogLine[],
  report: Record<string, unknown> | null,
  sigtermAt: number,
  ackedInIntercept: number,
): TimelineRow[] {
  const startOf = new Map<string, number>();
  const finished = new Map<string, PhaseRecordLike>();
  for (const l of lines) {
    if (typeof l.phase !== 'string' || typeof l.time !== 'string') continue;
    if (l.msg === `phase ${l.phase} started`) startOf.set(l.phase, Date.parse(l.time));
    else if (typeof l['outcome'] === 'string' && typeof l['durationMs'] === 'number' && l.msg?.startsWith(`phase ${l.phase}`) === true) {
      const rec: PhaseRecordLike = { phase: l.phase, outcome: l['outcome'], durationMs: l['durationMs'] };
      if (typeof l['detail'] === 'object' && l['detail'] !== null) rec.detail = l['detail'] as Record<string, unknown>;
      finished.set(l.phase, rec);
    }
  }
  const fromReport = Array.isArray(report?.['phases']) ? (report['phases'] as PhaseRecordLike[]) : [];
  const records = fromReport.length > 0 ? fromReport : PHASES.flatMap((p) => finished.get(p) ?? []);
  return records.map((r) => {
    const start = startOf.get(r.phase);
    const row: TimelineRow = {
      atMs: start !== undefined ? start - sigtermAt : Number.NaN,
      kind: 'phase',
      phase: r.phase,
      durationMs: r.durationMs,
      outcome: r.outcome,
      what: describePhase(r, report, ackedInIntercept),
    };
    if (r.detail !== undefined) row.detail = r.detail;
    return row;
  });
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : typeof v === 'string' && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : undefined;
}

/** What a phase did, in words, from its record and the report. */
function describePhase(r: PhaseRecordLike, report: Record<string, unknown> | null, ackedInIntercept: number): string {
  const d = r.detail ?? {};
  switch (r.phase) {
    case 'intercept': {
      const ms = num(d['announceDelayMs']);
      return `readiness 503; kept serving${ms !== undefined ? ` ${ms / 1000} s` : ''} (${fmt(ackedInIntercept)} writes acknowledged after SIGTERM); closed the listener`;
    }
    case 'drain': {
      const sessions = num(d['sessionsAtStart']) ?? num(d['sessions']);
      const inflight = num(d['inflightAtStart']);
      const closed = report?.['sessionsClosed'] as Record<string, unknown> | undefined;
      const drained = num(closed?.['drained']);
      if (r.outcome === 'timed_out') return `${num(d['left']) ?? '?'} sessions still busy at the deadline`;
      return [
        sessions !== undefined ? `${sessions} sessions` : undefined,
        inflight === undefined
          ? undefined
          : inflight > 0
            ? `${fmt(inflight)} commands in flight at the start, each answered before its session closed`
            : 'no command in flight at the start',
        drained !== undefined ? `${drained} closed at a command boundary` : undefined,
      ]
        .filter((s) => s !== undefined)
        .join('; ');
    }
    case 'close_clients':
      if (typeof d['reason'] === 'string') return d['reason'];
      return Object.entries(d)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ');
    case 'replication_sync': {
      const replicas = Array.isArray(d['replicas']) ? (d['replicas'] as Array<Record<string, unknown>>) : [];
      const target = d['target'];
      const each = replicas.map((x) => {
        const behind = num(x['behindBytes']);
        const at = x['position'] !== null && x['position'] !== undefined ? ` at ${String(x['position'])}` : '';
        return `${String(x['address'])} ${String(x['verdict'])}${at}${behind !== undefined && behind > 0 ? `, ${fmt(behind)} bytes behind` : ''}`;
      });
      const head = target !== null && target !== undefined ? `target offset ${String(target)}: ` : '';
      const moved = d['targetMoved'] === true ? ' (the target moved: writes bypassed the sidecar)' : '';
      if (each.length === 0) return typeof d['reason'] === 'string' ? d['reason'] : 'no replicas';
      return `${head}${each.join('; ')}${moved}`;
    }
    case 'release':
      if (Array.isArray(d['released'])) {
        // "pool:closed" entries: name the resources, and the outcome only where it is not "closed".
        const items = (d['released'] as unknown[]).map(String).map((x) => (x.endsWith(':closed') ? x.slice(0, -':closed'.length) : x));
        return `closed in order: ${items.join(', ')}`;
      }
      break;
  }
  const text = Object.keys(d).length > 0 ? JSON.stringify(d) : '';
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

function printTimeline(out: (line: string) => void, rows: readonly TimelineRow[]): void {
  out("Shutdown timeline (t = 0: SIGTERM sent; from the sidecar's log)");
  out(`  ${pad('t', 7)}   ${'phase'.padEnd(17)} ${pad('took', 7)}   ${'outcome'.padEnd(10)} what happened`);
  for (const r of rows) {
    const t = Number.isNaN(r.atMs) ? '?' : `${r.atMs >= 0 ? '+' : '-'}${(Math.abs(r.atMs) / 1000).toFixed(2)}s`;
    if (r.kind === 'event') out(`  ${pad(t, 7)}   ${'·'.padEnd(17)} ${pad('', 7)}   ${''.padEnd(10)} ${r.what}`);
    else
      out(
        `  ${pad(t, 7)}   ${(r.phase ?? '').padEnd(17)} ${pad(`${((r.durationMs ?? 0) / 1000).toFixed(2)}s`, 7)}   ${(r.outcome ?? '').padEnd(10)} ${r.what}`,
      );
  }
  out('');
}

function printVerdict(out: (line: string) => void, v: Verdict, sidecar: NonNullable<DemoSummary['sidecar']>): void {
  const code = sidecar.killed
    ? 'killed (did not exit in time)'
    : sidecar.exitCode !== null
      ? String(sidecar.exitCode)
      : `signal ${sidecar.signal ?? '?'}`;
  out('Verdict (read back from the real servers; the replica was detached first with REPLICAOF NO ONE)');
  out(`  acknowledged writes                        ${pad(fmt(v.acknowledged), 10)}`);
  out(
    `  acknowledged but missing on the replica    ${pad(fmt(v.missingOnReplica), 10)}${v.wrongValueOnReplica > 0 ? `   (+ ${fmt(v.wrongValueOnReplica)} with a wrong value)` : ''}`,
  );
  out(`  executed on the master without a reply     ${pad(fmt(v.phantomExecutions), 10)}   (of ${fmt(v.unanswered)} sent but unanswered)`);
  if (v.errorReplies > 0) out(`  error replies                              ${pad(fmt(v.errorReplies), 10)}`);
  out(`  sidecar exit code                          ${pad(code, 10)}`);
  const pass = v.pass && sidecar.exitCode === 0 && !sidecar.killed;
  out('');
  out(pass ? 'PASS: no acknowledged write lost, no unanswered write executed, clean exit' : 'FAIL');
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function pad(s: string, width: number): string {
  return s.padStart(width);
}

// The entry point of `make demo` (`node dist/demo/demo.js [--json]`): with cli.ts, the only
// place allowed to call process.exit.
const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  void runDemo({ json: process.argv.includes('--json') }).then((code) => process.exit(code));
}
