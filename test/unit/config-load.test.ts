import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { CONFIG_KEYS } from '../../src/config/keys.js';
import { DEFAULT_CONFIG } from '../../src/config/keys.js';
import { maskUrlPassword } from '../../src/observability/redact.js';
import { renderEffectiveYaml } from '../../src/config/render.js';
import { configErrorOf } from '../support/config-error.js';

/** A temporary directory removed after the test. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a YAML file into a fresh temporary directory and returns its path. */
function yamlFile(t: TestContext, text: string, name = 'sidecar.yaml'): string {
  const path = join(tempDir(t), name);
  writeFileSync(path, text);
  return path;
}

describe('layers and precedence', () => {
  test('with nothing set the configuration equals DEFAULT_CONFIG and every source is default', () => {
    const { config, sources, configPath } = loadConfig({ argv: {}, env: {} });
    assert.deepEqual(config, DEFAULT_CONFIG);
    assert.equal(configPath, undefined);
    assert.ok(Object.values(sources).every((s) => s === 'default'));
    assert.equal(sources['shutdown.drainTimeout'], 'default');
  });

  test('the result is a copy: changing it leaves DEFAULT_CONFIG alone', () => {
    const { config } = loadConfig({ argv: {}, env: {} });
    config.deniedCommands.push('flushall');
    config.shutdown.drainTimeoutMs = 1;
    assert.deepEqual(DEFAULT_CONFIG.deniedCommands, ['shutdown']);
    assert.equal(DEFAULT_CONFIG.shutdown.drainTimeoutMs, 10_000);
  });

  test('a flag beats the environment, which beats the file, which beats the default', (t) => {
    const path = yamlFile(t, 'poolSize: 4\nlogLevel: debug\nshutdown:\n  drainTimeout: 7s\n');
    const env = { PIKA_SIDECAR_POOL_SIZE: '5', PIKA_SIDECAR_DRAIN_TIMEOUT: '8s' };

    const all = loadConfig({ argv: { config: path, 'pool-size': '6' }, env });
    assert.equal(all.config.poolSize, 6);
    assert.equal(all.sources['poolSize'], 'flag');
    assert.equal(all.config.shutdown.drainTimeoutMs, 8000);
    assert.equal(all.sources['shutdown.drainTimeout'], 'env');
    assert.equal(all.config.logLevel, 'debug');
    assert.equal(all.sources['logLevel'], 'file');
    assert.equal(all.config.backendKind, 'auto');
    assert.equal(all.sources['backendKind'], 'default');

    const noFlag = loadConfig({ argv: { config: path }, env });
    assert.equal(noFlag.config.poolSize, 5);
    assert.equal(noFlag.sources['poolSize'], 'env');

    const fileOnly = loadConfig({ argv: { config: path }, env: {} });
    assert.equal(fileOnly.config.poolSize, 4);
    assert.equal(fileOnly.config.shutdown.drainTimeoutMs, 7000);
    assert.equal(fileOnly.sources['shutdown.drainTimeout'], 'file');
  });

  test('addresses follow the same precedence, key by key', (t) => {
    const path = yamlFile(t, 'listen: 127.0.0.1:1001\nbackend: 127.0.0.1:1002\nadmin: 127.0.0.1:1003\n');
    const { config, sources } = loadConfig({
      argv: { config: path, listen: '127.0.0.1:2001' },
      env: { PIKA_SIDECAR_LISTEN: '127.0.0.1:3001', PIKA_SIDECAR_BACKEND: ':3002' },
    });
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 2001 });
    assert.deepEqual(config.backend, { host: '127.0.0.1', port: 3002 });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 1003 });
    assert.deepEqual([sources['listen'], sources['backend'], sources['admin']], ['flag', 'env', 'file']);
  });

  test('the file is named by configPath, else --config, else PIKA_SIDECAR_CONFIG', (t) => {
    const a = yamlFile(t, 'poolSize: 1\n', 'a.yaml');
    const b = yamlFile(t, 'poolSize: 2\n', 'b.yaml');
    const c = yamlFile(t, 'poolSize: 3\n', 'c.yaml');
    const env = { PIKA_SIDECAR_CONFIG: c };
    assert.equal(loadConfig({ configPath: a, argv: { config: b }, env }).config.poolSize, 1);
    assert.equal(loadConfig({ argv: { config: b }, env }).config.poolSize, 2);
    const fromEnv = loadConfig({ argv: {}, env });
    assert.equal(fromEnv.config.poolSize, 3);
    assert.equal(fromEnv.configPath, c);
  });

  test('durations are accepted as units or integer milliseconds from every layer', (t) => {
    const path = yamlFile(t, 'connectTimeout: 1500\nhealthInterval: "250"\nshutdown:\n  closeTimeout: 1.5s\n');
    const { config } = loadConfig({
      argv: { config: path, 'command-timeout': '1m', 'metrics-linger': '900' },
      env: { PIKA_SIDECAR_DRAIN_TIMEOUT: '2500', PIKA_SIDECAR_ANNOUNCE_DELAY: '500ms' },
    });
    assert.equal(config.connectTimeoutMs, 1500);
    assert.equal(config.healthIntervalMs, 250);
    assert.equal(config.shutdown.closeTimeoutMs, 1500);
    assert.equal(config.commandTimeoutMs, 60_000);
    assert.equal(config.shutdown.metricsLingerMs, 900);
    assert.equal(config.shutdown.drainTimeoutMs, 2500);
    assert.equal(config.shutdown.announceDelayMs, 500);
  });

  test('an empty environment variable counts as unset', () => {
    const { config, sources } = loadConfig({ argv: {}, env: { PIKA_SIDECAR_POOL_SIZE: '', PIKA_SIDECAR_BACKEND_PASSWORD: '' } });
    assert.equal(config.poolSize, 8);
    assert.equal(config.backendPassword, undefined);
    assert.equal(sources['poolSize'], 'default');
  });

  test('environment variables outside the key table are ignored (Kubernetes injects service links)', () => {
    const { config } = loadConfig({
      argv: {},
      env: { PIKA_SIDECAR_PORT: 'tcp://10.96.0.12:6380', PIKA_SIDECAR_SERVICE_HOST: '10.96.0.12', PIKA_SIDECAR_LISTN: 'x' },
    });
    assert.deepEqual(config, DEFAULT_CONFIG);
  });

  test('sizes, lists, booleans and maps are read from every layer', (t) => {
    const path = yamlFile(
      t,
      [
        'maxBulkBytes: 64mb',
        'deniedCommands: [SHUTDOWN, flushall, flushall]',
        'replication:',
        '  pauseWrites: no',
        '  addressOverrides: {"10.0.0.2:9221": "127.0.0.1:19221"}',
      ].join('\n'),
    );
    const fromFile = loadConfig({ argv: { config: path }, env: {} }).config;
    assert.equal(fromFile.maxBulkBytes, 64 * 1024 ** 2);
    assert.deepEqual(fromFile.deniedCommands, ['shutdown', 'flushall']);
    assert.equal(fromFile.replication.pauseWrites, false);
    assert.deepEqual(fromFile.replication.addressOverrides, { '10.0.0.2:9221': '127.0.0.1:19221' });

    const fromEnv = loadConfig({
      argv: {},
      env: {
        PIKA_SIDECAR_MAX_INLINE_BYTES: '4096',
        PIKA_SIDECAR_DENIED_COMMANDS: 'shutdown, debug ,config',
        PIKA_SIDECAR_REPLICATION_PAUSE_WRITES: 'false',
        PIKA_SIDECAR_REPLICATION_ADDRESS_OVERRIDES: '10.0.0.2:9221=127.0.0.1:19221,10.0.0.3:9221=[::1]:19222',
      },
    }).config;
    assert.equal(fromEnv.maxInlineBytes, 4096);
    assert.deepEqual(fromEnv.deniedCommands, ['shutdown', 'debug', 'config']);
    assert.equal(fromEnv.replication.pauseWrites, false);
    assert.deepEqual(fromEnv.replication.addressOverrides, {
      '10.0.0.2:9221': '127.0.0.1:19221',
      '10.0.0.3:9221': '[::1]:19222',
    });

    const fromFlags = loadConfig({
      argv: {
        'denied-commands': ['flushall', 'keys,debug'],
        'replication-pause-writes': false,
        'replication-address-overrides': ['10.0.0.2:9221=127.0.0.1:19221'],
      },
      env: { PIKA_SIDECAR_REPLICATION_PAUSE_WRITES: 'true' },
    }).config;
    assert.deepEqual(fromFlags.deniedCommands, ['flushall', 'keys', 'debug']);
    assert.equal(fromFlags.replication.pauseWrites, false);
    assert.deepEqual(fromFlags.replication.addressOverrides, { '10.0.0.2:9221': '127.0.0.1:19221' });
  });

  test('an empty list of denied commands is allowed in the file', (t) => {
    const path = yamlFile(t, 'deniedCommands: []\n');
    assert.deepEqual(loadConfig({ argv: { config: path }, env: {} }).config.deniedCommands, []);
  });

  test('null on an optional key in the file means unset; an empty file or section means defaults', (t) => {
    const path = yamlFile(t, 'backendUser: null\nreplication:\nshutdown:\n  triggerDir: ~\n');
    const { config, sources } = loadConfig({ argv: { config: path }, env: {} });
    assert.deepEqual(config, DEFAULT_CONFIG);
    assert.equal(sources['shutdown.triggerDir'], 'default');
    const empty = yamlFile(t, '# nothing here\n');
    assert.deepEqual(loadConfig({ argv: { config: empty }, env: {} }).config, DEFAULT_CONFIG);
  });
});

