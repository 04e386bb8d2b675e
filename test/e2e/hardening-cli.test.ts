/**
 * Hardening through the real CLI as a child process: the open-file limit, protected mode, every
 * termination signal, and a fault in the process. Bind addresses may be 0.0.0.0; every
 * connection goes to loopback.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RedisServer } from '../../harness/redis-server.js';
import { runCli, spawnSidecar, type CliSidecar } from '../../harness/sidecar-process.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';
import { freePort } from '../../harness/ports.js';
import { TERMINATION_SIGNALS } from '../../src/shutdown/signals.js';
import { ProtectedModeGate } from '../../src/backend/protected-mode.js';
import { createLogger } from '../../src/observability/logger.js';

type Defer = ReturnType<typeof deferrer>;

async function redis(defer: Defer, opts: Parameters<typeof RedisServer.start>[0] = {}): Promise<RedisServer> {
  const r = await RedisServer.start(opts);
  defer(() => r.stop());
  return r;
}

async function sidecar(defer: Defer, ...args: Parameters<typeof spawnSidecar>): Promise<CliSidecar> {
  const sc = await spawnSidecar(...args);
  defer(() => sc.kill());
  return sc;
}

function pingFirstLine(port: number): Promise<{ line: string; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (line: string) => resolve({ line, socket });
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.slice(0, got.indexOf('\r\n') + 2));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => done(got.includes('\r\n') ? got.slice(0, got.indexOf('\r\n') + 2) : 'closed'));
    setTimeout(() => done('timeout'), 10_000).unref();
  });
}

describe('hardening through the CLI', () => {
  test('under a low open-file limit every client gets PONG or the max-clients line, it is logged, and the sidecar keeps serving', async (t) => {
    const defer = deferrer(t);
    const backend = await redis(defer);
    const sc = await sidecar(defer, backend.port, ['--log-level', 'info'], {}, { launcher: ['prlimit', '--nofile=256:256'] });
    const lowered = await sc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('maxClients lowered to'));
    const limit = lowered['maxClients'] as number;
    assert.ok(limit > 0 && limit < 128, `limit ${limit}`);
    const clients = await Promise.all(Array.from({ length: 300 }, () => pingFirstLine(sc.port)));
    defer(() => clients.forEach((c) => c.socket.destroy()));
    const counts: Record<string, number> = {};
    for (const c of clients) counts[c.line] = (counts[c.line] ?? 0) + 1;
    assert.deepEqual(Object.keys(counts).sort(), ['+PONG\r\n', '-ERR max number of clients reached\r\n'], JSON.stringify(counts));
    assert.equal(counts['+PONG\r\n'], limit);
    await sc.waitForLog((l) => l['event'] === 'refused_max_clients', 5000, 'the refusal log line');
    assert.doesNotMatch(sc.stderr(), /EMFILE/);
    clients.forEach((c) => c.socket.destroy());
    await waitFor(async () => (await pingFirstLine(sc.port)).line === '+PONG\r\n', { what: 'the sidecar to serve again' });
    sc.proc.kill('SIGTERM');
    assert.equal((await sc.exited).code, 0);
  });

  test('protected mode: listening on 0.0.0.0 in front of a backend without a password refuses to start, saying why and how to allow it', async (t) => {
    const defer = deferrer(t);
    const backend = await redis(defer);
    const [port, admin] = [await freePort(), await freePort()];
    const r = await runCli([
      'run',
      '--listen',
      `0.0.0.0:${port}`,
      '--backend',
      `127.0.0.1:${backend.port}`,
      '--admin',
      `127.0.0.1:${admin}`,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /protected mode: the sidecar listens on 0\.0\.0\.0:\d+, which is not loopback, and the backend 127\.0\.0\.1:\d+ answers PING without a password/,
    );
    assert.match(r.stderr, /protectedMode: false/);
    assert.match(r.stderr, /--protected-mode=false/);
    assert.match(r.stderr, /PIKA_SIDECAR_PROTECTED_MODE=false/);
    // Nothing was left listening.
    await assert.rejects(() => fetch(`http://127.0.0.1:${admin}/healthz`));
  });

  test('protected mode allows 0.0.0.0 when turned off, or when the backend asks for a password; an open admin port warns', async (t) => {
    const defer = deferrer(t);
    const open = await redis(defer);
    const off = await sidecar(defer, open.port, ['--protected-mode=false'], {}, { listenHost: '0.0.0.0' });
    assert.equal((await pingFirstLine(off.port)).line, '+PONG\r\n');
    const locked = await redis(defer, { password: 'pw1' });
    const viaEnv = await sidecar(
      defer,
      locked.port,
      [],
      { PIKA_SIDECAR_BACKEND_PASSWORD: 'pw1' },
      { listenHost: '::', adminHost: '0.0.0.0' },
    );
    assert.match((await pingFirstLine(viaEnv.port)).line, /^-NOAUTH/);
    await viaEnv.waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('the admin server listens beyond loopback with no adminToken'),
    );
    for (const sc of [off, viaEnv]) sc.proc.kill('SIGTERM');
    assert.equal((await off.exited).code, 0);
    assert.equal((await viaEnv.exited).code, 0);
  });

  test('protected mode, backend not known at start-up: non-loopback clients get -DENIED until the backend is seen to ask for a password', async (t) => {
    const defer = deferrer(t);
    const open = await redis(defer);
    const locked = await redis(defer, { password: 'pw2' });
    const logger = createLogger('silent');
    const peer = { remoteAddress: '10.1.2.3' } as net.Socket; // text only: no connection is made to it
    const local = { remoteAddress: '127.0.0.1' } as net.Socket;
    const listen = { host: '0.0.0.0', port: 6380 };
    const gateOpen = new ProtectedModeGate({
      listen,
      backend: { host: '127.0.0.1', port: open.port },
      timeoutMs: 2000,
      logger,
      initial: 'unknown',
    });
    assert.match(
      (await gateOpen.admit(peer))?.toString() ?? 'admitted',
      /^-DENIED protected mode: .*PIKA_SIDECAR_PROTECTED_MODE=false\r\n$/,
    );
    assert.equal(await gateOpen.admit(local), undefined);
    const gateLocked = new ProtectedModeGate({
      listen,
      backend: { host: '127.0.0.1', port: locked.port },
      timeoutMs: 2000,
      logger,
      initial: 'unknown',
    });
    assert.equal(await gateLocked.admit(peer), undefined);
  });

  const extraSignals = TERMINATION_SIGNALS.map((s) => s.signal).filter((s) => s !== 'SIGTERM' && s !== 'SIGINT');
  test(`every other termination signal (${extraSignals.join(', ')}) runs the orderly shutdown and exits 0 with a report naming it`, async (t) => {
    const defer = deferrer(t);
    const backend = await redis(defer);
    const started = Date.now();
    // Started one after another (free ports are chosen per start), signalled together.
    const spawned: Array<{ signal: NodeJS.Signals; sc: CliSidecar }> = [];
    for (const signal of extraSignals) spawned.push({ signal, sc: await sidecar(defer, backend.port, ['--log-level', 'info']) });
    const runs = await Promise.all(
      spawned.map(async ({ signal, sc }) => {
        sc.proc.kill(signal);
        return { signal, sc, exit: await sc.exited };
      }),
    );
    for (const { signal, sc, exit } of runs) {
      assert.equal(exit.signal, null, `${signal} killed the process`);
      assert.equal(exit.code, 0, `${signal}: ${sc.stderr()}`);
      const report = sc.report();
      assert.equal(report?.['reason'], signal);
      assert.equal(report?.['exitCode'], 0);
      assert.ok(sc.logs.at(-1)?.report, `${signal}: the report is the last line`);
    }
    assert.ok(Date.now() - started < 60_000);
  });

  test('a second, different termination signal forces the shutdown: exit 3', async (t) => {
    const defer = deferrer(t);
    const backend = await redis(defer);
    const sc = await sidecar(defer, backend.port, ['--drain-timeout', '20s', '--shutdown-deadline', '60s']);
    // An open MULTI holds the drain open.
    const c = net.connect(sc.port, '127.0.0.1');
    defer(() => c.destroy());
    c.on('error', () => undefined);
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.write('*1\r\n$5\r\nMULTI\r\n');
    await waitFor(() => got === '+OK\r\n', { what: 'MULTI to open' });
    sc.proc.kill('SIGHUP');
    await sc.waitForLog((l) => l.msg === 'phase drain started', 10_000, 'the drain to start');
    sc.proc.kill('SIGQUIT');
    const exit = await sc.exited;
    assert.equal(exit.code, 3, sc.stderr());
    assert.equal(sc.report()?.['forced'], true);
  });

  for (const kind of ['uncaught_exception', 'unhandled_rejection'] as const) {
    test(`an ${kind.replace('_', ' ')} in the process is logged, then the orderly shutdown runs and the exit code is 2`, async (t) => {
      const defer = deferrer(t);
      const backend = await redis(defer);
      const sc = await sidecar(defer, backend.port, ['--log-level', 'info'], { PIKA_SIDECAR_TEST_INJECT_FAULT: kind });
      const exit = await Promise.race([
        sc.exited,
        new Promise<never>((_r, rej) => setTimeout(() => rej(new Error('no exit within 20 s')), 20_000).unref()),
      ]);
      assert.equal(exit.signal, null);
      assert.equal(exit.code, 2, sc.stderr());
      const logged = sc.logs.find((l) => l['kind'] === kind);
      assert.ok(logged, 'the fault is logged');
      assert.match(String(logged.msg), /starting the orderly shutdown \(exit code 2\)/);
      const report = sc.report();
      assert.equal(report?.['reason'], kind);
      assert.equal(report?.['exitCode'], 2);
      assert.deepEqual((report?.['fault'] as { kind: string }).kind, kind);
      assert.deepEqual(
        sc.phaseOutcomes().map(([p]) => p),
        ['intercept', 'drain', 'close_clients', 'replication_sync', 'release'],
      );
    });
  }
});
