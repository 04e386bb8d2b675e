/**
 * I1 (reply delivery) and I2 (no phantom execution) at the byte level, with an in-process sidecar
 * in front of a real redis-server: what a client receives around the drain, and what the backend
 * executed. Also: replication links outlive the drain, replication commands are refused from
 * intercept on, and a thousand idle sessions drain fast.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisServer, type RedisServerOptions } from '../../harness/redis-server.js';
import { redisWithSidecar, type DeepPartial, type TestSidecar } from '../support/sidecar.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { waitFor } from '../../harness/wait.js';
import { deferrer } from '../support/defer.js';
import { freePort } from '../../harness/ports.js';
import type { SidecarConfig } from '../../src/config/schema.js';
import type { Session } from '../../src/proxy/session.js';
import type { RequestScanner } from '../../src/resp/request-scanner.js';
import type { ShutdownState } from '../../src/observability/names.js';

interface Fixture {
  redis: RedisServer;
  sc: TestSidecar;
  direct: Redis;
  defer: (fn: () => unknown) => void;
}

/** A redis-server and a sidecar in front of it; cleanup stops the sidecar before the redis. */
async function setup(t: TestContext, opts: { redis?: RedisServerOptions; sidecar?: DeepPartial<SidecarConfig> } = {}): Promise<Fixture> {
  const defer = deferrer(t);
  const over = opts.sidecar ?? {};
  const { redis, sc } = await redisWithSidecar(defer, {
    ...(opts.redis ? { redis: opts.redis } : {}),
    sidecar: { ...over, shutdown: { announceDelayMs: 0, ...over.shutdown } },
  });
  const direct = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  direct.on('error', () => undefined);
  defer(() => direct.disconnect());
  return { redis, sc, direct, defer };
}

async function sessionOf(sc: TestSidecar, c: RawClient): Promise<Session> {
  return waitFor(() => sc.registry.all().find((s) => s.client.remotePort === c.socket.localPort), {
    intervalMs: 2,
    what: 'the session of the test client',
  });
}

function scanned(s: Session): number {
  return (s as unknown as { requests: RequestScanner }).requests.bytesScanned;
}

/** Backend clients (other than the one asking) holding part of a command: bytes read, not executed. */
async function backendPartialCommands(redis: RedisServer): Promise<number> {
  const list = await redis.raw('CLIENT LIST');
  return list.split('\n').filter((l) => !l.includes('cmd=client|list') && (/ qbuf=[1-9]/.test(l) || / argv-mem=[1-9]/.test(l))).length;
}

function phaseOutcomes(sc: TestSidecar): Record<string, string> {
  return Object.fromEntries(sc.coordinator.records.map((r) => [r.phase, r.outcome]));
}