describe('secrets', () => {
  test('a secret file is read and its trailing newline dropped', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'password'), 's3cret pass\n');
    writeFileSync(join(dir, 'token'), 'tok\r\n');
    const { config, sources } = loadConfig({
      argv: { 'admin-token-file': join(dir, 'token') },
      env: { PIKA_SIDECAR_BACKEND_PASSWORD_FILE: join(dir, 'password') },
    });
    assert.equal(config.backendPassword, 's3cret pass');
    assert.equal(config.adminToken, 'tok');
    assert.equal(sources['backendPassword'], 'env');
    assert.equal(sources['adminToken'], 'flag');
  });

  test('a higher layer wins over a secret file in a lower one', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'password'), 'from-file\n');
    const path = yamlFile(t, `backendPasswordFile: ${join(dir, 'password')}\n`);
    const { config } = loadConfig({ argv: { config: path }, env: { PIKA_SIDECAR_BACKEND_PASSWORD: 'from-env' } });
    assert.equal(config.backendPassword, 'from-env');
  });

  test('a secret and its file set in the same layer are refused without showing the secret', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'password'), 'from-file\n');
    const message = configErrorOf({
      argv: {},
      env: { PIKA_SIDECAR_BACKEND_PASSWORD: 'hunter2-in-env', PIKA_SIDECAR_BACKEND_PASSWORD_FILE: join(dir, 'password') },
    });
    assert.match(message, /backendPassword and backendPasswordFile are both set/);
    assert.match(message, /PIKA_SIDECAR_BACKEND_PASSWORD, PIKA_SIDECAR_BACKEND_PASSWORD_FILE/);
    assert.ok(!message.includes('hunter2-in-env') && !message.includes('from-file'));
  });

  test('an unreadable or empty secret file is an error naming the path, never the content', (t) => {
    const dir = tempDir(t);
    const missing = join(dir, 'missing');
    assert.match(
      configErrorOf({ argv: {}, env: { PIKA_SIDECAR_ADMIN_TOKEN_FILE: missing } }),
      new RegExp(`adminTokenFile = "${missing}" \\(from PIKA_SIDECAR_ADMIN_TOKEN_FILE\\): expected .*ENOENT`),
    );
    writeFileSync(join(dir, 'empty'), '\n');
    assert.match(configErrorOf({ argv: {}, env: { PIKA_SIDECAR_ADMIN_TOKEN_FILE: join(dir, 'empty') } }), /the file is empty/);
  });

  test('secrets never appear in any error message', (t) => {
    const secret = 'hunter2-very-secret';
    const path = yamlFile(t, `backendPassword: "${secret}"\nadminToken: 12345\npoolSize: lots\n`);
    const message = configErrorOf({ argv: { config: path, 'backend-password': secret }, env: { PIKA_SIDECAR_ADMIN_TOKEN: secret } });
    assert.match(message, /poolSize = "lots"/);
    assert.ok(!message.includes(secret), message);
    // A secret of the wrong type is refused, still without its value.
    const typed = configErrorOf({ argv: { config: yamlFile(t, 'adminToken: 987654321\n') }, env: {} });
    assert.match(typed, /adminToken = \[redacted\] \(from .*\): expected a non-empty string/);
    assert.ok(!typed.includes('987654321'));
  });
});

