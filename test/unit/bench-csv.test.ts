/** The benchmark's parsing of redis-benchmark output and its statistics (make bench is a report; its arithmetic is tested here). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBenchmarkCsv } from '../bench/csv.js';
import { median, rotated } from '../bench/stats.js';

// As redis-benchmark 7.0 prints it with --csv.
const CSV = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","86022.00","0.301","0.064","0.295","0.495","0.791","2.119"
"GET","106951.88","0.252","0.056","0.287","0.383","0.639","1.527"
`;

test('redis-benchmark CSV rows are read by the header names', () => {
  assert.deepEqual(parseBenchmarkCsv(CSV), [
    { test: 'SET', rps: 86022, avgMs: 0.301, p50Ms: 0.295, p95Ms: 0.495, p99Ms: 0.791, maxMs: 2.119 },
    { test: 'GET', rps: 106951.88, avgMs: 0.252, p50Ms: 0.287, p95Ms: 0.383, p99Ms: 0.639, maxMs: 1.527 },
  ]);
});

test('a reordered header is read by name, not position', () => {
  const reordered = `"rps","test","p99_latency_ms","p50_latency_ms","avg_latency_ms","min_latency_ms","p95_latency_ms","max_latency_ms"\n"1000.00","GET","2.0","1.0","1.1","0.1","1.5","3.0"\n`;
  const [row] = parseBenchmarkCsv(reordered);
  assert.deepEqual([row?.test, row?.rps, row?.p50Ms, row?.p99Ms], ['GET', 1000, 1, 2]);
});

test('output with no CSV header is an error naming what was printed', () => {
  assert.throws(
    () => parseBenchmarkCsv('Could not connect to Redis at 127.0.0.1:1: Connection refused\n'),
    /no CSV header[\s\S]*Connection refused/,
  );
});

test('median and the rotation of targets across rounds', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.deepEqual(rotated(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
  assert.deepEqual(rotated(['a', 'b', 'c'], 3), ['a', 'b', 'c']);
});
