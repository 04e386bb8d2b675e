/**
 * The admin HTTP server with fake hooks, on 127.0.0.1 port 0: routes, methods, the drain trigger
 * and the stop gate. Non-loopback callers cannot be made over loopback, so the token check and the
 * 403 path are driven with fake request objects (the only way in without a second interface).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { AdminServer, isLoopback, type AdminHooks, type DrainWaitResult } from '../../src/admin/admin-server.js';
import { waitFor } from '../../harness/wait.js';
import { deferrer } from '../support/defer.js';
import type { StatusBody } from '../../src/admin/status.js';
import { captureLogs } from '../support/log-capture.js';

function logger(lines: Array<Record<string, unknown>> = []) {
  return captureLogs('debug', lines).logger;
}

/** Fake hooks that record what the server asked for; waitDrained() answers when the test says. */
class FakeHooks implements AdminHooks {
  readyState = { ready: true, reason: 'ready' };
  drains: string[] = [];
  waits = 0;
  private waiters: Array<(r: DrainWaitResult) => void> = [];
  ready() {
    return this.readyState;
  }
  status(): StatusBody {
    // Not a whole StatusBody: the server sends whatever the hook returns (a bigint as a string).
    return { phase: this.drains.length > 0 ? 'drain' : 'running', big: 10n } as unknown as StatusBody;
  }
  async metrics() {
    return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'pika_sidecar_up 1\n' };
  }
  startDrain(source: string) {
    this.drains.push(source);
  }
  waitDrained(): Promise<DrainWaitResult> {
    this.waits++;
    return new Promise((r) => this.waiters.push(r));
  }
  answer(r: DrainWaitResult) {
    for (const w of this.waiters.splice(0)) w(r);
  }
}

interface Started {
  admin: AdminServer;
  hooks: FakeHooks;
  url: string;
  lines: Array<Record<string, unknown>>;
}

async function start(t: import('node:test').TestContext, token?: string): Promise<Started> {
  const defer = deferrer(t);
  const hooks = new FakeHooks();
  const lines: Array<Record<string, unknown>> = [];
  const admin = new AdminServer({ host: '127.0.0.1', port: 0, token, hooks, logger: logger(lines) });
  const addr = await admin.listen();
  defer(() => admin.destroy());
  return { admin, hooks, url: `http://127.0.0.1:${addr.port}`, lines };
}

/** Drives the private request handler with a fake request from `remote`, capturing the response. */
async function handleFake(
  admin: AdminServer,
  req: { method: string; url: string; remote: string | undefined; authorization?: string },
): Promise<{ code: number; body: string }> {
  const fakeReq = {
    method: req.method,
    url: req.url,
    headers: req.authorization !== undefined ? { authorization: req.authorization } : {},
    socket: { remoteAddress: req.remote },
  } as unknown as http.IncomingMessage;
  let code = 0;
  let body = '';
  const fakeRes = {
    headersSent: false,
    writeHead(c: number) {
      code = c;
      fakeRes.headersSent = true;
      return fakeRes;
    },
    end(b?: string) {
      body = b ?? '';
    },
  };
  await (admin as unknown as { handle(q: http.IncomingMessage, s: http.ServerResponse): Promise<void> }).handle(
    fakeReq,
    fakeRes as unknown as http.ServerResponse,
  );
  return { code, body };
}

function authorized(admin: AdminServer, remote: string | undefined, authorization?: string): boolean {
  const fakeReq = {
    headers: authorization !== undefined ? { authorization } : {},
    socket: { remoteAddress: remote },
  } as unknown as http.IncomingMessage;
  return (admin as unknown as { authorized(q: http.IncomingMessage): boolean }).authorized(fakeReq);
}