describe('validation messages', () => {
  test('a bad value names the key, the value, where it came from and what is allowed', () => {
    assert.equal(
      configErrorOf({ argv: {}, env: { PIKA_SIDECAR_DRAIN_TIMEOUT: '10 seconds' } }),
      'invalid config: shutdown.drainTimeout = "10 seconds" (from PIKA_SIDECAR_DRAIN_TIMEOUT): ' +
        'expected a duration like 500ms, 2s, 1m or integer milliseconds',
    );
    assert.equal(
      configErrorOf({ argv: { 'pool-size': '2000' }, env: {} }),
      'invalid config: poolSize = "2000" (from --pool-size): expected an integer from 0 to 1024',
    );
  });

  // One invalid value per key, written in the file; every key must have one here.
  const BAD_VALUES: Record<string, unknown> = {
    listen: '127.0.0.1:70000',
    backend: '127.0.0.1:0',
    admin: '::1:9121',
    backendKind: 'memcached',
    backendUser: '',
    backendPassword: 42,
    backendPasswordFile: '',
    adminToken: ['a'],
    adminTokenFile: 7,
    poolSize: 1025,
    maxClients: 0,
    protectedMode: 'perhaps',
    connectTimeout: '0',
    healthInterval: '1 second',
    commandTimeout: -1,
    maxBulkBytes: '1k',
    maxInlineBytes: '32mb',
    deniedCommands: ['flush all'],
    logLevel: 'verbose',
    'replication.pollInterval': '5 s',
    'replication.shutdownPollMin': '0ms',
    'replication.shutdownPollMax': true,
    'replication.settle': '1.5',
    'replication.pauseWrites': 'maybe',
    'shutdown.holdUntilSignal': 'sometimes',
    'replication.addressOverrides': { '10.0.0.2:9221': 'nowhere' },
    'replication.frontPikaPorts': 'perhaps',
    'shutdown.announceDelay': '5sec',
    'shutdown.drainTimeout': '10 seconds',
    'shutdown.closeTimeout': '3S',
    'shutdown.replicationTimeout': '25d',
    'shutdown.releaseTimeout': '-3s',
    'shutdown.deadline': 0,
    'shutdown.metricsLinger': [],
    'shutdown.closeSpread': {},
    'shutdown.triggerDir': 5,
    'shutdown.pushgatewayUrl': 'ftp://push',
  };

  test('every key refuses a bad value with key, value, file and allowed values in the message', (t) => {
    assert.deepEqual(Object.keys(BAD_VALUES).sort(), CONFIG_KEYS.map((k) => k.path).sort());
    for (const k of CONFIG_KEYS) {
      const raw = BAD_VALUES[k.path];
      const [section, leaf] = k.path.includes('.') ? k.path.split('.') : [undefined, k.path];
      const line = `${leaf}: ${JSON.stringify(raw)}`;
      const path = yamlFile(t, section === undefined ? `${line}\n` : `${section}:\n  ${line}\n`);
      const message = configErrorOf({ argv: { config: path }, env: {} });
      const shown = k.parser.secret ? '[redacted]' : JSON.stringify(raw);
      assert.ok(message.startsWith(`invalid config: ${k.path} = ${shown} (from ${path}): expected `), message);
      assert.ok(message.includes(k.parser.expected), message);
      assert.equal(message.split('\n').length, 1, message);
    }
  });

  test('null on a key that must have a value is refused', (t) => {
    const path = yamlFile(t, 'poolSize: null\n');
    assert.match(configErrorOf({ argv: { config: path }, env: {} }), /poolSize = null \(from .*\): expected an integer from 0 to 1024/);
  });

  test('all problems are reported at once, one line each', () => {
    const message = configErrorOf({
      argv: { 'log-level': 'loud' },
      env: { PIKA_SIDECAR_POOL_SIZE: '-1', PIKA_SIDECAR_BACKEND_KIND: 'mongo' },
    });
    const lines = message.split('\n');
    assert.equal(lines.length, 3, message);
    assert.ok(lines.every((l) => l.startsWith('invalid config: ')));
    assert.match(message, /backendKind = "mongo" \(from PIKA_SIDECAR_BACKEND_KIND\): expected one of auto, redis, pika/);
    assert.match(message, /logLevel = "loud" \(from --log-level\): expected one of fatal, error, warn, info, debug, trace, silent/);
  });

  test('denied commands must be command names; they are stored lowercase', () => {
    assert.match(configErrorOf({ argv: {}, env: { PIKA_SIDECAR_DENIED_COMMANDS: 'shutdown,rm -rf' } }), /"rm -rf" is not a command name/);
    assert.deepEqual(loadConfig({ argv: {}, env: { PIKA_SIDECAR_DENIED_COMMANDS: 'FLUSHALL' } }).config.deniedCommands, ['flushall']);
  });

  test('port 0 is allowed for listen and admin (any free port) but not for the backend', () => {
    const { config } = loadConfig({ argv: { listen: '127.0.0.1:0', admin: ':0' }, env: {} });
    assert.equal(config.listen.port, 0);
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 0 });
    assert.match(configErrorOf({ argv: { backend: ':0' }, env: {} }), /backend = ":0" \(from --backend\): expected .*port 1-65535/);
  });

  test(':port listens on every interface for listen', () => {
    assert.deepEqual(loadConfig({ argv: {}, env: { PIKA_SIDECAR_LISTEN: ':7000' } }).config.listen, { host: '0.0.0.0', port: 7000 });
  });
});

