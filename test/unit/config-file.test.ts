import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_CONFIG, CONFIG_KEYS, KEYS_BY_FIELD, getField, primaryKey, type FieldPath } from '../../src/config/keys.js';
import { renderDefaultsYaml, renderEffectiveYaml } from '../../src/config/render.js';

// dist/test/unit/ -> the repository root
const SHIPPED = fileURLToPath(new URL('../../../config/pika-sidecar.yaml', import.meta.url));

function tempFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-config-file-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Every leaf of SidecarConfig, dotted, from the defaults object itself. */
function configLeaves(): string[] {
  const leaves: string[] = [];
  for (const [name, value] of Object.entries(DEFAULT_CONFIG)) {
    if (name === 'replication' || name === 'shutdown') {
      for (const sub of Object.keys(value as object)) leaves.push(`${name}.${sub}`);
    } else {
      leaves.push(name);
    }
  }
  return leaves.sort();
}

test('config/pika-sidecar.yaml as shipped loads to exactly DEFAULT_CONFIG', () => {
  const { config, sources, configPath } = loadConfig({ configPath: SHIPPED, argv: {}, env: {} });
  assert.deepEqual(config, DEFAULT_CONFIG);
  assert.equal(configPath, SHIPPED);
  // Every key with a value comes from the file; only the unset optional ones fall through to defaults.
  for (const [path, source] of Object.entries(sources)) {
    const unset = getField(DEFAULT_CONFIG, primaryKeyByPath(path).field) === undefined;
    assert.equal(source, unset ? 'default' : 'file', path);
  }
});

test('the shipped file is exactly what the key table renders, so docs and defaults cannot drift', () => {
  assert.equal(
    readFileSync(SHIPPED, 'utf8'),
    renderDefaultsYaml(),
    'regenerate it: node dist/src/cli.js check-config --defaults > config/pika-sidecar.yaml',
  );
});

test('every key appears once in the shipped file, under a comment naming what is allowed, its env and its flag', () => {
  const lines = readFileSync(SHIPPED, 'utf8').split('\n');
  for (const k of CONFIG_KEYS) {
    const leaf = k.path.slice(k.path.lastIndexOf('.') + 1);
    const indent = k.path.includes('.') ? '  ' : '';
    const at = lines.flatMap((l, i) => (l.startsWith(`${indent}${leaf}: `) ? [i] : []));
    assert.equal(at.length, 1, `${k.path} appears ${at.length} times`);
    const comment = lines[(at[0] ?? 0) - 1] ?? '';
    assert.ok(comment.startsWith(`${indent}# ${k.describe}. Allowed: `), `${k.path}: ${comment}`);
    assert.ok(comment.includes(`Env ${k.env}, flag --${k.flag}`), `${k.path}: ${comment}`);
  }
});

