/**
 * The CLI as a child process: check-config, usage errors, --help, and drain/status against a stub
 * of our own admin API (node:http on 127.0.0.1:0) that answers like the admin server does.
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS } from '../../src/config/keys.js';
import { freePort } from '../../harness/ports.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with an environment free of PIKA_SIDECAR_* unless given; never hangs the suite. */
function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIKA_SIDECAR_')));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: ROOT, env: { ...base, ...env }, timeout: 20_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function tempFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

interface SeenRequest {
  method: string;
  url: string;
  authorization: string | undefined;
}
type Answer = { status: number; body: unknown } | 'hang';

/** A stub of the sidecar's admin API; `answer` decides each reply (or never to reply). */
async function startAdminStub(
  t: TestContext,
  answer: (req: SeenRequest, index: number) => Answer,
): Promise<{ url: string; port: number; seen: SeenRequest[]; server: http.Server }> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const r = { method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization };
    seen.push(r);
    const a = answer(r, seen.length - 1);
    if (a === 'hang') return;
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(a.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, port, seen, server };
}

const STATUS_DRAINING = {
  phase: 'drain',
  ready: false,
  backend: { address: '127.0.0.1:9221', up: true, kind: 'pika', role: 'master' },
  sessions: { total: 12, byMode: { normal: 10, blocked: 2, monitor: 0 } },
  inflight: 3,
  replication: {
    role: 'master',
    converged: false,
    replicas: [
      { address: '10.0.0.3:9221', state: 'online', lagBytes: '1024', position: '0:4096' },
      { address: '10.0.0.4:9221', state: 'full_sync', lagBytes: null, position: null },
    ],
  },
  shutdown: {
    reason: 'SIGTERM',
    startedAt: '2025-01-01T00:00:00.000Z',
    phases: [{ phase: 'intercept', outcome: 'completed', durationMs: 6012 }],
    exitCode: null,
  },
};

