/**
 * Statistics over the rounds. Ratios are paired: target a against target b from runs in the same
 * round (seconds apart, sharing the machine's background load), then the median over the rounds.
 */
import type { BenchRow } from './csv.js';
import type { BenchSettings, TargetName, Workload } from './settings.js';

export interface Sample {
  target: TargetName;
  workload: string;
  round: number;
  row: BenchRow;
  /** CPU time of the target's process per request over the whole invocation (SET + GET). */
  cpuUsPerRequest: number | undefined;
}

export const TESTS = ['SET', 'GET'] as const;

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

/** Values of f over pairs of runs of targets a and b in the same round, workload and test. */
export function paired(
  samples: Sample[],
  a: TargetName,
  b: TargetName,
  workload: string,
  tests: readonly string[],
  f: (a: Sample, b: Sample) => number | undefined,
): number[] {
  const values: number[] = [];
  for (const sa of samples) {
    if (sa.target !== a || sa.workload !== workload || !tests.includes(sa.row.test)) continue;
    const sb = samples.find((s) => s.target === b && s.workload === workload && s.round === sa.round && s.row.test === sa.row.test);
    const v = sb === undefined ? undefined : f(sa, sb);
    if (v !== undefined && Number.isFinite(v)) values.push(v);
  }
  return values;
}

const rpsRatio = (x: Sample, y: Sample): number => x.row.rps / y.row.rps;
const p99Ratio = (x: Sample, y: Sample): number => x.row.p99Ms / y.row.p99Ms;
const p50DiffUs = (x: Sample, y: Sample): number => (x.row.p50Ms - y.row.p50Ms) * 1000;
const cpuRatio = (x: Sample, y: Sample): number | undefined =>
  x.cpuUsPerRequest === undefined || y.cpuUsPerRequest === undefined || y.cpuUsPerRequest <= 0
    ? undefined
    : x.cpuUsPerRequest / y.cpuUsPerRequest;

export interface Summary {
  target: TargetName;
  workload: string;
  test: string;
  rps: number;
  rpsSpread: number;
  p50Ms: number;
  p99Ms: number;
  /** Median over rounds of this run's req/s over direct's in the same round. */
  rpsVsDirect: number;
  /** Median over rounds of this run's p50 minus direct's in the same round, in µs. */
  p50OverDirectUs: number;
}

export function summarize(samples: Sample[], settings: BenchSettings, targets: readonly TargetName[]): Summary[] {
  const out: Summary[] = [];
  for (const w of settings.workloads) {
    for (const test of TESTS) {
      for (const target of targets) {
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
          rpsVsDirect: median(paired(samples, target, 'direct', w.name, [test], rpsRatio)),
          p50OverDirectUs: median(paired(samples, target, 'direct', w.name, [test], p50DiffUs)),
        });
      }
    }
  }
  return out;
}

/** Target a against target b for one workload, SET and GET pooled: medians of paired values. */
export interface Comparison {
  workload: Workload;
  pairs: number;
  rpsRatio: number;
  p99Ratio: number;
  p50DiffUs: number;
  /** From the SET row only: one CPU reading covers the whole invocation. */
  cpuRatio: number;
}

export function compare(samples: Sample[], a: TargetName, b: TargetName, settings: BenchSettings): Comparison[] {
  const out: Comparison[] = [];
  for (const w of settings.workloads) {
    const ratios = paired(samples, a, b, w.name, TESTS, rpsRatio);
    if (ratios.length === 0) continue;
    out.push({
      workload: w,
      pairs: ratios.length,
      rpsRatio: median(ratios),
      p99Ratio: median(paired(samples, a, b, w.name, TESTS, p99Ratio)),
      p50DiffUs: median(paired(samples, a, b, w.name, TESTS, p50DiffUs)),
      cpuRatio: median(paired(samples, a, b, w.name, ['SET'], cpuRatio)),
    });
  }
  return out;
}