describe('drain invariants at the byte level', () => {
  test('I2: a SET whose value is only half sent when the drain starts is dropped: the client is closed unanswered, the key never exists', async (t) => {
    const f = await setup(t);
    const c = await RawClient.connect(f.sc.listen.port);
    f.defer(() => c.close());
    const s = await sessionOf(f.sc, c);
    const head = Buffer.from('*3\r\n$3\r\nSET\r\n$7\r\ni2:half\r\n$10\r\nhello');
    c.write(head);
    await waitFor(() => scanned(s) === head.length, { what: 'the sidecar to read the partial SET' });
    // The name and key were forwarded: the backend holds a partial command.
    await waitFor(async () => (await backendPartialCommands(f.redis)) === 1, { what: 'the backend to hold the partial command' });
    const exit = f.sc.shutdown('test');
    await c.waitClosed();
    assert.equal(c.received.length, 0, 'the partial command got no reply');
    assert.equal(await exit, 0);
    assert.equal(await f.direct.exists('i2:half'), 0, 'the partial command was never executed');
    assert.deepEqual(f.sc.registry.closedByReason, { drained: 1 });
    assert.equal(f.sc.registry.abandonedTotal, 0);
  });

  test('I2: 1000 pipelined SETs in one write just before the drain: replies for a prefix, and exactly the answered keys exist', async (t) => {
    const f = await setup(t);
    const c = await RawClient.connect(f.sc.listen.port);
    f.defer(() => c.close());
    await sessionOf(f.sc, c);
    const value = 'v'.repeat(1024);
    const n = 1000;
    c.write(Buffer.concat(Array.from({ length: n }, (_, i) => resp('SET', `i2:${i}`, value))));
    // Start the drain as soon as the first commands were forwarded, mid-pipeline.
    await waitFor(() => f.sc.metrics.hot.commands > 0, { intervalMs: 1, what: 'the first forwarded command' });
    const exit = f.sc.shutdown('test');
    await c.waitClosed(10_000);
    const text = c.received.toString();
    assert.equal(text.length % 5, 0, 'the client received whole replies only');
    const answered = text.length / 5;
    assert.equal(text, '+OK\r\n'.repeat(answered), 'every reply is +OK, nothing else');
    t.diagnostic(`${answered} of ${n} SETs were answered before the close`);
    assert.equal(await exit, 0);
    const keys = new Set(await f.direct.keys('i2:*'));
    assert.equal(keys.size, answered, 'as many keys exist as replies arrived');
    for (let i = 0; i < answered; i++) assert.ok(keys.has(`i2:${i}`), `i2:${i} was answered and exists`);
    assert.equal(phaseOutcomes(f.sc).drain, 'completed');
    assert.equal(f.sc.registry.abandonedTotal, 0);
  });

  test('I2/I1: a write that ends inside the next command name just before the drain: the complete commands before it are answered', async (t) => {
    const f = await setup(t, { sidecar: { shutdown: { drainTimeoutMs: 1000, closeTimeoutMs: 500 } } });
    const c = await RawClient.connect(f.sc.listen.port);
    f.defer(() => c.close());
    const s = await sessionOf(f.sc, c);
    const bytes = Buffer.concat([resp('SET', 'i2:whole', '1'), Buffer.from('*3\r\n$3\r\nSE')]);
    c.write(bytes);
    await waitFor(() => scanned(s) === bytes.length, { what: 'the sidecar to read the write' });
    const exit = f.sc.shutdown('test');
    await c.waitClosed();
    assert.equal(c.received.toString(), '+OK\r\n');
    assert.equal(await exit, 0);
    assert.equal(await f.direct.get('i2:whole'), '1');
  });

  test('I1: commands forwarded before the drain (a slow DEBUG SLEEP, then SET) get their replies before the close', async (t) => {
    const f = await setup(t, { redis: { config: ['enable-debug-command', 'yes'] } });
    const c = await RawClient.connect(f.sc.listen.port);
    f.defer(() => c.close());
    const s = await sessionOf(f.sc, c);
    c.write(Buffer.concat([resp('DEBUG', 'SLEEP', '0.3'), resp('SET', 'i1:k', 'v')]));
    await waitFor(() => s.inflight === 2, { intervalMs: 1, what: 'both commands forwarded' });
    const exit = f.sc.shutdown('test');
    await c.waitClosed(5000);
    assert.equal(c.received.toString(), '+OK\r\n+OK\r\n', 'both replies, then the close');
    assert.equal(await exit, 0);
    assert.equal(await f.direct.get('i1:k'), 'v');
    assert.equal(f.sc.registry.abandonedTotal, 0);
    assert.equal(phaseOutcomes(f.sc).drain, 'completed');
  });

  test('I1: a session that subscribed and unsubscribed again is back to normal: its commands in flight are answered before the close', async (t) => {
    const f = await setup(t, { redis: { config: ['enable-debug-command', 'yes'] } });
    const c = await RawClient.connect(f.sc.listen.port);
    f.defer(() => c.close());
    const s = await sessionOf(f.sc, c);
    c.write(Buffer.concat([resp('SUBSCRIBE', 'i1:ch'), resp('UNSUBSCRIBE', 'i1:ch')]));
    await c.untilEndsWith('*3\r\n$11\r\nunsubscribe\r\n$5\r\ni1:ch\r\n:0\r\n');
    c.take();
    c.write(Buffer.concat([resp('DEBUG', 'SLEEP', '0.3'), resp('INCR', 'i1:n')]));
    await waitFor(() => s.inflight === 2, { intervalMs: 1, what: 'both commands forwarded' });
    const exit = f.sc.shutdown('test');
    await c.waitClosed(5000);
    assert.equal(c.received.toString(), '+OK\r\n:1\r\n');
    assert.equal(await exit, 0);
    assert.equal(f.sc.registry.abandonedTotal, 0);
  });

  test('a replication link through the sidecar outlives the drain, is closed after replication_sync, and the sidecar exits 0', async (t) => {
    const f = await setup(t, { sidecar: { shutdown: { replicationTimeoutMs: 5000 } } });
    const writer = new Redis({ port: f.sc.listen.port, host: '127.0.0.1', retryStrategy: () => null });
    writer.on('error', () => undefined);
    f.defer(() => writer.disconnect());
    const replica = await RedisServer.start({ replicaOf: { host: '127.0.0.1', port: f.sc.listen.port } });
    f.defer(() => replica.stop());
    await waitFor(async () => (await replica.info('replication')).includes('master_link_status:up'), {
      timeoutMs: 15_000,
      what: 'the replica link through the sidecar',
    });
    assert.equal(f.sc.registry.byMode().replication_link, 1);
    const pipe = writer.pipeline();
    for (let i = 0; i < 500; i++) pipe.set(`rl:${i}`, `v${i}`);
    await pipe.exec();

    // What is open when each later state begins.
    const links: Array<[ShutdownState, number]> = [];
    f.sc.coordinator.on('state', (to: ShutdownState) => links.push([to, f.sc.registry.byMode().replication_link]));
    const code = await f.sc.shutdown('test');
    assert.equal(code, 0, 'the replica converged');
    assert.deepEqual(links.slice(0, 5), [
      ['intercept', 1],
      ['drain', 1],
      ['close_clients', 1],
      ['replication_sync', 1],
      ['release', 0],
    ]);
    const metrics = await f.sc.metrics.registry.metrics();
    assert.match(metrics, /pika_sidecar_client_connections_closed_total\{reason="replication_link_closed"\} 1\n/);
    const report = f.sc.logs.find((l) => l.report !== undefined)?.report as { sessionsClosed: Record<string, number>; exitCode: number };
    assert.equal(report.sessionsClosed.replication_link_closed, 1);
    const r = new Redis({ port: replica.port, host: '127.0.0.1', retryStrategy: () => null });
    r.on('error', () => undefined);
    f.defer(() => r.disconnect());
    assert.equal(await r.get('rl:499'), 'v499', 'the replica holds the last write');
  });

  test('during intercept, REPLICAOF, SLAVEOF, SYNC and PSYNC are refused while other commands still work', async (t) => {
    const f = await setup(t, { sidecar: { shutdown: { announceDelayMs: 1000 } } });
    const dead = await freePort();
    const before = await RawClient.connect(f.sc.listen.port);
    f.defer(() => before.close());
    before.write(resp('PING'));
    await before.untilEndsWith('+PONG\r\n');
    before.take();
    const exit = f.sc.shutdown('test');
    await waitFor(() => f.sc.coordinator.state === 'intercept', { what: 'intercept' });
    const pipeline = Buffer.concat([
      resp('PING'),
      resp('REPLICAOF', '127.0.0.1', String(dead)),
      resp('SYNC'),
      resp('PSYNC', '?', '-1'),
      resp('slaveof', '127.0.0.1', String(dead)),
      resp('SET', 'ic:k', '1'),
      resp('GET', 'ic:k'),
    ]);
    const refused = (name: string) => `-ERR pika-sidecar is shutting down: '${name}' refused[^\\r\\n]*\\r\\n`;
    const expected = new RegExp(
      `^\\+PONG\\r\\n${refused('replicaof')}${refused('sync')}${refused('psync')}${refused('slaveof')}\\+OK\\r\\n\\$1\\r\\n1\\r\\n$`,
    );
    before.write(pipeline);
    assert.match((await before.untilEndsWith('$1\r\n1\r\n')).toString(), expected, 'on a connection opened before the shutdown');
    const fresh = await RawClient.connect(f.sc.listen.port);
    f.defer(() => fresh.close());
    fresh.write(pipeline);
    assert.match((await fresh.untilEndsWith('$1\r\n1\r\n')).toString(), expected, 'on a connection opened during intercept');
    assert.equal(f.sc.coordinator.state, 'intercept', 'all of this happened during intercept');
    assert.match(await f.redis.info('replication'), /role:master/, 'the backend never saw REPLICAOF');
    assert.equal(await exit, 0);
  });

  test('close_clients spreads straggler closes over closeSpread, closes each at a frame boundary, and counts them', async (t) => {
    const f = await setup(t, { sidecar: { shutdown: { drainTimeoutMs: 200, closeSpreadMs: 600, closeTimeoutMs: 2000 } as never } });
    // Four clients with an open MULTI: the drain lets a transaction finish, so they outlast it.
    const clients = await Promise.all([0, 1, 2, 3].map(() => RawClient.connect(f.sc.listen.port)));
    for (const c of clients) {
      f.defer(() => c.close());
      c.write(resp('MULTI'));
    }
    await Promise.all(clients.map((c) => c.untilEndsWith('+OK\r\n')));
    const closedAt: number[] = [];
    for (const c of clients) c.socket.once('close', () => closedAt.push(Date.now()));
    const exit = f.sc.shutdown();
    await Promise.all(clients.map((c) => c.waitClosed(5000)));
    closedAt.sort((a, b) => a - b);
    // Four closes spread over 600 ms: 150 ms apart, so the last comes at least ~450 ms after the first.
    assert.ok(closedAt[3]! - closedAt[0]! >= 400, `closes spread over ${closedAt[3]! - closedAt[0]!} ms`);
    for (const c of clients) assert.equal(c.received.toString(), '+OK\r\n', 'nothing but the MULTI reply: closed at a frame boundary');
    assert.equal(await exit, 2, 'the drain timed out (transactions never finished): exit 2');
    assert.equal(phaseOutcomes(f.sc).drain, 'timed_out');
    assert.equal(phaseOutcomes(f.sc).close_clients, 'completed');
    const report = f.sc.logs.find((l) => l.report !== undefined)?.report as { sessionsClosed: Record<string, number> };
    assert.deepEqual(report.sessionsClosed, { straggler: 4 });
  });

  test('1,000 idle sessions drain in well under a second', async (t) => {
    const f = await setup(t);
    const clients: RawClient[] = [];
    f.defer(() => clients.forEach((c) => c.close()));
    for (let batch = 0; batch < 10; batch++) {
      const more = await Promise.all(Array.from({ length: 100 }, () => RawClient.connect(f.sc.listen.port)));
      clients.push(...more);
      await Promise.all(
        more.map(async (c) => {
          c.write(resp('PING'));
          await c.untilEndsWith('+PONG\r\n');
        }),
      );
    }
    assert.equal(f.sc.registry.size, 1000);
    assert.equal(f.sc.registry.inflight(), 0);
    const code = await f.sc.shutdown('test');
    const drain = f.sc.coordinator.records.find((r) => r.phase === 'drain');
    t.diagnostic(`drain of 1,000 idle sessions took ${drain?.durationMs} ms`);
    assert.equal(code, 0);
    assert.equal(drain?.outcome, 'completed');
    assert.ok(drain.durationMs < 2000, `drain took ${drain.durationMs} ms`);
    await waitFor(() => clients.every((c) => c.closed), { what: 'every client closed' });
    assert.equal(f.sc.registry.closedByReason.drained, 1000);
    assert.equal(f.sc.registry.size, 0);
  });
});