test('the key table covers every SidecarConfig field, and names are unique and derived one way', () => {
  assert.deepEqual([...KEYS_BY_FIELD.keys()].sort(), configLeaves());
  const unique = (xs: string[]): boolean => new Set(xs).size === xs.length;
  assert.ok(unique(CONFIG_KEYS.map((k) => k.path)));
  assert.ok(unique(CONFIG_KEYS.flatMap((k) => [k.env, ...k.envAliases])));
  assert.ok(unique(CONFIG_KEYS.flatMap((k) => [k.flag, ...k.flagAliases])));
  for (const k of CONFIG_KEYS) {
    assert.equal(k.env, `PIKA_SIDECAR_${k.flag.toUpperCase().replaceAll('-', '_')}`, k.path);
    assert.equal(
      k.flag,
      k.path.replace('.', '-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
      `${k.path}: the flag is the path in kebab case`,
    );
    assert.match(k.flag, /^[a-z]+(-[a-z]+)*$/, k.path);
    k.flagAliases.forEach((f, i) => assert.equal(k.envAliases[i], `PIKA_SIDECAR_${f.toUpperCase().replaceAll('-', '_')}`, k.path));
    if (primaryKey(k.field) === k) {
      assert.equal(k.path, k.field.replace(/Ms$/, ''), k.path);
      assert.ok(k.hasDefault, `${k.path} carries the field's default`);
    } else {
      assert.ok(!k.hasDefault, `${k.path} sets ${k.field} from a file and has no default of its own`);
    }
  }
});

test('every default value written as YAML parses back to itself', () => {
  for (const [field, keys] of KEYS_BY_FIELD) {
    const k = keys[0];
    assert.ok(k !== undefined);
    const value = getField(DEFAULT_CONFIG, field);
    const parsed = k.parser.parse(k.parser.toYaml(value));
    assert.ok(parsed.ok, field);
    assert.deepEqual(parsed.value, value, field);
  }
});

test('check-config output shows each value with its source and secrets as [set]', (t) => {
  const secret = 'hunter2-very-secret';
  const path = tempFile(t, 'sidecar.yaml', 'poolSize: 3\nshutdown:\n  drainTimeout: 1500\n');
  const { config, sources } = loadConfig({
    argv: { config: path, listen: '[::1]:7000' },
    env: { PIKA_SIDECAR_BACKEND_PASSWORD: secret, PIKA_SIDECAR_LOG_LEVEL: 'warn' },
  });
  const text = renderEffectiveYaml(config, sources, path);
  assert.ok(!text.includes(secret));
  assert.match(text, new RegExp(`config file: ${path}`));
  assert.match(text, /^backendPassword: "\[set\]" +# env$/m);
  assert.match(text, /^adminToken: null +# default$/m);
  assert.match(text, /^listen: "\[::1\]:7000" +# flag$/m);
  assert.match(text, /^logLevel: warn +# env$/m);
  assert.match(text, /^poolSize: 3 +# file$/m);
  assert.match(text, /^ {2}drainTimeout: 1500ms +# file$/m);
  assert.match(text, /^ {2}deadline: 45s +# default$/m);
});

test('check-config output without secrets is itself a config file that loads to the same configuration', (t) => {
  const { config, sources } = loadConfig({
    argv: {
      listen: '[::1]:0',
      backend: 'pika-0.pika:9221',
      'denied-commands': 'shutdown,flushall,config',
      'replication-address-overrides': '10.0.0.2:9221=127.0.0.1:19221,[fe80::1]:9221=[::1]:19222',
      'trigger-dir': '/var/run/pika sidecar # not a comment',
      'pushgateway-url': 'http://127.0.0.1:9091/',
      'shutdown-deadline': '1h',
      'close-spread': '1500',
    },
    env: {},
  });
  const path = tempFile(t, 'effective.yaml', renderEffectiveYaml(config, sources, undefined));
  assert.deepEqual(loadConfig({ configPath: path, argv: {}, env: {} }).config, config);
});

function primaryKeyByPath(path: string) {
  const k = CONFIG_KEYS.find((key) => key.path === path);
  assert.ok(k !== undefined, path);
  return primaryKey(k.field as FieldPath);
}

test('the shutdown keys take the section-prefixed flags, and their older names still work, as flags and env', () => {
  const viaNew = loadConfig({ argv: { 'shutdown-drain-timeout': '4s' }, env: { PIKA_SIDECAR_SHUTDOWN_ANNOUNCE_DELAY: '2s' } });
  const viaOld = loadConfig({ argv: { 'drain-timeout': '4s' }, env: { PIKA_SIDECAR_ANNOUNCE_DELAY: '2s' } });
  for (const { config } of [viaNew, viaOld]) {
    assert.equal(config.shutdown.drainTimeoutMs, 4000);
    assert.equal(config.shutdown.announceDelayMs, 2000);
  }
  assert.equal(viaOld.sources['shutdown.drainTimeout'], 'flag');
  assert.equal(viaOld.sources['shutdown.announceDelay'], 'env');
  // Both names in the environment: the new one wins.
  const both = loadConfig({ argv: {}, env: { PIKA_SIDECAR_SHUTDOWN_DRAIN_TIMEOUT: '7s', PIKA_SIDECAR_DRAIN_TIMEOUT: '1s' } });
  assert.equal(both.config.shutdown.drainTimeoutMs, 7000);
  // An error names the name that was used.
  assert.throws(() => loadConfig({ argv: { 'drain-timeout': 'soon' }, env: {} }), /--drain-timeout/);
});
