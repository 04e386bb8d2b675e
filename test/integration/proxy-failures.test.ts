/**
 * Failures and bad input: each one is contained to its own connection, nothing leaks, and the
 * process keeps serving everyone else.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisServer } from '../../harness/redis-server.js';
import { redisWithSidecar, startSidecar } from '../support/sidecar.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { freePort } from '../../harness/ports.js';
import { waitFor } from '../../harness/wait.js';
import { deferrer } from '../support/defer.js';

async function metric(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || (l.startsWith(name + '{') && l.includes(name)));
  if (line === undefined) throw new Error(`metric ${name} not found`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function backendClientCount(redis: RedisServer): Promise<number> {
  const list = await redis.raw('CLIENT LIST');
  return list.split('\n').filter((l) => l.includes('id=')).length;
}

describe('failures and bad input', () => {
  test('a client that leaves mid-pipeline has its backend connection destroyed; nothing leaks', async (t) => {
    const defer = deferrer(t);
    const { redis, sc } = await redisWithSidecar(defer, { sidecar: { poolSize: 1 } });
    const baseline = await waitFor(async () => {
      const n = await backendClientCount(redis);
      return n >= 2 ? n : false; // control connection + one warm pool connection (+ this probe)
    });
    for (let round = 0; round < 5; round++) {
      const c = await RawClient.connect(sc.listen.port);
      const parts: Buffer[] = [];
      for (let i = 0; i < 2000; i++) parts.push(resp('SET', `leave:${i}`, 'x'.repeat(100)));
      const all = Buffer.concat(parts);
      c.write(all.subarray(0, Math.floor(all.length / 2) + 7)); // stops mid-command
      await waitFor(() => sc.registry.size === 1, { what: 'the session' });
      c.close();
      await waitFor(() => sc.registry.size === 0, { what: 'the session to close' });
    }
    await waitFor(async () => (await backendClientCount(redis)) === baseline, {
      what: 'backend connections back to baseline',
      timeoutMs: 5000,
    });
    assert.equal(sc.registry.inflight(), 0);
    assert.ok((await metric(sc.admin.port, 'pika_sidecar_client_connections_closed_total{reason="client_quit"}')) >= 5);
  });

  test('when the backend goes away, its clients are closed and counted', async (t) => {
    const defer = deferrer(t);
    const { redis, sc } = await redisWithSidecar(defer);
    const c = await RawClient.connect(sc.listen.port);
    c.write(resp('PING'));
    await c.untilEndsWith('+PONG\r\n');
    await redis.kill();
    await c.waitClosed();
    await waitFor(
      async () => (await metric(sc.admin.port, 'pika_sidecar_client_connections_closed_total{reason="backend_closed"}')) === 1,
      { what: 'the close to be counted' },
    );
    await waitFor(async () => (await fetch(`http://127.0.0.1:${sc.admin.port}/readyz`)).status === 503, { what: '/readyz 503' });
    assert.equal(await metric(sc.admin.port, 'pika_sidecar_backend_up'), 0);
  });

  test('an unreachable backend gets the client one -ERR naming it, and /readyz answers 503', async (t) => {
    const defer = deferrer(t);
    const deadPort = await freePort();
    const sc = await startSidecar(deadPort, { connectTimeoutMs: 300 });
    defer(() => sc.shutdown());
    const c = await RawClient.connect(sc.listen.port);
    c.write(resp('PING'));
    await c.waitClosed(5000);
    const text = c.received.toString();
    assert.match(text, new RegExp(`^-ERR backend 127\\.0\\.0\\.1:${deadPort} is unreachable[^\\r\\n]*\\r\\n$`));
    const ready = await fetch(`http://127.0.0.1:${sc.admin.port}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /down/);
    assert.equal(await metric(sc.admin.port, 'pika_sidecar_client_connections_closed_total{reason="backend_unreachable"}'), 1);
  });

  test('denied commands get a clear -ERR in pipeline order and are counted; the backend never sees them', async (t) => {
    const defer = deferrer(t);
    const { redis, sc } = await redisWithSidecar(defer, { sidecar: { deniedCommands: ['shutdown', 'flushall'] } });
    const c = await RawClient.connect(sc.listen.port);
    defer(() => c.close());
    c.write(Buffer.concat([resp('SET', 'keep', '1'), resp('shutdown', 'NOSAVE'), resp('FLUSHALL'), resp('GET', 'keep')]));
    const out = (await c.untilEndsWith('$1\r\n1\r\n')).toString();
    assert.match(
      out,
      /^\+OK\r\n-ERR command 'shutdown' is denied by pika-sidecar[^\r]*\r\n-ERR command 'flushall' is denied[^\r]*\r\n\$1\r\n1\r\n$/,
    );
    assert.ok(await redis.ping(), 'the backend is still running');
    assert.equal(await metric(sc.admin.port, 'pika_sidecar_denied_commands_total'), 2);
  });

  test('a command before a denied one and a malformed frame in the same write runs exactly once', async (t) => {
    const defer = deferrer(t);
    const { redis, sc } = await redisWithSidecar(defer);
    const c = await RawClient.connect(sc.listen.port);
    defer(() => c.close());
    c.write(Buffer.concat([resp('INCR', 'once'), resp('SHUTDOWN'), Buffer.from('*1\r\n%3\r\n')]));
    await c.waitClosed();
    assert.match(
      c.received.toString(),
      /^:1\r\n-ERR command 'shutdown' is denied[^\r]*\r\n-ERR Protocol error: expected '\$', got '%'\r\n$/,
    );
    assert.equal(await redis.raw('GET once'), '$1\r\n1\r\n');
  });

  const malformed: Array<[string, string, RegExp]> = [
    ['an unknown type byte in an array element', '*1\r\n%3\r\nfoo\r\n', /^-ERR Protocol error: expected '\$', got '%'\r\n$/],
    ['a negative bulk length', '*1\r\n$-5\r\n', /^-ERR Protocol error: invalid bulk length\r\n$/],
    ['an oversized bulk length', '*1\r\n$999999999999\r\n', /^-ERR Protocol error: invalid bulk length\r\n$/],
    ['a non-numeric multibulk length', '*x\r\n', /^-ERR Protocol error: invalid multibulk length\r\n$/],
  ];
  for (const [what, bytes, expected] of malformed) {
    test(`${what} gets one protocol error line and only that connection closes`, async (t) => {
      const defer = deferrer(t);
      const { sc } = await redisWithSidecar(defer, { sidecar: { maxBulkBytes: 1024 * 1024 } });
      const bystander = new Redis({ port: sc.listen.port, host: '127.0.0.1' });
      bystander.on('error', () => undefined);
      defer(() => bystander.disconnect());
      await bystander.set('b', '1');
      const c = await RawClient.connect(sc.listen.port);
      c.write(Buffer.concat([resp('SET', 'before', 'ok'), Buffer.from(bytes)]));
      await c.waitClosed();
      const out = c.received.toString();
      assert.ok(out.startsWith('+OK\r\n'), 'the command before the bad frame was answered first');
      assert.match(out.slice(5), expected);
      assert.equal(await bystander.get('b'), '1', 'other sessions keep working');
      assert.equal(await metric(sc.admin.port, 'pika_sidecar_protocol_errors_total'), 1);
    });
  }

  test('AUTH works against a password-protected backend and its arguments never reach a log line', async (t) => {
    const defer = deferrer(t);
    const secret = 's3cret-PASSWORD-xyz';
    const { sc } = await redisWithSidecar(defer, { redis: { password: secret }, sidecar: { backendPassword: secret, logLevel: 'trace' } });
    const c = await RawClient.connect(sc.listen.port);
    defer(() => c.close());
    c.write(resp('GET', 'k'));
    await c.until((b) => b.toString().startsWith('-NOAUTH'));
    c.take();
    c.write(
      Buffer.concat([
        resp('AUTH', 'wrong-password-abc'),
        resp('AUTH', secret),
        resp('HELLO', '3', 'AUTH', 'default', secret),
        resp('PING'),
      ]),
    );
    const out = (await c.untilEndsWith('+PONG\r\n')).toString();
    assert.match(out, /^-WRONGPASS/);
    assert.match(out, /\+OK\r\n%7/);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${sc.admin.port}/readyz`)).status === 200, {
      what: 'ready with the control password',
    });
    const all = sc.rawLogs.join('\n');
    assert.ok(sc.rawLogs.length > 5);
    assert.ok(!all.includes(secret), 'the password never appears in logs');
    assert.ok(!all.includes('wrong-password-abc'), 'a wrong password never appears in logs');
    const status = await (await fetch(`http://127.0.0.1:${sc.admin.port}/status`)).text();
    assert.ok(!status.includes(secret));
  });
});
