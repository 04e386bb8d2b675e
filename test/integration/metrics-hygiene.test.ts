/**
 * /metrics of a live sidecar (real redis-server master and replica, client sessions in every common
 * mode, denied and malformed commands): the real `promtool check metrics` has no complaint, names
 * follow the unit rules, and every label set is closed (no client address, no command argument).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReplicationGroup } from '../../harness/redis-server.js';
import { startSidecar } from '../support/sidecar.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { PROMTOOL, missingBinary, promtool } from '../support/prometheus.js';
import { FRONT_DIRECTIONS, FRONT_REFUSE_REASONS } from '../../src/observability/names.js';
import { FRONT_PORT_ROLES } from '../../src/replication/pika-ports.js';
import {
  BACKEND_ROLES,
  CLOSE_REASONS,
  PHASE_OUTCOMES,
  REFUSAL_REASONS,
  REPLICA_STATES,
  SESSION_MODES,
  SHUTDOWN_STATES,
} from '../../src/observability/names.js';

interface Family {
  name: string;
  type: string;
  samples: Array<{ name: string; labels: Record<string, string> }>;
}

/** The text exposition format, parsed just enough: families with their type and labelled samples. */
function parseExposition(text: string): Family[] {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      current = { name: type[1]!, type: type[2]!, samples: [] };
      families.set(current.name, current);
      continue;
    }
    if (line === '' || line.startsWith('#') || current === undefined) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    assert.ok(m, `unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    current.samples.push({ name: m[1]!, labels });
  }
  return [...families.values()];
}

/** Every label the sidecar uses, and what its values may be. */
function closedLabels(replicaAddresses: ReadonlySet<string>): Record<string, (v: string) => boolean> {
  const oneOf = (values: readonly string[]) => (v: string) => values.includes(v);
  return {
    mode: oneOf(SESSION_MODES),
    // client_connections_closed_total, client_connections_refused_total, the fronted ports' refusals
    reason: oneOf([...CLOSE_REASONS, ...REFUSAL_REASONS, ...FRONT_REFUSE_REASONS]),
    // the fronted Pika replication ports (replication.frontPikaPorts)
    port: oneOf(FRONT_PORT_ROLES),
    direction: oneOf(FRONT_DIRECTIONS),
    phase: oneOf(SHUTDOWN_STATES),
    outcome: oneOf(PHASE_OUTCOMES),
    role: oneOf(BACKEND_ROLES),
    // replicas (state) and the backend pool (state)
    state: oneOf([...REPLICA_STATES, 'warm', 'waiting']),
    // a replica of the backend, as the backend announces it: bounded by the replica count, never a client
    replica: (v) => replicaAddresses.has(v),
    le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
    // prom-client's Node.js metrics: handle types, heap spaces, GC kinds, the runtime version
    type: (v) => /^[A-Za-z]+$/.test(v),
    space: (v) => /^[a-z_]+$/.test(v),
    kind: (v) => /^[a-z]+$/.test(v),
    version: (v) => /^v\d+\.\d+\.\d+$/.test(v),
    major: (v) => /^\d+$/.test(v),
    minor: (v) => /^\d+$/.test(v),
    patch: (v) => /^\d+$/.test(v),
  };
}

async function liveMetrics(t: Parameters<typeof deferrer>[0]) {
  const defer = deferrer(t);
  const { master, replicas } = await startReplicationGroup(1);
  defer(() => master.stop());
  defer(() => replicas[0]!.stop());
  const sc = await startSidecar(master.port, { deniedCommands: ['flushall'], replication: { pollIntervalMs: 100 } });
  defer(() => sc.shutdown());
  // Sessions with distinctive arguments and ports: none of it may become a label value.
  const secretArg = 'label-must-not-carry-this-argument';
  const clients = await Promise.all([0, 1, 2].map(() => RawClient.connect(sc.listen.port)));
  defer(() => clients.forEach((c) => c.close()));
  clients[0]!.write(resp('SET', secretArg, secretArg));
  await clients[0]!.untilEndsWith('+OK\r\n');
  clients[1]!.write(resp('FLUSHALL'));
  await clients[1]!.until((b) => b.toString().startsWith('-'));
  clients[2]!.write(resp('MULTI'));
  await clients[2]!.untilEndsWith('+OK\r\n');
  const bad = await RawClient.connect(sc.listen.port);
  bad.write('*1\r\n$x\r\n'); // malformed: closed for a protocol error
  await bad.until(() => bad.closed, 5000, 'the malformed session to close').catch(() => undefined);
  await waitFor(() => sc.metrics.replicaLagBytes.get().then((g) => g.values.length > 0), { what: 'the replica lag to be published' });
  const text = await (await fetch(`http://127.0.0.1:${sc.admin.port}/metrics`)).text();
  const clientPorts = clients.map((c) => String(c.socket.localPort));
  return { text, secretArg, clientPorts, replicaAddresses: new Set([`127.0.0.1:${replicas[0]!.port}`]) };
}

test(
  "promtool check metrics finds nothing to complain about in a live sidecar's /metrics",
  { skip: missingBinary(PROMTOOL) },
  async (t) => {
    const { text } = await liveMetrics(t);
    const r = promtool(['check', 'metrics'], text);
    assert.equal(r.output.trim(), '', 'promtool has no complaint');
    assert.equal(r.code, 0);
  },
);

test('metric names carry their unit and type (_total only on counters, _seconds, _bytes) and every label set is closed', async (t) => {
  const { text, secretArg, clientPorts, replicaAddresses } = await liveMetrics(t);
  const families = parseExposition(text);
  assert.ok(families.length > 20, 'the registry was scraped');
  const allowed = closedLabels(replicaAddresses);
  for (const f of families) {
    assert.match(f.name, /^pika_sidecar_/, `${f.name}: one prefix for everything the sidecar exports`);
    assert.equal(f.name.endsWith('_total'), f.type === 'counter', `${f.name} (${f.type}): _total exactly on counters`);
    if (/duration|timestamp|_time_|uptime|latency/.test(f.name)) assert.match(f.name, /_seconds(_total)?$/, `${f.name}: times in seconds`);
    if (/lag|memory|heap|size/.test(f.name) && !/_(seconds|total)$/.test(f.name))
      assert.match(f.name, /_bytes$/, `${f.name}: sizes in bytes`);
    assert.doesNotMatch(f.name, /_(ms|milliseconds|kb|mb|percent)($|_)/, `${f.name}: base units only`);
    for (const s of f.samples) {
      for (const [label, value] of Object.entries(s.labels)) {
        const check = allowed[label];
        assert.ok(check, `${s.name}: label ${label} is not in the closed set of labels`);
        assert.ok(check(value), `${s.name}{${label}="${value}"}: value outside its closed set`);
      }
    }
  }
  assert.ok(!text.includes(secretArg), 'no command argument appears anywhere in /metrics');
  for (const port of clientPorts) assert.ok(!text.includes(`:${port}"`), `no client address (port ${port}) appears as a label value`);
  assert.ok(
    families.some((f) => f.name === 'pika_sidecar_replica_lag_bytes' && f.samples.length === 1),
    'the replica is labelled by its address',
  );
});
