/**
 * The admin server's limits against slow, idle and oversized callers, on 127.0.0.1 port 0 with
 * short timeouts: trickled heads are cut, connections beyond the cap are refused, bodies are never
 * read, and the probes keep answering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { AdminServer, DEFAULT_ADMIN_LIMITS, type AdminHooks } from '../../src/admin/admin-server.js';
import type { StatusBody } from '../../src/admin/status.js';
import { captureLogs } from '../support/log-capture.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';

const LIMITS = { headersTimeoutMs: 1000, requestTimeoutMs: 2000, maxConnections: 4 };

function hooks(drains: string[]): AdminHooks {
  return {
    ready: () => ({ ready: true, reason: 'ready' }),
    status: () => ({ phase: 'running' }) as unknown as StatusBody,
    metrics: async () => ({ contentType: 'text/plain', body: 'x 1\n' }),
    startDrain: (s) => void drains.push(s),
    waitDrained: () => new Promise(() => undefined),
  };
}

async function start(t: import('node:test').TestContext) {
  const defer = deferrer(t);
  const drains: string[] = [];
  const { logger, logs } = captureLogs('debug');
  const admin = new AdminServer({ host: '127.0.0.1', port: 0, token: undefined, hooks: hooks(drains), logger, limits: LIMITS });
  const { port } = await admin.listen();
  defer(() => admin.destroy());
  const sockets: net.Socket[] = [];
  defer(() => sockets.forEach((s) => s.destroy()));
  const connect = () => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
    const state = { closedAt: 0, data: '' };
    s.on('data', (d: Buffer) => (state.data += d.toString()));
    s.on('close', () => (state.closedAt = Date.now()));
    return { s, state };
  };
  return { port, logs, drains, connect };
}

test('the defaults are a few seconds and a small cap', () => {
  assert.deepEqual(DEFAULT_ADMIN_LIMITS, { headersTimeoutMs: 5000, requestTimeoutMs: 10_000, maxConnections: 32 });
});

test('a client trickling its request head one byte at a time is cut within the headers timeout, with a 408', async (t) => {
  const { connect, logs } = await start(t);
  const { s, state } = connect();
  const head = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(200)}`;
  const started = Date.now();
  let i = 0;
  const timer = setInterval(() => !s.destroyed && s.write(head[i++ % head.length]!), 50);
  t.after(() => clearInterval(timer));
  await waitFor(() => state.closedAt > 0, { timeoutMs: 5000, what: 'the trickler to be cut' });
  const heldMs = state.closedAt - started;
  assert.ok(heldMs >= LIMITS.headersTimeoutMs - 50 && heldMs < LIMITS.headersTimeoutMs + 1500, `held for ${heldMs} ms`);
  assert.match(state.data, /^HTTP\/1\.1 408 /);
  assert.ok(logs.some((l) => l['event'] === 'admin_client_error'));
});

test('connections beyond the cap are closed on accept; once the idle ones are cut the probes answer again', async (t) => {
  const { port, connect, logs } = await start(t);
  const opened = Date.now();
  const all = Array.from({ length: LIMITS.maxConnections + 2 }, () => connect());
  // Two of them are beyond the cap: closed at once, without a byte.
  await waitFor(() => all.filter((c) => c.state.closedAt > 0).length >= 2, {
    timeoutMs: 1000,
    what: 'the connections beyond the cap to be closed',
  });
  const refused = all.filter((c) => c.state.closedAt > 0);
  assert.equal(refused.length, 2);
  assert.ok(refused.every((c) => c.state.data === '' && c.state.closedAt - opened < LIMITS.headersTimeoutMs));
  assert.ok(logs.some((l) => l['event'] === 'admin_connection_refused'));
  const held = all.filter((c) => !refused.includes(c));
  // The idle holders are cut by the headers timeout; then the probes get through.
  await waitFor(() => held.every((h) => h.state.closedAt > 0), { timeoutMs: 5000, what: 'the idle connections to be cut' });
  const probe = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(probe.status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
});

test('a request with a body gets 413 and a closed connection; the body is never read and the drain never starts', async (t) => {
  const { connect, drains } = await start(t);
  for (const head of [
    'POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc',
    'POST /drain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
    'GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc',
  ]) {
    const { s, state } = connect();
    s.write(head);
    await waitFor(() => state.closedAt > 0, { timeoutMs: 3000, what: 'the connection to close after 413' });
    assert.match(state.data, /^HTTP\/1\.1 413 /, head);
  }
  assert.deepEqual(drains, []);
});
