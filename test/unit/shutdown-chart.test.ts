/** The README's shutdown chart is drawn from the recorded scrape of the e2e, and stays in step with it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHART_DATA_PATH, CHART_PATH, renderShutdownChart, type ScrapeRecord } from '../../src/docs/shutdown-chart.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const record = () => JSON.parse(readFileSync(root(CHART_DATA_PATH), 'utf8')) as ScrapeRecord;

test('docs/img/shutdown.svg is exactly what the recorded range queries draw', () => {
  assert.equal(readFileSync(root(CHART_PATH), 'utf8'), renderShutdownChart(record()), 'redraw it: npm run chart');
});

test('the recorded scrape shows a real shutdown: running, replication_sync and drained, the replica behind then caught up', () => {
  const rec = record();
  const seen = rec.phase.data.result.filter((s) => s.values.some(([, v]) => v === '1')).map((s) => s.metric['phase']);
  for (const state of ['running', 'replication_sync', 'drained']) assert.ok(seen.includes(state), state);
  const lag = rec.lag.data.result[0]!.values.map(([, v]) => Number(v));
  assert.ok(Math.max(...lag) > 0 && lag.at(-1) === 0);
  const svg = renderShutdownChart(rec);
  for (const label of ['replication_sync', 'drained', 'SIGTERM', 'pika_sidecar_inflight_commands']) assert.ok(svg.includes(label), label);
});

test('a record without scraped states is refused rather than drawn empty', () => {
  const rec = record();
  assert.throws(() => renderShutdownChart({ ...rec, phase: { data: { result: [] } } }), /fewer than two scraped states/);
});
