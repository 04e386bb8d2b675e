/** The bench's markdown report: the ranking of the sidecar among its peers first, the detail after. */
import os from 'node:os';
import { redisVersion } from '../../harness/redis-server.js';
import { EXIT_MEASURE_ARGS, type DrainResult } from './idle-sessions.js';
import { redisBenchmarkArgs } from './redis-benchmark.js';
import type { BenchSettings, TargetName } from './settings.js';
import { checkTargets, compare, cpuPerRequest, geomean, p50Us, signed, summarize, type Comparison, type Sample } from './stats.js';
import { targetCommands, type Skipped } from './targets.js';

export interface BenchResults {
  settings: BenchSettings;
  /** The targets that ran, in the settings' order. */
  ran: TargetName[];
  skipped: Skipped[];
  samples: Sample[];
  /** KiB of RSS per idle connection of each target's process. */
  idleKiB: Map<TargetName, number | undefined>;
  drain: DrainResult | undefined;
  elapsedS: number;
  loadAtStart: number;
}

const fmtRps = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');
const x = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(2));
const kib = (bytes: number): string => (bytes / 1024).toFixed(0);

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The comparison of `a` against `b` in the workload with that many clients and that pipeline depth. */
function at(cs: Comparison[], clients: number, pipeline: number): Comparison | undefined {
  return cs.find((c) => c.workload.clients === clients && c.workload.pipeline === pipeline);
}

/** One row per target, ranked by throughput × pipe (geometric mean of pipeline 1 and 16). */
function renderRanking(r: BenchResults): string {
  const hasPipe = r.ran.includes('pipe');
  const base: TargetName = hasPipe ? 'pipe' : 'direct';
  const serial = r.settings.workloads.find((w) => w.clients === 1);
  const rows = r.ran.map((t) => {
    const vsDirect = t === 'direct' ? undefined : compare(r.samples, t, 'direct', r.settings);
    const vsPipe = t === base ? undefined : compare(r.samples, t, base, r.settings);
    const d1 = t === 'direct' ? 1 : at(vsDirect ?? [], 50, 1)?.rpsRatio;
    const d16 = t === 'direct' ? 1 : at(vsDirect ?? [], 50, 16)?.rpsRatio;
    const p1 = t === base ? 1 : at(vsPipe ?? [], 50, 1);
    const p16 = t === base ? 1 : at(vsPipe ?? [], 50, 16);
    const ratio = (c: Comparison | 1 | undefined, f: (c: Comparison) => number): number | undefined =>
      c === 1 ? 1 : c === undefined ? undefined : f(c);
    const score = geomean([ratio(p1, (c) => c.rpsRatio) ?? NaN, ratio(p16, (c) => c.rpsRatio) ?? NaN]);
    const serialP50 = serial === undefined ? NaN : p50Us(r.samples, t, serial.name);
    const serialDiff = serial === undefined || t === base ? undefined : at(vsPipe ?? [], 1, 1)?.p50DiffUs;
    const idle = r.idleKiB.get(t);
    const drain =
      t === 'sidecar' && r.drain?.allClosedMs !== undefined ? `${r.drain.allClosedMs.toFixed(0)} ms (${r.drain.sessions})` : '-';
    return {
      score,
      cells: [
        t,
        x(d1),
        x(ratio(p1, (c) => c.rpsRatio)),
        x(d16),
        x(ratio(p16, (c) => c.rpsRatio)),
        `${x(ratio(p1, (c) => c.p99Ratio))} / ${x(ratio(p16, (c) => c.p99Ratio))}`,
        Number.isFinite(serialP50) ? `${serialP50.toFixed(0)}${serialDiff === undefined ? '' : ` (${signed(serialDiff)})`}` : '-',
        `${x(ratio(p1, (c) => c.cpuRatio))} / ${x(ratio(p16, (c) => c.cpuRatio))}`,
        idle === undefined ? '-' : idle.toFixed(1),
        drain,
      ],
    };
  });
  rows.sort((a, b) => (Number.isFinite(b.score) ? b.score : -1) - (Number.isFinite(a.score) ? a.score : -1));
  return [
    `### Ranking (throughput × ${base}, geometric mean of pipeline 1 and 16)`,
    table(
      [
        '#',
        'target',
        'P1 × direct',
        `P1 × ${base}`,
        'P16 × direct',
        `P16 × ${base}`,
        `p99 × ${base} (P1 / P16)`,
        `serial p50 µs (± ${base})`,
        `CPU/req × ${base} (P1 / P16)`,
        'idle KiB/session',
        'idle drain',
      ],
      rows.map((row, i) => [String(i + 1), ...row.cells]),
    ),
    'Every ratio is the median over the rounds of a ratio of two runs in the same round (SET and GET pooled; CPU from the SET run, which covers the invocation). ' +
      'CPU/req is user + system CPU of the process behind the target (/proc) per request. Idle KiB/session: RSS delta of that process with the idle connections open. ' +
      'Idle drain: SIGTERM → every idle client connection closed (the sidecar only: the peers have no drain).',
  ].join('\n\n');
}