describe('the YAML file', () => {
  test('an unknown key is refused, with the nearest known key suggested', (t) => {
    const path = yamlFile(t, 'poolSize: 4\nshutdown:\n  drainTimeot: 5s\n');
    assert.equal(
      configErrorOf({ argv: { config: path }, env: {} }),
      `invalid config: unknown key shutdown.drainTimeot (from ${path}): expected one of the keys documented in ` +
        'config/pika-sidecar.yaml; did you mean shutdown.drainTimeout?',
    );
  });

  test('field names with the Ms suffix and keys in the wrong section are refused with a hint', (t) => {
    const path = yamlFile(t, 'drainTimeout: 5s\nshutdown:\n  deadlineMs: 50000\nbogus: 1\n');
    const message = configErrorOf({ argv: { config: path }, env: {} });
    assert.match(message, /unknown key drainTimeout .*did you mean shutdown\.drainTimeout\?/);
    assert.match(message, /unknown key shutdown\.deadlineMs .*did you mean shutdown\.deadline\?/);
    assert.match(message, /unknown key bogus \(from/);
    assert.ok(!/unknown key bogus.*did you mean/.test(message));
  });

  test('dotted keys, non-mapping sections and a non-mapping document are refused', (t) => {
    assert.match(
      configErrorOf({ argv: { config: yamlFile(t, 'shutdown.deadline: 50s\n') }, env: {} }),
      /key "shutdown.deadline" .*expected sections as nested mappings/,
    );
    assert.match(
      configErrorOf({ argv: { config: yamlFile(t, 'shutdown: 50s\n') }, env: {} }),
      /shutdown = "50s" .*expected a mapping of shutdown keys/,
    );
    assert.match(configErrorOf({ argv: { config: yamlFile(t, '- listen\n') }, env: {} }), /expected a YAML mapping of keys/);
  });

  test('invalid YAML, duplicate keys and a missing file are refused naming the file', (t) => {
    const broken = yamlFile(t, 'listen: [127.0.0.1\n');
    assert.match(configErrorOf({ argv: { config: broken }, env: {} }), new RegExp(`config file "${broken}": expected valid YAML`));
    const dup = yamlFile(t, 'poolSize: 1\npoolSize: 2\n');
    assert.match(configErrorOf({ argv: { config: dup }, env: {} }), /expected valid YAML \(Map keys must be unique/);
    assert.match(
      configErrorOf({ argv: {}, env: { PIKA_SIDECAR_CONFIG: '/nonexistent/pika.yaml' } }),
      /config file "\/nonexistent\/pika.yaml" \(from PIKA_SIDECAR_CONFIG\): expected a readable YAML file \(ENOENT\)/,
    );
  });
});

describe('checks across keys', () => {
  test('the phase budgets must fit in the deadline; the message names each budget and its value', () => {
    // Defaults: (5s + 1s) + 10s + 3s + 20s + 3s = 42s.
    assert.equal(loadConfig({ argv: { 'shutdown-deadline': '42s' }, env: {} }).config.shutdown.deadlineMs, 42_000);
    const message = configErrorOf({ argv: { 'shutdown-deadline': '41s' }, env: { PIKA_SIDECAR_DRAIN_TIMEOUT: '10s' } });
    assert.equal(message.split('\n').length, 1);
    for (const part of [
      'shutdown.deadline = 41s (from --shutdown-deadline)',
      'intercept 6s',
      'shutdown.announceDelay = 5s (default)',
      'shutdown.drainTimeout = 10s (from PIKA_SIDECAR_DRAIN_TIMEOUT)',
      'shutdown.closeTimeout = 3s (default)',
      'shutdown.replicationTimeout = 20s (default)',
      'shutdown.releaseTimeout = 3s (default)',
      '= 42s',
    ]) {
      assert.ok(message.includes(part), `missing "${part}" in: ${message}`);
    }
  });

  test('a longer announce delay counts against the deadline through the intercept budget', () => {
    assert.match(configErrorOf({ argv: { 'announce-delay': '9s' }, env: {} }), /intercept 10s .* = 46s/);
  });

  test('linger, spread and poll bounds must fit inside their phases', () => {
    assert.match(
      configErrorOf({ argv: { 'metrics-linger': '4s' }, env: {} }),
      /shutdown\.metricsLinger = 4s \(from --metrics-linger\): expected at most shutdown\.releaseTimeout = 3s \(default\)/,
    );
    // A linger equal to the release budget would leave nothing for closing the admin server and the push.
    assert.match(
      configErrorOf({ argv: { 'metrics-linger': '3s' }, env: {} }),
      /shutdown\.metricsLinger = 3s \(from --metrics-linger\): expected at most shutdown\.releaseTimeout = 3s \(default\) - 1s, .*lower shutdown\.metricsLinger or raise shutdown\.releaseTimeout/,
    );
    assert.equal(loadConfig({ argv: { 'metrics-linger': '2s' }, env: {} }).config.shutdown.metricsLingerMs, 2000);
    assert.equal(loadConfig({ argv: { 'metrics-linger': '3s', 'release-timeout': '4s' }, env: {} }).config.shutdown.metricsLingerMs, 3000);
    assert.equal(
      loadConfig({ argv: { 'metrics-linger': '0', 'release-timeout': '500ms' }, env: {} }).config.shutdown.releaseTimeoutMs,
      500,
    );
    assert.match(
      configErrorOf({ argv: { 'close-spread': '5s' }, env: {} }),
      /shutdown\.closeSpread = 5s .*at most shutdown\.closeTimeout = 3s/,
    );
    assert.match(
      configErrorOf({ argv: { 'replication-shutdown-poll-min': '1s' }, env: {} }),
      /replication\.shutdownPollMin = 1s .*at most replication\.shutdownPollMax = 500ms/,
    );
  });

  test('listen, admin and backend must be different addresses, port 0 excepted', () => {
    assert.match(
      configErrorOf({ argv: { listen: ':9121' }, env: {} }),
      /listen = 0\.0\.0\.0:9121 \(from --listen\): expected an address different from admin = 127\.0\.0\.1:9121 \(default\)/,
    );
    assert.match(configErrorOf({ argv: { backend: '127.0.0.1:6380' }, env: {} }), /listen = .* different from backend = 127\.0\.0\.1:6380/);
    assert.doesNotThrow(() => loadConfig({ argv: { listen: '127.0.0.1:0', admin: '127.0.0.1:0' }, env: {} }));
    assert.doesNotThrow(() => loadConfig({ argv: { listen: '127.0.0.2:9121' }, env: {} }));
  });
});

describe('credentials in URLs', () => {
  test('maskUrlPassword hides only the password of a URL', () => {
    assert.equal(maskUrlPassword('http://pusher:s3cr3t@gw:9091/path'), 'http://pusher:[redacted]@gw:9091/path');
    assert.equal(maskUrlPassword('https://gw.example:9091'), 'https://gw.example:9091');
    assert.equal(maskUrlPassword('"ftp://u:p@h"'), '"ftp://u:[redacted]@h"');
    assert.equal(maskUrlPassword('10.0.0.1:9221'), '10.0.0.1:9221');
  });

  test("the pushgateway URL's password appears neither in check-config output nor in an error message", () => {
    const { config, sources } = loadConfig({ argv: { 'pushgateway-url': 'http://pusher:s3cr3t-pw@127.0.0.1:9091' }, env: {} });
    assert.equal(config.shutdown.pushgatewayUrl, 'http://pusher:s3cr3t-pw@127.0.0.1:9091', 'the sidecar itself uses the full URL');
    const shown = renderEffectiveYaml(config, sources, undefined);
    assert.match(shown, /pushgatewayUrl: http:\/\/pusher:\[redacted\]@127\.0\.0\.1:9091/);
    assert.ok(!shown.includes('s3cr3t-pw'));
    assert.throws(
      () => loadConfig({ argv: { 'pushgateway-url': 'ftp://pusher:s3cr3t-pw@h' }, env: {} }),
      (err: Error) => /pushgatewayUrl = "ftp:\/\/pusher:\[redacted\]@h"/.test(err.message) && !err.message.includes('s3cr3t-pw'),
    );
  });
});
