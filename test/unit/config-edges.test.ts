import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadConfig, envWarnings } from '../../src/config/load.js';
import { joinDashValues } from '../../src/config/argv.js';
import { clientLimit, openFileLimit, RESERVED_FDS } from '../../src/proxy/client-limit.js';
import { configErrorOf } from '../support/config-error.js';
import { CLI } from '../../harness/sidecar-process.js';

test('a dash-led value after a config flag is joined to it, so its key is named instead of yargs reading short flags', () => {
  assert.deepEqual(joinDashValues(['run', '--announce-delay', '-1s']), ['run', '--announce-delay=-1s']);
  assert.deepEqual(joinDashValues(['--pool-size', '-3', '--log-level', 'info']), ['--pool-size=-3', '--log-level', 'info']);
  // A following flag is a flag, not a value; booleans take no value.
  assert.deepEqual(joinDashValues(['--announce-delay', '--drain-timeout', '5s']), ['--announce-delay', '--drain-timeout', '5s']);
  assert.deepEqual(joinDashValues(['--protected-mode', '-h']), ['--protected-mode', '-h']);
  assert.deepEqual(joinDashValues(['--timeout', '-1s']), ['--timeout', '-1s']); // not a config flag
});

test('--announce-delay -1s through the CLI names the key and exits 1', () => {
  const r = spawnSync(process.execPath, [CLI, 'check-config', '--announce-delay', '-1s'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '' },
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^invalid config: shutdown\.announceDelay = "-1s" \(from --announce-delay\): expected a duration/m);
  assert.doesNotMatch(r.stderr, /Unknown arguments/);
});

test('values with leading or trailing whitespace are refused, naming the key, from every layer', () => {
  assert.match(
    configErrorOf({ argv: { 'pool-size': ' 8' }, env: {} }),
    /^invalid config: poolSize = " 8" \(from --pool-size\): expected an integer .*\(no leading or trailing whitespace\)$/,
  );
  assert.match(
    configErrorOf({ argv: {}, env: { PIKA_SIDECAR_ANNOUNCE_DELAY: ' 1s' } }),
    /^invalid config: shutdown\.announceDelay = " 1s" \(from PIKA_SIDECAR_ANNOUNCE_DELAY\).*whitespace/,
  );
  assert.match(configErrorOf({ argv: {}, env: { PIKA_SIDECAR_DRAIN_TIMEOUT: '1s\n' } }), /shutdown\.drainTimeout = "1s\\n".*whitespace/);
  // A secret is taken as it is: a password may end in a space.
  assert.equal(loadConfig({ argv: {}, env: { PIKA_SIDECAR_BACKEND_PASSWORD: 'pw ' } }).config.backendPassword, 'pw ');
  // Without the whitespace the same values load.
  assert.equal(loadConfig({ argv: { 'pool-size': '8' }, env: {} }).config.poolSize, 8);
});

test('a misspelt PIKA_SIDECAR_ variable warns with the nearest one; Kubernetes service variables and unrelated names do not', () => {
  assert.deepEqual(envWarnings({ PIKA_SIDECAR_POOLSIZE: '4' }), [
    'environment variable PIKA_SIDECAR_POOLSIZE is not a pika-sidecar setting and is ignored; did you mean PIKA_SIDECAR_POOL_SIZE?',
  ]);
  assert.match(envWarnings({ PIKA_SIDECAR_DRAIN_TIMOUT: '4s' })[0] ?? '', /did you mean PIKA_SIDECAR_DRAIN_TIMEOUT\?$/);
  assert.deepEqual(
    envWarnings({
      PIKA_SIDECAR_POOL_SIZE: '4',
      PIKA_SIDECAR_CONFIG: '/etc/x.yaml',
      PIKA_SIDECAR_SERVICE_HOST: '10.0.0.1',
      PIKA_SIDECAR_SERVICE_PORT: '6380',
      PIKA_SIDECAR_PORT: 'tcp://10.0.0.1:6380',
      PIKA_SIDECAR_PORT_6380_TCP_ADDR: '10.0.0.1',
      PIKA_SIDECAR_SOMETHING_ELSE_ENTIRELY: 'x',
      HOME: '/root',
    }),
    [],
  );
  assert.equal(loadConfig({ argv: {}, env: { PIKA_SIDECAR_POOLSIZE: '4' } }).warnings.length, 1);
});

test('the CLI prints the environment warning on stderr and still runs the command', () => {
  const r = spawnSync(process.execPath, [CLI, 'check-config'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', PIKA_SIDECAR_POOLSIZE: '4' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: environment variable PIKA_SIDECAR_POOLSIZE .* did you mean PIKA_SIDECAR_POOL_SIZE\?/);
  assert.match(r.stdout, /^poolSize: 8 +# default$/m);
});

test('the client limit is lowered to what the open-file limit leaves for two descriptors per client', () => {
  assert.deepEqual(clientLimit(10_000, { openFileLimit: undefined, inUse: 20, poolSize: 8 }), { limit: 10_000 });
  assert.deepEqual(clientLimit(100, { openFileLimit: 1_048_576, inUse: 20, poolSize: 8 }), { limit: 100 });
  const low = clientLimit(10_000, { openFileLimit: 600, inUse: 20, poolSize: 8 });
  assert.equal(low.limit, Math.floor((600 - 20 - 8 - RESERVED_FDS) / 2));
  assert.deepEqual(low.lowered, { configured: 10_000, openFileLimit: 600, inUse: 20 });
  assert.equal(clientLimit(10, { openFileLimit: 50, inUse: 40, poolSize: 8 }).limit, 1);
  assert.equal(
    openFileLimit(
      'Max cpu time              unlimited            unlimited            seconds\nMax open files            600                  4096                 files\n',
    ),
    600,
  );
  assert.equal(openFileLimit('Max open files            unlimited            unlimited            files\n'), undefined);
});
