/**
 * A real Prometheus scrapes a real sidecar (the CLI as a child process) every 100 ms through a
 * shutdown under write load with a stalled replica (SIGSTOP on a real redis-server replica), with
 * the labels the PodMonitor would give it. Then, from its range queries: the phases appear in order
 * after `running`; nothing is in flight once replication_sync starts; the stalled replica's lag
 * reaches 0 before `drained`. Every dashboard query parses and answers, naming exported metrics only.
 *
 * PIKA_SIDECAR_RECORD_SCRAPE=<file> saves the range queries' JSON (docs/img/shutdown-scrape.json is
 * one such run; scripts/shutdown-chart.mjs draws the README's chart from it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { startReplicationGroup } from '../../harness/redis-server.js';
import { spawnSidecar } from '../../harness/sidecar-process.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';
import { Deployment } from '../support/kubelet/index.js';
import { PROMETHEUS, Prometheus, missingBinary, type PromSample } from '../support/prometheus.js';
import { WriteLoad } from '../../harness/write-load.js';
import { SHUTDOWN_STATES } from '../../src/observability/names.js';

const SCRAPE_MS = 100;
const STALL_MS = 1500;
/** The labels prometheus-operator gives a PodMonitor's targets (deploy/kubernetes/monitoring/podmonitor.yaml). */
const POD_LABELS = { namespace: 'default', pod: 'pika-0', container: 'pika-sidecar', endpoint: 'admin' };
const JOB = 'default/pika-sidecar';

function prometheusConfig(adminPort: number): string {
  return stringify({
    global: { scrape_interval: `${SCRAPE_MS}ms`, scrape_timeout: `${SCRAPE_MS}ms`, evaluation_interval: '1s' },
    scrape_configs: [
      {
        job_name: `podMonitor/${JOB}/0`,
        metrics_path: '/metrics',
        static_configs: [{ targets: [`127.0.0.1:${adminPort}`], labels: POD_LABELS }],
        // The operator's relabelling sets job to <namespace>/<PodMonitor name>.
        relabel_configs: [{ target_label: 'job', replacement: JOB }],
      },
    ],
  });
}

/** At each step of a `pika_sidecar_shutdown_phase` matrix, the phase whose value is 1. */
function phaseTimeline(matrix: readonly PromSample[]): Array<{ t: number; phase: string }> {
  const byTime = new Map<number, string>();
  for (const s of matrix) for (const [t, v] of s.values) if (v === '1') byTime.set(t, s.metric['phase']!);
  return [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([t, phase]) => ({ t, phase }));
}

/**
 * How long the sidecar was in each shutdown state, from its log lines: a phase from its start line
 * to the next state; `release` ends as a state when the stop gate opens (`drained`, inside release).
 */
function stateDurations(logs: ReadonlyArray<Record<string, unknown>>): Map<string, number> {
  const at = (pred: (l: Record<string, unknown>) => boolean) => {
    const l = logs.find(pred);
    return l === undefined ? undefined : Date.parse(String(l['time']));
  };
  const starts: Array<[string, number | undefined]> = [
    ...['intercept', 'drain', 'close_clients', 'replication_sync', 'release'].map((p): [string, number | undefined] => [
      p,
      at((l) => l['msg'] === `phase ${p} started`),
    ]),
    ['drained', at((l) => l['msg'] === 'stop gate open: the backend may stop now')],
  ];
  const out = new Map<string, number>();
  for (let i = 0; i + 1 < starts.length; i++) {
    const [state, from] = starts[i]!;
    const to = starts[i + 1]![1];
    assert.ok(from !== undefined && to !== undefined, `log lines for ${state}`);
    out.set(state, to - from);
  }
  return out;
}

function collapse(timeline: ReadonlyArray<{ phase: string }>): string[] {
  return timeline.map((x) => x.phase).filter((p, i, all) => i === 0 || all[i - 1] !== p);
}

/** The dashboard's queries with Grafana's variables filled in as Grafana would for "All". */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const data = Deployment.load('regular').configMapData('pika-sidecar-dashboard')['pika-sidecar.json']!;
  const dashboard = JSON.parse(data) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  return dashboard.panels.flatMap((p) =>
    p.targets.map((t) => ({
      panel: p.title,
      expr: t.expr
        .replaceAll('$namespace', '.*')
        .replaceAll('$pod', '.*')
        .replaceAll('$__rate_interval', '1s')
        .replaceAll('$__range', '1m'),
    })),
  );
}