function renderChecks(r: BenchResults): string {
  const checks = checkTargets(r.samples, r.settings);
  if (checks.length === 0) return '_Sidecar vs bare-pipe checks not run (they need the targets pipe and sidecar)._';
  const hasAA = r.ran.includes('pipe2');
  return [
    '### Sidecar against the bare pipe (design §10 targets)',
    table(
      ['check', 'target', 'measured', 'result', ...(hasAA ? ['A/A (pipe2 / pipe)'] : [])],
      checks.map((c) => [
        c.what,
        c.target,
        c.measured,
        c.pass ? 'PASS' : 'MISS',
        ...(hasAA ? [`${c.noise}${c.withinNoise === true ? ' — sidecar within the noise' : ''}`] : []),
      ]),
    ),
    hasAA
      ? '"within the noise": the sidecar differs from the pipe by no more than the identical second pipe does in the same run, so the difference is not shown by this run.'
      : 'Add pipe2 to BENCH_TARGETS for the A/A noise of each check.',
  ].join('\n\n');
}

function renderDetail(r: BenchResults): string {
  const summaries = summarize(r.samples, r.settings, r.ran);
  return [
    '### Per test',
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
    'req/s, p50 and p99 are medians over the rounds; "spread" is half the range of req/s over the rounds.',
    table(
      ['workload', ...r.ran.map((t) => `${t} CPU/req`)],
      r.settings.workloads.map((w) => [
        w.name,
        ...r.ran.map((t) =>
          Number.isFinite(cpuPerRequest(r.samples, t, w.name)) ? `${cpuPerRequest(r.samples, t, w.name).toFixed(1)} µs` : 'n/a',
        ),
      ]),
    ),
  ].join('\n\n');
}

/** The opt-in pairs: A/A, the data-handler pipe, and sidecar-b against sidecar. */
function renderPairs(r: BenchResults): string[] {
  const parts: string[] = [];
  const pairs: Array<[TargetName, TargetName, string]> = [
    ['pipe2', 'pipe', 'A/A: a second, identical bare pipe against pipe (the noise floor of this run)'],
    ['pipe-data', 'pipe', "Bare pipe variant: 'data' handlers + write() + backpressure against pipe()"],
    ['pipe-onread', 'pipe', 'Bare pipe variant: reused read buffers both ways (as the sidecar reads) against pipe()'],
    ['pipe-handle', 'pipe-onread', "Bare pipe variant: reused read buffers and writes straight to the socket's handle against pipe-onread"],
    ['sidecar-b', 'sidecar', 'sidecar-b against sidecar (A/B of two builds or flag sets)'],
  ];
  for (const [a, b, title] of pairs) {
    const rows = compare(r.samples, a, b, r.settings);
    if (rows.length === 0) continue;
    parts.push(`### ${title}`);
    parts.push(
      table(
        ['workload', 'req/s ratio', 'p99 ratio', 'p50 difference', 'CPU/req ratio'],
        rows.map((c) => [
          c.workload.name,
          `${c.rpsRatio.toFixed(2)} ×`,
          `${c.p99Ratio.toFixed(2)} ×`,
          `${signed(c.p50DiffUs)} µs`,
          `${x(c.cpuRatio)} ×`,
        ]),
      ),
    );
  }
  return parts;
}

