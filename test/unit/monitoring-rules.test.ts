/**
 * The alerts of deploy/kubernetes/monitoring/prometheusrule.yaml through the real promtool: the rule
 * groups are extracted from the manifest (so the tested rules are the shipped ones), checked, and
 * unit-tested with test/monitoring/alerts.promtool.yaml (each alert firing, a healthy shutdown that
 * fires none). Every alert has its runbook entry, and names only metrics the sidecar exports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Registry } from 'prom-client';
import { REPO_ROOT, readYamlDocuments } from '../support/kubelet/index.js';
import { PROMTOOL, missingBinary, promtool } from '../support/prometheus.js';
import { createMetrics } from '../../src/observability/metrics.js';

const RULE_MANIFEST = join(REPO_ROOT, 'deploy/kubernetes/monitoring/prometheusrule.yaml');
const RULE_TESTS = join(REPO_ROOT, 'test/monitoring/alerts.promtool.yaml');
const RUNBOOK = join(REPO_ROOT, 'docs/runbook.md');
/** Series the Pushgateway adds to every pushed group. */
const PUSHGATEWAY_SERIES = ['push_time_seconds'];

interface Rule {
  alert: string;
  expr: string;
  annotations: Record<string, string>;
}

function ruleGroups(): Array<{ name: string; rules: Rule[] }> {
  const [manifest] = readYamlDocuments(RULE_MANIFEST) as Array<{ spec: { groups: Array<{ name: string; rules: Rule[] }> } }>;
  return manifest!.spec.groups;
}

/** The rules file promtool reads, written next to a copy of the tests (they name it rules.yaml). */
function extracted(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-rules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: ruleGroups() }));
  copyFileSync(RULE_TESTS, join(dir, 'alerts.promtool.yaml'));
  return dir;
}

const noPromtool = missingBinary(PROMTOOL);

test('promtool check rules accepts the rule groups of the shipped PrometheusRule', { skip: noPromtool }, (t) => {
  const dir = extracted(t);
  const r = promtool(['check', 'rules', join(dir, 'rules.yaml')]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /SUCCESS: 5 rules found/);
});

test('promtool test rules: every alert fires on its series, and a healthy shutdown fires none', { skip: noPromtool }, (t) => {
  const dir = extracted(t);
  const r = promtool(['test', 'rules', join(dir, 'alerts.promtool.yaml')]);
  assert.equal(r.code, 0, r.output);
  // Each alert is expected to fire somewhere in the tests, not only to stay silent.
  const tests = readFileSync(RULE_TESTS, 'utf8');
  for (const { alert } of ruleGroups().flatMap((g) => g.rules)) {
    assert.match(tests, new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${alert} has a firing case`);
  }
});

test('a broken rule fails promtool check rules (the check is real)', { skip: noPromtool }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-rules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'rules.yaml'),
    stringify({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'max_over_time(pika_sidecar_exit_code) >' }] }] }),
  );
  assert.notEqual(promtool(['check', 'rules', join(dir, 'rules.yaml')]).code, 0);
});

test('every alert has a runbook entry in docs/runbook.md, and its runbook_url points at it', () => {
  const runbook = readFileSync(RUNBOOK, 'utf8');
  const headings = [...runbook.matchAll(/^## (\S+)$/gm)].map((m) => m[1]);
  const alerts = ruleGroups().flatMap((g) => g.rules);
  assert.deepEqual(
    headings,
    alerts.map((r) => r.alert),
    'one entry per alert, in the same order',
  );
  for (const r of alerts) assert.ok(r.annotations.runbook_url?.endsWith(`docs/runbook.md#${r.alert.toLowerCase()}`), r.alert);
});

test('the alerts name only metrics the sidecar exports (and the Pushgateway stamp)', () => {
  const exported = new Set([
    ...createMetrics(new Registry())
      .registry.getMetricsAsArray()
      .map((m) => m.name),
    ...PUSHGATEWAY_SERIES,
  ]);
  for (const r of ruleGroups().flatMap((g) => g.rules)) {
    const names = r.expr.match(/\b(pika_sidecar_[a-z_]+|push_time_seconds)\b/g) ?? [];
    assert.ok(names.length > 0, r.alert);
    for (const n of names) assert.ok(exported.has(n), `${r.alert}: ${n} is not exported`);
  }
});
