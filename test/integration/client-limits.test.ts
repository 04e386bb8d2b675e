/**
 * Limits on who gets a session: maxClients, file descriptors, and the backend's own maxclients.
 * Every client gets a reply or a refusal line; nobody is closed without a word.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RedisServer } from '../../harness/redis-server.js';
import { redisWithSidecar, startSidecar } from '../support/sidecar.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';
import { ClientListener, MAX_CLIENTS_REPLY } from '../../src/proxy/listener.js';
import type { BackendPool } from '../../src/backend/backend-pool.js';
import type { SessionRegistry } from '../../src/proxy/session-registry.js';
import { SidecarError } from '../../src/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Registry } from 'prom-client';
import { captureLogs } from '../support/log-capture.js';

const MAX_CLIENTS_LINE = MAX_CLIENTS_REPLY.toString();

/** Connects, sends PING, and resolves with the first line it gets (or 'closed'); the socket stays open. */
function pingClient(port: number, timeoutMs = 10_000): Promise<{ first: string; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    let settled = false;
    const done = (first: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ first, socket });
    };
    const timer = setTimeout(() => done(`timeout after ${got.length} bytes`), timeoutMs);
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const nl = got.indexOf('\r\n');
      if (nl >= 0) done(got.slice(0, nl + 2));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => done(got.includes('\r\n') ? got.slice(0, got.indexOf('\r\n') + 2) : 'closed'));
  });
}

function tally(results: Array<{ first: string }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) out[r.first] = (out[r.first] ?? 0) + 1;
  return out;
}

async function metricValue(adminPort: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no series ${series}`);
  return Number(line.slice(series.length + 1));
}

describe('client limits', () => {
  test('beyond maxClients a new client gets -ERR max number of clients reached and is closed, counted; a freed slot serves again', async (t) => {
    const defer = deferrer(t);
    const { sc } = await redisWithSidecar(defer, { sidecar: { maxClients: 5 } });
    const first = await Promise.all(Array.from({ length: 5 }, () => pingClient(sc.listen.port)));
    defer(() => first.forEach((c) => c.socket.destroy()));
    assert.deepEqual(tally(first), { '+PONG\r\n': 5 });
    const extra = await Promise.all(Array.from({ length: 3 }, () => pingClient(sc.listen.port)));
    assert.deepEqual(tally(extra), { [MAX_CLIENTS_LINE]: 3 });
    await waitFor(() => extra.every((c) => c.socket.destroyed || c.socket.readableEnded), { what: 'the refused clients to be closed' });
    assert.equal(await metricValue(sc.admin.port, 'pika_sidecar_client_connections_refused_total{reason="max_clients"}'), 3);
    // The first refusal is logged at once, the rest only summarised.
    assert.equal(sc.logs.filter((l) => l['event'] === 'refused_max_clients' && l['suppressed'] === undefined).length, 1);
    first[0]!.socket.destroy();
    await waitFor(async () => (await pingClient(sc.listen.port)).first === '+PONG\r\n', { what: 'a freed slot to admit a client' });
  });

  test("a client the backend's maxclients refuses gets exactly the backend's error, as it would directly; nobody is closed silently", async (t) => {
    const defer = deferrer(t);
    const redis = await RedisServer.start({ config: ['maxclients', '20'] });
    defer(() => redis.stop());
    const N = 150;

    const direct = await Promise.all(Array.from({ length: N }, () => pingClient(redis.port)));
    direct.forEach((c) => c.socket.destroy());
    const directTally = tally(direct);
    assert.deepEqual(Object.keys(directTally).sort(), ['+PONG\r\n', MAX_CLIENTS_LINE].sort(), JSON.stringify(directTally));
    // Let redis free the slots before the sidecar takes its own.
    await waitFor(async () => (await redis.raw('CLIENT LIST')).split('\n').filter((l) => l.includes('id=')).length <= 1, {
      what: 'redis to drop the direct clients',
    });

    const sc = await startSidecar(redis.port, { poolSize: 2 });
    defer(() => sc.shutdown());
    const proxied = await Promise.all(Array.from({ length: N }, () => pingClient(sc.listen.port)));
    defer(() => proxied.forEach((c) => c.socket.destroy()));
    const proxiedTally = tally(proxied);
    // Every client got PONG or the backend's own line: no silent close, no timeout, no other text.
    assert.deepEqual(Object.keys(proxiedTally).sort(), ['+PONG\r\n', MAX_CLIENTS_LINE].sort(), JSON.stringify(proxiedTally));
    assert.equal((proxiedTally['+PONG\r\n'] ?? 0) + (proxiedTally[MAX_CLIENTS_LINE] ?? 0), N);
    // The sidecar's own connections (control, warm pool) take slots too: no more clients served than directly.
    assert.ok((proxiedTally['+PONG\r\n'] ?? 0) <= (directTally['+PONG\r\n'] ?? 0), JSON.stringify({ directTally, proxiedTally }));
    const refused = await metricValue(sc.admin.port, 'pika_sidecar_client_connections_refused_total{reason="backend_refused"}');
    assert.equal(refused, proxiedTally[MAX_CLIENTS_LINE]);
    assert.ok((await metricValue(sc.admin.port, 'pika_sidecar_backend_connect_failures_total')) >= refused);
    // The served clients still work.
    const served = proxied.filter((c) => c.first === '+PONG\r\n');
    served.forEach((c) => c.socket.destroy());
    await waitFor(async () => (await pingClient(sc.listen.port)).first === '+PONG\r\n', { what: 'a client to be served after the flood' });
  });

  test('-NOAUTH from a password-protected backend is not a refusal: the client authenticates itself through the sidecar', async (t) => {
    const defer = deferrer(t);
    const { sc } = await redisWithSidecar(defer, { redis: { password: 's3cret' }, sidecar: { backendPassword: 's3cret' } });
    const c = await pingClient(sc.listen.port);
    defer(() => c.socket.destroy());
    assert.match(c.first, /^-NOAUTH /);
    const replies: string[] = [];
    c.socket.on('data', (d: Buffer) => replies.push(d.toString()));
    c.socket.write('*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n*1\r\n$4\r\nPING\r\n');
    await waitFor(() => replies.join('') === '+OK\r\n+PONG\r\n', { what: 'AUTH then PING through the sidecar' });
    assert.equal(await metricValue(sc.admin.port, 'pika_sidecar_client_connections_refused_total{reason="backend_refused"}'), 0);
  });

  test('a backend connect that fails with EMFILE gives the client the max-clients line, counted as fd_exhausted and logged once', async (t) => {
    const { logger, logs } = captureLogs('debug');
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
    const pool = {
      acquire: () => Promise.reject(new SidecarError('ERR_BACKEND_UNREACHABLE', 'cannot connect to backend: EMFILE', { cause: emfile })),
    } as unknown as BackendPool;
    const registry = {
      add: () => assert.fail('no session without a backend'),
      countRejected: () => undefined,
    } as unknown as SessionRegistry;
    const listener = new ClientListener({ host: '127.0.0.1', port: 0, pool, registry, logger, metrics, maxClients: 100 });
    const { port } = await listener.listen();
    t.after(() => listener.close());
    const results = await Promise.all(Array.from({ length: 4 }, () => pingClient(port)));
    results.forEach((r) => r.socket.destroy());
    assert.deepEqual(tally(results), { [MAX_CLIENTS_LINE]: 4 });
    const text = await metrics.registry.metrics();
    assert.match(text, /pika_sidecar_client_connections_refused_total\{reason="fd_exhausted"\} 4/);
    assert.equal(logs.filter((l) => l['event'] === 'refused_fd_exhausted').length, 1);
  });
});