/** Median CPU µs per request of one target in one workload (SET rows: one reading per invocation). */
export function cpuPerRequest(samples: Sample[], target: TargetName, workload: string): number {
  return median(
    samples
      .filter((s) => s.target === target && s.workload === workload && s.row.test === 'SET' && s.cpuUsPerRequest !== undefined)
      .map((s) => s.cpuUsPerRequest!),
  );
}

/** Median p50 of one target in one workload, SET and GET pooled, in µs. */
export function p50Us(samples: Sample[], target: TargetName, workload: string): number {
  return median(samples.filter((s) => s.target === target && s.workload === workload).map((s) => s.row.p50Ms * 1000));
}

export interface Check {
  what: string;
  target: string;
  measured: string;
  pass: boolean;
  /** How far the A/A pair (pipe2 against pipe) moved on the same measure: the noise in this run. */
  noise: string;
  /** The sidecar's deviation from the pipe is no larger than the A/A pair's. */
  withinNoise: boolean | undefined;
}

/**
 * The design §10 targets, the sidecar (or `subject`) against the bare pipe; with the A/A pair in
 * the run, each check also says whether the measured difference is larger than the noise.
 */
export function checkTargets(samples: Sample[], settings: BenchSettings, subject: TargetName = 'sidecar'): Check[] {
  const checks: Check[] = [];
  const aa = new Map(compare(samples, 'pipe2', 'pipe', settings).map((c) => [c.workload.name, c]));
  const noiseOf = (
    w: string,
    pick: (c: Comparison) => number,
    unit: 'ratio' | 'us',
    measured: number,
  ): Pick<Check, 'noise' | 'withinNoise'> => {
    const c = aa.get(w);
    if (c === undefined || !Number.isFinite(pick(c))) return { noise: 'no A/A pair', withinNoise: undefined };
    const dev = unit === 'ratio' ? Math.abs(pick(c) - 1) : Math.abs(pick(c));
    const own = unit === 'ratio' ? Math.abs(measured - 1) : Math.abs(measured);
    return { noise: unit === 'ratio' ? `A/A ${pick(c).toFixed(2)} ×` : `A/A ${signed(pick(c))} µs`, withinNoise: own <= dev };
  };
  for (const c of compare(samples, subject, 'pipe', settings)) {
    const n = `${c.pairs} pairs`;
    const w = c.workload.name;
    if (c.workload.clients > 1) {
      checks.push({
        what: `${w} throughput`,
        target: '≥ 1.10 × pipe',
        measured: `${c.rpsRatio.toFixed(2)} × (${n})`,
        pass: c.rpsRatio >= 1.1,
        ...noiseOf(w, (a) => a.rpsRatio, 'ratio', c.rpsRatio),
      });
      checks.push({
        what: `${w} p99 latency`,
        target: '≤ 1.00 × pipe',
        measured: `${c.p99Ratio.toFixed(2)} × (${n})`,
        pass: c.p99Ratio <= 1,
        ...noiseOf(w, (a) => a.p99Ratio, 'ratio', c.p99Ratio),
      });
    } else {
      checks.push({
        what: `${w} p50 latency`,
        target: '≤ pipe',
        measured: `${signed(c.p50DiffUs)} µs over pipe (${n})`,
        pass: c.p50DiffUs <= 0,
        ...noiseOf(w, (a) => a.p50DiffUs, 'us', c.p50DiffUs),
      });
    }
    if (Number.isFinite(c.cpuRatio)) {
      checks.push({
        what: `${w} CPU per request`,
        target: '≤ 0.90 × pipe',
        measured: `${c.cpuRatio.toFixed(2)} ×`,
        pass: c.cpuRatio <= 0.9,
        ...noiseOf(w, (a) => a.cpuRatio, 'ratio', c.cpuRatio),
      });
    }
  }
  return checks;
}

export function signed(v: number, digits = 0): string {
  return `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
}

/** The geometric mean of positive finite values (NaN when there are none). */
export function geomean(values: number[]): number {
  const ok = values.filter((v) => Number.isFinite(v) && v > 0);
  return ok.length === 0 ? NaN : Math.exp(ok.reduce((s, v) => s + Math.log(v), 0) / ok.length);
}