describe('check-config', () => {
  test('with nothing set it prints the defaults, each marked default, and exits 0', async () => {
    const r = await runCli(['check-config']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^listen: 127\.0\.0\.1:6380 +# default$/m);
    assert.match(r.stdout, /^ {2}deadline: 45s +# default$/m);
    assert.equal(r.stderr, '');
  });

  test('it shows which layer each value came from, and secrets only as [set]', async (t) => {
    const path = tempFile(t, 'sidecar.yaml', 'poolSize: 3\nreplication:\n  pauseWrites: false\n');
    const r = await runCli(['check-config', '--config', path, '--listen', ':7000', '--drain-timeout', '2s', '--shutdown-deadline', '60s'], {
      PIKA_SIDECAR_BACKEND_PASSWORD: 'hunter2-very-secret',
      PIKA_SIDECAR_LOG_LEVEL: 'debug',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^listen: 0\.0\.0\.0:7000 +# flag$/m);
    assert.match(r.stdout, /^poolSize: 3 +# file$/m);
    assert.match(r.stdout, /^logLevel: debug +# env$/m);
    assert.match(r.stdout, /^backendPassword: "\[set\]" +# env$/m);
    assert.match(r.stdout, /^ {2}pauseWrites: false +# file$/m);
    assert.match(r.stdout, /^ {2}drainTimeout: 2s +# flag$/m);
    assert.ok(!r.stdout.includes('hunter2') && !r.stderr.includes('hunter2'));
  });

  test('a bad value exits 1 with the one message on stderr and nothing on stdout', async () => {
    const r = await runCli(['check-config'], { PIKA_SIDECAR_DRAIN_TIMEOUT: '10 seconds' });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'invalid config: shutdown.drainTimeout = "10 seconds" (from PIKA_SIDECAR_DRAIN_TIMEOUT): ' +
        'expected a duration like 500ms, 2s, 1m or integer milliseconds\n',
    );
  });

  test('an unknown key in the file exits 1 naming the key', async (t) => {
    const path = tempFile(t, 'sidecar.yaml', 'shutdown:\n  drainTimeot: 5s\n');
    const r = await runCli(['check-config', '--config', path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^invalid config: unknown key shutdown\.drainTimeot .*did you mean shutdown\.drainTimeout\?\n$/);
  });

  test('--defaults prints the shipped config/pika-sidecar.yaml', async () => {
    const r = await runCli(['check-config', '--defaults']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(join(ROOT, 'config', 'pika-sidecar.yaml'), 'utf8'));
  });
});

describe('usage', () => {
  test('run with an invalid configuration exits 1 with the message and starts nothing', async () => {
    const r = await runCli(['run', '--listen', 'nope', '--admin', '127.0.0.1:0']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^invalid config: listen = "nope" \(from --listen\): expected host:port/);
  });

  test('the default command is run, and takes the same flags', async () => {
    const r = await runCli(['--pool-size', '5000']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^invalid config: poolSize = "5000" \(from --pool-size\)/);
  });

  test('an unknown flag or command exits 1 saying which', async () => {
    const flag = await runCli(['check-config', '--drain-timout', '5s']);
    assert.equal(flag.code, 1);
    assert.match(flag.stderr, /Unknown arguments?: drain-timout/);
    const command = await runCli(['drian']);
    assert.equal(command.code, 1);
    assert.match(command.stderr, /Unknown argument: drian/);
  });

  test('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  for (const command of ['run', 'check-config']) {
    test(`${command} --help lists every configuration flag with its default`, async () => {
      const r = await runCli([command, '--help']);
      assert.equal(r.code, 0, r.stderr);
      const help = r.stdout.replace(/\s+/g, ' ');
      for (const flag of ['config', ...CONFIG_KEYS.map((k) => k.flag)]) {
        assert.match(help, new RegExp(`--${flag} .*?\\[default: [^\\]]+\\]`), `--${flag}`);
      }
      // A key's older flag name is listed with it.
      assert.match(help, /--shutdown-drain-timeout .*?\(also --drain-timeout\) .*?\[default: 10s\]/);
    });
  }

  test('drain --help and status --help list their flags with defaults', async () => {
    const drain = await runCli(['drain', '--help']);
    assert.equal(drain.code, 0, drain.stderr);
    for (const flag of ['wait', 'admin', 'token', 'timeout']) assert.match(drain.stdout, new RegExp(`--${flag}\\b`));
    assert.match(drain.stdout.replace(/\s+/g, ' '), /--timeout .*?\[default: "?60s"?\]/);
    const status = await runCli(['status', '--help']);
    assert.equal(status.code, 0, status.stderr);
    for (const flag of ['watch', 'interval', 'admin', 'json']) assert.match(status.stdout, new RegExp(`--${flag}\\b`));
    assert.match(status.stdout.replace(/\s+/g, ' '), /--admin .*?\[default: http:\/\/127\.0\.0\.1:9121\]/);
  });
});

describe('drain', () => {
  test('with nothing listening it exits 1 saying the admin API cannot be reached', async () => {
    const port = await freePort();
    const r = await runCli(['drain', '--admin', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach the sidecar admin API at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });

  test('202 means the drain started: exit 0, one line, POST /drain', async (t) => {
    const stub = await startAdminStub(t, () => ({ status: 202, body: { accepted: true, status: { phase: 'intercept' } } }));
    const r = await runCli(['drain', '--admin', stub.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `drain started on the sidecar at ${stub.url} (phase intercept)\n`);
    assert.deepEqual(
      stub.seen.map((s) => `${s.method} ${s.url}`),
      ['POST /drain'],
    );
  });

  test('--wait asks for ?wait=true and 200 means drained: exit 0 (--admin may be :port)', async (t) => {
    const stub = await startAdminStub(t, () => ({ status: 200, body: { result: 'drained', status: { phase: 'drained' } } }));
    const ok = await runCli(['drain', '--wait', '--admin', `:${stub.port}`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /drained \(phase drained\)/);
    assert.deepEqual(
      stub.seen.map((s) => `${s.method} ${s.url}`),
      ['POST /drain?wait=true'],
    );
  });

  test('504 past the deadline exits 2; 403 and other statuses exit 1', async (t) => {
    const statuses = [504, 403, 500];
    const stub = await startAdminStub(t, (_req, i) => ({ status: statuses[i] ?? 500, body: { error: 'no' } }));
    const late = await runCli(['drain', '--wait', '--admin', stub.url]);
    assert.equal(late.code, 2);
    assert.match(late.stderr, /did not finish before the sidecar's deadline \(HTTP 504/);
    const forbidden = await runCli(['drain', '--admin', stub.url]);
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /refused .*HTTP 403.*--token/);
    const broken = await runCli(['drain', '--admin', stub.url]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /drain failed: HTTP 500 .*"error":"no"/);
  });

  test('the token goes in the Authorization header, from --token or the environment, and is never printed', async (t) => {
    const stub = await startAdminStub(t, () => ({ status: 202, body: {} }));
    const flag = await runCli(['drain', '--admin', stub.url, '--token', 'tok-from-flag']);
    const env = await runCli(['drain', '--admin', stub.url], { PIKA_SIDECAR_ADMIN_TOKEN: 'tok-from-env' });
    const none = await runCli(['drain', '--admin', stub.url]);
    assert.deepEqual([flag.code, env.code, none.code], [0, 0, 0]);
    assert.deepEqual(
      stub.seen.map((s) => s.authorization),
      ['Bearer tok-from-flag', 'Bearer tok-from-env', undefined],
    );
    for (const r of [flag, env]) assert.ok(!/tok-from/.test(r.stdout + r.stderr));
  });

  test('a sidecar that never answers is given up on after --timeout: exit 1', async (t) => {
    const stub = await startAdminStub(t, () => 'hang');
    const started = Date.now();
    const r = await runCli(['drain', '--wait', '--admin', stub.url, '--timeout', '300ms']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no answer from the sidecar admin API at .* within 300ms/);
    assert.ok(Date.now() - started < 10_000);
  });
});

describe('status', () => {
  test('prints a compact summary: phase, backend, sessions by mode, replicas, shutdown phases', async (t) => {
    const stub = await startAdminStub(t, () => ({ status: 200, body: STATUS_DRAINING }));
    const r = await runCli(['status', '--admin', stub.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^phase: +drain +\(not ready\)$/m);
    assert.match(r.stdout, /^backend: +127\.0\.0\.1:9221 up, kind pika, role master$/m);
    assert.match(r.stdout, /^sessions: +12 \(normal 10, blocked 2\); 3 commands in flight$/m);
    assert.match(r.stdout, /^replicas: +2 \(role master, not converged\)$/m);
    assert.match(r.stdout, /^ {2}10\.0\.0\.3:9221 +online +lag 1024 bytes +position 0:4096$/m);
    assert.match(r.stdout, /^ {2}10\.0\.0\.4:9221 +full_sync +lag \?$/m);
    assert.match(r.stdout, /^shutdown: +SIGTERM at 2025-01-01T00:00:00\.000Z, exit code pending$/m);
    assert.match(r.stdout, /^ {2}intercept +completed +6\.01 s$/m);
    assert.deepEqual(
      stub.seen.map((s) => `${s.method} ${s.url}`),
      ['GET /status'],
    );
  });

  test('missing fields print as ? instead of failing', async (t) => {
    const stub = await startAdminStub(t, () => ({ status: 200, body: { phase: 'running' } }));
    const r = await runCli(['status', '--admin', stub.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^phase: +running/m);
    assert.match(r.stdout, /^backend: +\?$/m);
    assert.match(r.stdout, /^sessions: +\?; \? commands in flight$/m);
    assert.match(r.stdout, /^shutdown: +not started$/m);
  });

  test('--json prints the raw JSON once', async (t) => {
    const stub = await startAdminStub(t, () => ({ status: 200, body: STATUS_DRAINING }));
    const r = await runCli(['status', '--json', '--admin', stub.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), STATUS_DRAINING);
  });

  test('a non-200 answer or an unreachable sidecar exits 1', async (t) => {
    const stub = await startAdminStub(t, () => ({ status: 404, body: { error: 'not found' } }));
    const r = await runCli(['status', '--admin', stub.url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /HTTP 404/);
    const port = await freePort();
    const gone = await runCli(['status', '--admin', `127.0.0.1:${port}`]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /cannot reach the sidecar admin API/);
  });

  test('a malformed --admin exits 1 saying what is expected, without a stack trace', async () => {
    for (const command of ['status', 'drain']) {
      const r = await runCli([command, '--admin', 'not an address']);
      assert.equal(r.code, 1, command);
      assert.match(r.stderr, /admin address "not an address": expected a URL like http:\/\/127\.0\.0\.1:9121 or host:port/);
      assert.ok(!r.stderr.includes('    at '), r.stderr);
    }
  });

  test('--watch refreshes until the phase is exited, in plain blocks when stdout is not a terminal', async (t) => {
    const phases = ['drain', 'replication_sync', 'exited'];
    const stub = await startAdminStub(t, (_req, i) => ({ status: 200, body: { ...STATUS_DRAINING, phase: phases[i] ?? 'exited' } }));
    const r = await runCli(['status', '--watch', '--interval', '50ms', '--admin', stub.url]);
    assert.equal(r.code, 0, r.stderr);
    const shown = [...r.stdout.matchAll(/^phase: +(\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(shown, phases);
    assert.ok(!r.stdout.includes('\x1b['), 'no terminal escapes in a pipe');
    assert.match(r.stdout, /sidecar exited\n$/);
  });

  test('--watch says the sidecar exited when its admin server goes away', async (t) => {
    const stub = await startAdminStub(t, (_req, i) => {
      // After the first answer the sidecar "exits": the server stops listening.
      if (i === 0) setImmediate(() => stub.server.close());
      return { status: 200, body: STATUS_DRAINING };
    });
    const r = await runCli(['status', '--watch', '--interval', '50ms', '--admin', stub.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^phase: +drain/m);
    assert.match(r.stdout, /sidecar exited\n$/);
  });
});
