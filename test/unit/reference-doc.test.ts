/**
 * docs/reference.md is generated from the code's declarations (config keys, metrics, admin
 * endpoints, exit codes): it must equal what the generator renders now, and the declarations must
 * agree with what the code does (the server routes exactly the declared endpoints).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { REFERENCE_PATH, UNDOCUMENTED, renderReference } from '../../src/docs/reference.js';
import { ADMIN_ENDPOINTS } from '../../src/admin/endpoints.js';
import { AdminServer, type AdminHooks } from '../../src/admin/admin-server.js';
import type { StatusBody } from '../../src/admin/status.js';
import { CONFIG_KEYS } from '../../src/config/keys.js';
import { createMetrics } from '../../src/observability/metrics.js';
import * as exitCodes from '../../src/exit-codes.js';
import { captureLogs } from '../support/log-capture.js';
import { deferrer } from '../support/defer.js';

// dist/test/unit/ -> the repository root
const COMMITTED = fileURLToPath(new URL(`../../../${REFERENCE_PATH}`, import.meta.url));

test('docs/reference.md is exactly what the declarations render, so the reference cannot go stale', () => {
  assert.equal(readFileSync(COMMITTED, 'utf8'), renderReference(), 'regenerate it: npm run docs (or make docs)');
});

test('the reference names every config key, every metric and every exit code, and describes every label', () => {
  const text = renderReference();
  for (const k of CONFIG_KEYS)
    assert.ok(text.includes(`| \`${k.path}\` |`) && text.includes(`\`--${k.flag}\``) && text.includes(`\`${k.env}\``), k.path);
  for (const m of createMetrics(new Registry()).registry.getMetricsAsArray())
    assert.ok(text.includes(`| \`${m.name}\` | ${m.type} |`), m.name);
  for (const c of [...exitCodes.EXIT_CODES, ...exitCodes.TOOL_EXIT_CODES])
    assert.ok(text.includes(`| ${c.code} | \`${c.name}\` |`), c.name);
  assert.ok(!text.includes(`| ${UNDOCUMENTED} |`), 'every label has its values described in src/docs/reference.ts');
});

test('every exported EXIT_ constant is declared in a table with its meaning', () => {
  const declared = new Set([...exitCodes.EXIT_CODES, ...exitCodes.TOOL_EXIT_CODES].map((c) => c.code));
  for (const [name, value] of Object.entries(exitCodes)) {
    if (name.startsWith('EXIT_') && typeof value === 'number') assert.ok(declared.has(value), `${name} = ${value}`);
  }
});

test('the admin server routes exactly the declared endpoints: each answers its method, 405 on another, 404 elsewhere', async (t) => {
  const defer = deferrer(t);
  const hooks: AdminHooks = {
    ready: () => ({ ready: true, reason: 'ready' }),
    // Not a whole StatusBody: only the routing is under test.
    status: () => ({ phase: 'running' }) as unknown as StatusBody,
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    startDrain: () => undefined,
    waitDrained: async () => 'drained',
  };
  const admin = new AdminServer({ host: '127.0.0.1', port: 0, token: undefined, hooks, logger: captureLogs('silent').logger });
  const { port } = await admin.listen();
  defer(() => admin.destroy());
  const base = `http://127.0.0.1:${port}`;
  for (const e of ADMIN_ENDPOINTS) {
    const ok = await fetch(`${base}${e.path}`, { method: e.method });
    await ok.arrayBuffer();
    assert.ok(ok.status < 300, `${e.method} ${e.path} answered ${ok.status}`);
    const other = e.method === 'GET' ? 'POST' : 'GET';
    const wrong = await fetch(`${base}${e.path}`, { method: other });
    await wrong.arrayBuffer();
    assert.equal(wrong.status, 405, `${other} ${e.path}`);
  }
  const unknown = await fetch(`${base}/not-declared`);
  await unknown.arrayBuffer();
  assert.equal(unknown.status, 404);
});