describe('isLoopback', () => {
  test('accepts 127.0.0.0/8, ::1 and IPv4-mapped loopback', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '127.255.255.254', '::1', '::ffff:127.0.0.1', '::ffff:127.9.9.9'])
      assert.equal(isLoopback(a), true, a);
  });

  test('refuses other addresses, mapped ones included, and an unknown address', () => {
    for (const a of [
      '10.0.0.1',
      '::ffff:10.0.0.1',
      '192.168.1.10',
      '::ffff:192.168.1.10',
      '128.0.0.1',
      '1.127.0.0',
      '0.0.0.0',
      '::',
      'fe80::1',
      '::2',
      '127.0.0.1.example',
      'localhost',
      '',
    ]) {
      assert.equal(isLoopback(a), false, a);
    }
    assert.equal(isLoopback(undefined), false);
  });
});

describe('AdminServer', () => {
  test('GET /healthz is 200; /readyz follows the ready hook; /metrics and /status answer', async (t) => {
    const s = await start(t);
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
    s.hooks.readyState = { ready: false, reason: 'shutting down (intercept)' };
    const r = await fetch(`${s.url}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'shutting down (intercept)\n');
    const m = await fetch(`${s.url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await m.text(), 'pika_sidecar_up 1\n');
    const st = await fetch(`${s.url}/status`);
    assert.deepEqual(await st.json(), { phase: 'running', big: '10' }, 'bigints are rendered as strings');
  });

  test('POST /drain from loopback starts the drain and answers 202 without waiting', async (t) => {
    const s = await start(t);
    const r = await fetch(`${s.url}/drain`, { method: 'POST' });
    assert.equal(r.status, 202);
    const body = (await r.json()) as { accepted: boolean; status: { phase: string } };
    assert.equal(body.accepted, true);
    assert.equal(body.status.phase, 'drain');
    assert.deepEqual(s.hooks.drains, ['http']);
    assert.equal(s.hooks.waits, 0);
    assert.equal((await fetch(`${s.url}/drain`, { method: 'POST' })).status, 202, 'a repeat is accepted too (the hook is idempotent)');
  });

  test('POST /drain?wait=true answers only once waitDrained() resolves: 200 drained', async (t) => {
    const s = await start(t);
    let answered = false;
    const pending = fetch(`${s.url}/drain?wait=true`, { method: 'POST' }).then((r) => {
      answered = true;
      return r;
    });
    await waitFor(() => s.hooks.waits === 1, { what: 'the server to wait for the drain' });
    assert.deepEqual(s.hooks.drains, ['http']);
    assert.equal(answered, false);
    s.hooks.answer('drained');
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { result: string }).result, 'drained');
  });

  test('POST /drain?wait=true answers 504 when the deadline passes first', async (t) => {
    const s = await start(t);
    const pending = fetch(`${s.url}/drain?wait=true`, { method: 'POST' });
    await waitFor(() => s.hooks.waits === 1, { what: 'the server to wait for the drain' });
    s.hooks.answer('deadline');
    const r = await pending;
    assert.equal(r.status, 504);
    assert.equal(((await r.json()) as { result: string }).result, 'deadline');
  });

  test('GET /drain/gate starts the drain as the gate and answers 200 on drained', async (t) => {
    const s = await start(t);
    const pending = fetch(`${s.url}/drain/gate`);
    await waitFor(() => s.hooks.waits === 1, { what: 'the gate to wait' });
    assert.deepEqual(s.hooks.drains, ['gate']);
    s.hooks.answer('drained');
    assert.equal((await pending).status, 200);
  });

  test('GET /drain/gate answers 504 on deadline', async (t) => {
    const s = await start(t);
    const pending = fetch(`${s.url}/drain/gate`);
    await waitFor(() => s.hooks.waits === 1, { what: 'the gate to wait' });
    s.hooks.answer('deadline');
    const r = await pending;
    assert.equal(r.status, 504);
    assert.equal(((await r.json()) as { result: string }).result, 'deadline');
  });

  test('a wrong method on a known path is 405 and starts nothing; an unknown path is 404', async (t) => {
    const s = await start(t);
    for (const [method, path] of [
      ['GET', '/drain'],
      ['PUT', '/drain'],
      ['POST', '/drain/gate'],
      ['POST', '/healthz'],
      ['DELETE', '/metrics'],
      ['POST', '/status'],
      ['PUT', '/readyz'],
    ] as const) {
      const r = await fetch(`${s.url}${path}`, { method });
      assert.equal(r.status, 405, `${method} ${path}`);
      await r.text();
    }
    assert.deepEqual(s.hooks.drains, [], 'no wrong-method request started a drain');
    for (const path of ['/', '/nope', '/drain/gate/x', '/metricsx']) {
      const r = await fetch(`${s.url}${path}`);
      assert.equal(r.status, 404, path);
      await r.text();
    }
  });

  test('without a token only loopback callers are authorized', async (t) => {
    const s = await start(t);
    assert.equal(authorized(s.admin, '127.0.0.1'), true);
    assert.equal(authorized(s.admin, '::ffff:127.0.0.1'), true);
    assert.equal(authorized(s.admin, '10.1.2.3'), false);
    assert.equal(authorized(s.admin, '10.1.2.3', 'Bearer anything'), false);
    assert.equal(authorized(s.admin, undefined), false);
  });

  test('with a token, a non-loopback caller needs exactly `Bearer <token>`', async (t) => {
    const s = await start(t, 's3cret-token');
    assert.equal(authorized(s.admin, '10.1.2.3', 'Bearer s3cret-token'), true);
    assert.equal(authorized(s.admin, '::ffff:192.168.0.9', 'Bearer s3cret-token'), true);
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Bearer s3cret-toke',
      'Bearer s3cret-token2',
      'Bearer  s3cret-token',
      'Basic s3cret-token',
      's3cret-token',
      'Bearer S3CRET-TOKEN',
    ]) {
      assert.equal(authorized(s.admin, '10.1.2.3', header), false, JSON.stringify(header));
    }
    assert.equal(authorized(s.admin, '127.0.0.1'), true, 'loopback needs no token');
  });

  test('a non-loopback caller without a valid token gets 403 on the drain and the gate, and nothing starts', async (t) => {
    const s = await start(t, 'tok');
    for (const [method, url] of [
      ['POST', '/drain'],
      ['POST', '/drain?wait=true'],
      ['GET', '/drain/gate'],
    ] as const) {
      const r = await handleFake(s.admin, { method, url, remote: '10.0.0.7', authorization: 'Bearer wrong' });
      assert.equal(r.code, 403, `${method} ${url}`);
      assert.match(r.body, /forbidden/);
    }
    assert.deepEqual(s.hooks.drains, []);
    assert.ok(s.lines.some((l) => l.msg === 'refused a drain request from a non-loopback caller without a valid token'));
    assert.ok(!s.lines.some((l) => JSON.stringify(l).includes('Bearer wrong')), 'the header never reaches a log line');
    const ok = await handleFake(s.admin, { method: 'POST', url: '/drain', remote: '10.0.0.7', authorization: 'Bearer tok' });
    assert.equal(ok.code, 202);
    assert.deepEqual(s.hooks.drains, ['http']);
  });

  test('non-loopback callers still read probes and metrics without a token', async (t) => {
    const s = await start(t, 'tok');
    assert.equal((await handleFake(s.admin, { method: 'GET', url: '/healthz', remote: '10.0.0.7' })).code, 200);
    assert.equal((await handleFake(s.admin, { method: 'GET', url: '/metrics', remote: '10.0.0.7' })).code, 200);
  });

  test('an empty configured token authorizes no one (defence in depth behind config validation)', async (t) => {
    const s = await start(t, '');
    assert.equal(authorized(s.admin, '10.1.2.3', 'Bearer '), false);
  });

  test('close() is idempotent and the port stops accepting', async (t) => {
    const s = await start(t);
    await fetch(`${s.url}/healthz`).then((r) => r.text());
    const a = s.admin.close(100);
    const b = s.admin.close(100);
    assert.equal(a, b);
    await a;
    await assert.rejects(fetch(`${s.url}/healthz`));
  });
});
