/** redis-benchmark's `--csv` output, read by the header's column names. */

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
