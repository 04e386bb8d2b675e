import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderSignalTable, TERMINATION_SIGNALS } from '../../src/shutdown/signals.js';

const root = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

test('docs/security.md shows exactly the signal table the code handles', () => {
  const doc = readFileSync(root('docs/security.md'), 'utf8');
  const begin = doc.indexOf('-->\n', doc.indexOf('<!-- signals:begin')) + 4;
  const end = doc.indexOf('<!-- signals:end');
  assert.ok(begin > 3 && end > begin, 'the markers are there');
  assert.equal(doc.slice(begin, end).trim(), renderSignalTable());
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'])
    assert.ok(
      TERMINATION_SIGNALS.some((r) => r.signal === s),
      s,
    );
});

for (const configmap of ['deploy/kubernetes/common/configmap.yaml', 'deploy/kubernetes/fronted/configmap.yaml']) {
  test(`${configmap} sets protectedMode explicitly, with a comment pointing at the NetworkPolicy`, () => {
    const text = readFileSync(root(configmap), 'utf8');
    const lines = text.split('\n');
    const at = lines.findIndex((l) => /^\s+protectedMode: false$/.test(l));
    assert.ok(at > 0, 'protectedMode: false is in the sidecar config');
    const comment = lines.slice(Math.max(0, at - 6), at).join('\n');
    assert.match(comment, /NetworkPolicy/);
    assert.match(comment, /requirepass/);
  });
}