test(
  'a real Prometheus scraping every 100 ms sees the shutdown in order: in flight 0 before replication_sync, the stalled replica at lag 0 before drained',
  { skip: missingBinary(PROMETHEUS), timeout: 120_000 },
  async (t) => {
    const defer = deferrer(t);
    const { master, replicas } = await startReplicationGroup(1);
    const replica = replicas[0]!;
    defer(() => master.stop());
    defer(() => replica.stop());
    const sc = await spawnSidecar(master.port, [
      '--metrics-linger',
      '2s',
      '--announce-delay',
      '500ms',
      '--replication-poll-interval',
      '100ms',
    ]);
    defer(() => sc.kill());
    const prom = await Prometheus.start(prometheusConfig(sc.adminPort));
    defer(() => prom.stop());

    const exported = new Set(
      (await (await fetch(`${sc.admin}/metrics`)).text())
        .split('\n')
        .flatMap((l) => (/^# TYPE (\S+) /.exec(l)?.[1] ? [/^# TYPE (\S+) /.exec(l)![1]!] : [])),
    );
    await waitFor(async () => (await prom.targets()).some((x) => x.health === 'up'), {
      timeoutMs: 20_000,
      what: 'Prometheus to scrape the sidecar',
    });
    const [target] = await prom.targets();
    for (const [k, v] of Object.entries({ ...POD_LABELS, job: JOB })) assert.equal(target!.labels[k], v, `target label ${k}`);

    const startS = Date.now() / 1000; // the range queries cover the load before the shutdown too
    const load = await WriteLoad.start({ host: '127.0.0.1', port: sc.port, connections: 8, batch: 32, maxWritesPerSec: 40_000 });
    defer(() => load.destroy());
    await waitFor(() => load.stats().acknowledged >= 5_000, { timeoutMs: 15_000, what: '5,000 acknowledged writes' });
    replica.pause();
    defer(() => replica.resume());
    const stalledAddress = `127.0.0.1:${replica.port}`;
    // A second of scrapes with the replica behind, all of it under load.
    const behind = `min_over_time(pika_sidecar_replica_lag_bytes{replica="${stalledAddress}"}[1s]) > 0 and count_over_time(pika_sidecar_replica_lag_bytes{replica="${stalledAddress}"}[1s]) >= 8`;
    await waitFor(async () => (await prom.query(behind)).length > 0, {
      timeoutMs: 15_000,
      what: 'Prometheus to see the stalled replica behind for a second',
    });
    sc.proc.kill('SIGTERM');
    await sc.waitForLog((l) => l.msg === 'phase replication_sync started', 20_000);
    const stalledAt = Date.now();
    await waitFor(() => Date.now() - stalledAt >= STALL_MS, { what: 'the replica to stay stalled', intervalMs: 50 });
    replica.resume();
    const { code } = await sc.exited;
    assert.equal(code, 0, 'the shutdown completed');
    load.destroy();
    const endS = Date.now() / 1000 + 1;
    // Let Prometheus write its last samples (the failed scrape's staleness markers) before reading.
    await waitFor(async () => (await prom.targets()).some((x) => x.health === 'down'), {
      timeoutMs: 10_000,
      what: 'Prometheus to notice the exit',
    });

    const step = SCRAPE_MS / 1000;
    const phase = await prom.queryRange('pika_sidecar_shutdown_phase', startS, endS, step);
    const inflight = await prom.queryRange('pika_sidecar_inflight_commands', startS, endS, step);
    const lag = await prom.queryRange(`pika_sidecar_replica_lag_bytes{replica="${stalledAddress}"}`, startS, endS, step);
    const record = process.env['PIKA_SIDECAR_RECORD_SCRAPE'];
    if (record) {
      writeFileSync(
        record,
        `${JSON.stringify({ scrapeIntervalMs: SCRAPE_MS, stallMs: STALL_MS, phase: phase.json, inflight: inflight.json, lag: lag.json }, null, 1)}\n`,
      );
    }

    // Phases in order after running; every phase that lasted longer than two scrapes was seen.
    const timeline = phaseTimeline(phase.result);
    const seen = collapse(timeline);
    assert.equal(seen[0], 'running', `starts in running: ${seen.join(' -> ')}`);
    const order = seen.map((p) => SHUTDOWN_STATES.indexOf(p as (typeof SHUTDOWN_STATES)[number]));
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      `in order: ${seen.join(' -> ')}`,
    );
    assert.equal(new Set(seen).size, seen.length, `each state once: ${seen.join(' -> ')}`);
    for (const [state, ms] of stateDurations(sc.logs)) {
      if (ms > 2 * SCRAPE_MS) assert.ok(seen.includes(state), `${state} lasted ${ms} ms and was scraped: ${seen.join(' -> ')}`);
    }
    assert.ok(
      seen.includes('replication_sync') && seen.includes('drained'),
      `replication_sync and drained were scraped: ${seen.join(' -> ')}`,
    );
    assert.ok(!seen.includes('exited'), 'exited is never scrapeable');

    // In flight: 0 at every scrape from replication_sync on.
    const syncAt = timeline.find((x) => x.phase === 'replication_sync')!.t;
    const drainedAt = timeline.find((x) => x.phase === 'drained')!.t;
    const inflightValues = inflight.result[0]!.values;
    const afterSync = inflightValues.filter(([ts]) => ts >= syncAt);
    assert.ok(afterSync.length > 0);
    for (const [ts, v] of afterSync) assert.equal(v, '0', `in flight at ${ts} (replication_sync began at ${syncAt})`);

    // The stalled replica: behind during the stall, at 0 before the gate opened.
    const lagValues = lag.result[0]!.values;
    assert.ok(
      lagValues.some(([ts, v]) => ts >= syncAt && Number(v) > 0),
      'the stall is visible during replication_sync',
    );
    const caughtUp = lagValues.find(([ts, v]) => ts >= syncAt && v === '0');
    assert.ok(caughtUp && caughtUp[0] <= drainedAt, `lag 0 at ${caughtUp?.[0]} before drained at ${drainedAt}`);

    // The dashboard: every query parses, answers at the drained moment, and names exported metrics.
    for (const q of dashboardQueries()) {
      for (const name of q.expr.match(/\bpika_sidecar_[a-z_]+/g) ?? []) assert.ok(exported.has(name), `${q.panel}: ${name} is exported`);
      await prom.query(q.expr).catch((e: Error) => assert.fail(`${q.panel}: ${q.expr} does not parse: ${e.message}`));
      const at = await fetch(`${prom.url}/api/v1/query?${new URLSearchParams({ query: q.expr, time: String(drainedAt) }).toString()}`);
      const body = (await at.json()) as { status: string; data: { result: unknown[] } };
      assert.equal(body.status, 'success', `${q.panel}: ${q.expr}`);
      assert.ok(body.data.result.length > 0, `${q.panel}: ${q.expr} has data at the drained moment`);
    }
  },
);
