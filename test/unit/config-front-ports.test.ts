/**
 * replication.frontPikaPorts at start-up: the loader refuses what cannot work (a Redis backend,
 * shifted ports past 65535, ports that collide once shifted) with one message naming the key, and
 * the real CLI exits 1 on it.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadConfig } from '../../src/config/load.js';
import { CLI } from '../../harness/sidecar-process.js';
import { configErrorOf } from '../support/config-error.js';

const on = { 'replication-front-pika-ports': true };

describe('replication.frontPikaPorts validation', () => {
  test('is off by default, and is read from its flag, its environment variable and the file', () => {
    assert.equal(loadConfig({ argv: {}, env: {} }).config.replication.frontPikaPorts, false);
    const argv = { ...on, listen: '0.0.0.0:9221', backend: '127.0.0.1:9321' };
    assert.equal(loadConfig({ argv, env: {} }).config.replication.frontPikaPorts, true);
    const env = {
      PIKA_SIDECAR_REPLICATION_FRONT_PIKA_PORTS: 'true',
      PIKA_SIDECAR_LISTEN: '0.0.0.0:9221',
      PIKA_SIDECAR_BACKEND: '127.0.0.1:9321',
    };
    const loaded = loadConfig({ argv: {}, env });
    assert.equal(loaded.config.replication.frontPikaPorts, true);
    assert.equal(loaded.sources['replication.frontPikaPorts'], 'env');
  });

  test('the shipped fronted layout (sidecar on 9221, Pika on 9321) is valid', () => {
    const { config } = loadConfig({ argv: { ...on, listen: '0.0.0.0:9221', backend: '127.0.0.1:9321', 'backend-kind': 'pika' }, env: {} });
    assert.equal(config.listen.port, 9221);
  });

  test('with backendKind redis it is refused, naming both keys', () => {
    const msg = configErrorOf({ argv: { ...on, listen: '0.0.0.0:9221', backend: '127.0.0.1:9321', 'backend-kind': 'redis' }, env: {} });
    assert.match(
      msg,
      /^invalid config: replication\.frontPikaPorts = true \(from --replication-front-pika-ports\): expected backendKind auto or pika, not backendKind = "redis" \(from --backend-kind\)/,
    );
    assert.equal(msg.split('\n').length, 1, 'one message');
  });

  test('a listen or backend port whose +10001 is past 65535 is refused, saying the largest port allowed', () => {
    const listen = configErrorOf({ argv: { ...on, listen: '0.0.0.0:60000', backend: '127.0.0.1:9321' }, env: {} });
    assert.match(
      listen,
      /listen = 0\.0\.0\.0:60000 \(from --listen\) \+10001 = 70001 is above 65535; expected a listen port of at most 55534/,
    );
    const backend = configErrorOf({ argv: { ...on, listen: '0.0.0.0:9221', backend: '127.0.0.1:55535' }, env: {} });
    assert.match(backend, /backend = 127\.0\.0\.1:55535 \(from --backend\) \+10001 = 65536 is above 65535/);
  });

  test('listen port 0 is refused: the replication ports are derived from a fixed one', () => {
    assert.match(
      configErrorOf({ argv: { ...on, listen: '127.0.0.1:0', backend: '127.0.0.1:9321' }, env: {} }),
      /expected a fixed listen port, not listen = 127\.0\.0\.1:0/,
    );
  });

  test('shifted ports colliding on the same host are refused: listen and backend shifted alike, and a client port equal to a shifted one', () => {
    // The sidecar's default-style layout with Pika on the same port family: 9221 vs 9221 is caught
    // already; here listen 7221's +2000 is the backend's own 9221.
    const clientVsShifted = configErrorOf({ argv: { ...on, listen: '0.0.0.0:7221', backend: '127.0.0.1:9221' }, env: {} });
    assert.match(
      clientVsShifted,
      /listen = 0\.0\.0\.0:7221 \(from --listen\) \+2000 \(binlog\) is the same port as backend = 127\.0\.0\.1:9221 \(from --backend\); expected distinct ports/,
    );
    const backendShifted = configErrorOf({ argv: { ...on, listen: '0.0.0.0:9221', backend: '127.0.0.1:7221' }, env: {} });
    assert.match(
      backendShifted,
      /listen = 0\.0\.0\.0:9221 \(from --listen\) is the same port as backend = 127\.0\.0\.1:7221 \(from --backend\) \+2000 \(binlog\)/,
    );
    const adminShifted = configErrorOf({
      argv: { ...on, listen: '0.0.0.0:9221', backend: '127.0.0.1:9321', admin: '127.0.0.1:11221' },
      env: {},
    });
    assert.match(adminShifted, /\+2000 \(binlog\) is the same port as admin = 127\.0\.0\.1:11221/);
    // Different hosts do not collide (neither is a wildcard).
    loadConfig({ argv: { ...on, listen: '127.0.0.2:7221', backend: '127.0.0.1:9221' }, env: {} });
  });

  test('the CLI exits 1 with the message on stderr', () => {
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        'run',
        '--replication-front-pika-ports',
        '--backend-kind',
        'redis',
        '--listen',
        '127.0.0.1:9221',
        '--backend',
        '127.0.0.1:9321',
      ],
      {
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    assert.equal(r.status, 1, `exit code 1 (stderr: ${r.stderr})`);
    assert.match(
      r.stderr + r.stdout,
      /replication\.frontPikaPorts = true \(from --replication-front-pika-ports\): expected backendKind auto or pika/,
    );
  });
});