function renderDrain(d: DrainResult): string {
  const perSessionKiB = (d.rssAfter - d.rssBefore) / d.sessions / 1024;
  const heapPerSession =
    d.heapBefore !== undefined && d.heapAfter !== undefined
      ? `${((d.heapAfter - d.heapBefore) / d.sessions / 1024).toFixed(1)} KiB`
      : 'n/a';
  return [
    `### Idle sessions (a fresh sidecar with ${EXIT_MEASURE_ARGS.join(' ')})`,
    table(
      ['measure', 'target', 'measured', 'result'],
      [
        [
          `memory per idle session (${d.sessions} sessions, RSS delta)`,
          '≤ 64 KiB',
          `${perSessionKiB.toFixed(1)} KiB (RSS ${kib(d.rssBefore)} → ${kib(d.rssAfter)} KiB; JS heap ${heapPerSession}/session)`,
          perSessionKiB <= 64 ? 'PASS' : 'MISS',
        ],
        [
          `SIGTERM → all ${d.sessions} idle client connections closed`,
          '< 1 s (design: 10,000 sessions)',
          d.allClosedMs === undefined ? `only ${d.closedBeforeExit} closed before exit` : `${d.allClosedMs.toFixed(0)} ms`,
          d.allClosedMs !== undefined && d.allClosedMs < 1000 ? 'PASS' : 'MISS',
        ],
        [
          'SIGTERM → process exit',
          '-',
          d.exitMs === undefined ? 'did not exit within 60 s' : `${d.exitMs.toFixed(0)} ms, exit code ${String(d.exitCode)}`,
          '-',
        ],
      ],
    ),
    ...(d.phases === undefined ? [] : [`Shutdown report: ${d.phases}.`]),
    `RSS read from ${d.rssSource}; each session sent one PING and got PONG before it was counted.`,
  ].join('\n\n');
}

export function renderReport(r: BenchResults): string {
  const cpu = os.cpus();
  const parts: string[] = ['## Benchmark results'];
  parts.push(
    `redis-benchmark against redis-server ${redisVersion()} on 127.0.0.1; Node ${process.version}; ` +
      `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'} (shared by redis-server, the proxy and redis-benchmark). ` +
      `${r.settings.rounds} interleaved rounds (in each round every target runs each workload once, order rotated per round), ` +
      `after one unrecorded warm-up run per target. Bench took ${r.elapsedS.toFixed(0)} s; ` +
      `1-minute load average ${r.loadAtStart.toFixed(1)} before it started and ${(os.loadavg()[0] ?? 0).toFixed(1)} at the end ` +
      '(the bench itself adds about 2-3; more means other work competed with it: read the A/A column).',
  );
  for (const s of r.skipped) parts.push(`_Skipped ${s.name}: ${s.reason}._`);
  parts.push(renderRanking(r));
  parts.push(renderChecks(r));
  parts.push(...renderPairs(r));
  if (r.drain !== undefined) parts.push(renderDrain(r.drain));
  parts.push(renderDetail(r));
  parts.push(
    [
      'Command lines:',
      '```',
      ...r.settings.workloads.map((w) => `redis-benchmark ${redisBenchmarkArgs('PORT', w).join(' ')}`),
      ...targetCommands({ ...r.settings, targets: r.ran }),
      '```',
    ].join('\n'),
  );
  return `${parts.join('\n\n')}\n`;
}
