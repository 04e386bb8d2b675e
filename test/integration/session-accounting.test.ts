/**
 * The six ways the reply bookkeeping broke (issue 7), each against a real redis-server, each
 * compared with what a direct client gets:
 * 1. a client's disconnect ends its session and frees its backend connection, whatever is counted;
 * 2. an unsubscribe confirmation (while not subscribed) is not the reply of the EVAL after it;
 * 3. deeply nested replies pass through byte for byte and the connection stays usable;
 * 4. a refusal inside MULTI aborts the transaction exactly like a queue-time error;
 * 5. the sidecar's own replies obey CLIENT REPLY OFF/SKIP;
 * 6. exit 0 means nothing was abandoned: a backend cut with replies owed is exit 2, named in the report.
 * Plus issue 9's backpressure on the sidecar's own output: a client that floods refused commands
 * and never reads stops being read.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killChild, spawnTracked } from '../../harness/processes.js';
import { RedisServer, redisServerArgs } from '../../harness/redis-server.js';
import { redisWithSidecar, type TestSidecar } from '../support/sidecar.js';
import { RawClient, exchange, resp } from '../../harness/raw-client.js';
import { waitFor } from '../../harness/wait.js';
import { deferrer } from '../support/defer.js';
import type { Session } from '../../src/proxy/session.js';

/** The sidecar's refusal lines and the backend's unknown-command lines, made comparable. */
function normalise(b: Buffer): string {
  return b
    .toString('latin1')
    .replace(/-ERR command '[^']*' is denied by pika-sidecar[^\r]*\r\n/g, '-REFUSED\r\n')
    .replace(/-ERR unknown command '[^']*', with args beginning with:[^\r]*\r\n/g, '-REFUSED\r\n');
}

function scanned(s: Session): number {
  return (s as unknown as { requests: { bytesScanned: number } }).requests.bytesScanned;
}

async function sessionOf(sc: TestSidecar, c: RawClient): Promise<Session> {
  return waitFor(() => sc.registry.all().find((s) => s.client.remotePort === c.socket.localPort), {
    intervalMs: 2,
    what: 'the session of the test client',
  });
}

/** The backend connections redis-server has open, by the client side's port. */
async function backendPorts(redis: RedisServer): Promise<Set<number>> {
  const list = await redis.raw('CLIENT LIST');
  return new Set([...list.matchAll(/addr=127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])));
}

async function setup(t: TestContext, sidecar = {}) {
  const defer = deferrer(t);
  const { redis, sc } = await redisWithSidecar(defer, { sidecar });
  return { defer, redis, sc };
}

describe('reply accounting against a real redis-server', () => {
  for (const [name, commands] of [
    [
      'CLIENT REPLY OFF, MULTI, CLIENT REPLY ON, EXEC, PING',
      [['CLIENT', 'REPLY', 'OFF'], ['MULTI'], ['CLIENT', 'REPLY', 'ON'], ['EXEC'], ['PING']],
    ],
    [
      'CLIENT REPLY OFF, SUBSCRIBE a, CLIENT REPLY ON, PING',
      [['CLIENT', 'REPLY', 'OFF'], ['SUBSCRIBE', 'a'], ['CLIENT', 'REPLY', 'ON'], ['PING']],
    ],
  ] as const) {
    test(`1. after ${name} in one write, the client's disconnect closes the session and its backend connection`, async (t) => {
      const f = await setup(t);
      const direct = await RawClient.connect(f.redis.port);
      t.after(() => direct.close());
      const bytes = Buffer.concat(commands.map((c) => resp(...c)));
      direct.write(bytes);
      const c = await RawClient.connect(f.sc.listen.port);
      t.after(() => c.close());
      const s = await sessionOf(f.sc, c);
      const backendPort = s.backendLocalPort!;
      c.write(bytes);
      // Whatever the backend answers, the client leaves: FIN first, as a client that is done does.
      await waitFor(async () => (await backendPorts(f.redis)).has(backendPort), { what: 'the backend connection' });
      c.socket.end();
      await waitFor(() => s.status === 'closed', { timeoutMs: 5000, what: 'the session to close after the client left' });
      await waitFor(async () => !(await backendPorts(f.redis)).has(backendPort), { what: 'the backend connection to be freed' });
      assert.equal(f.sc.registry.size, 0);
      await c.waitClosed();
    });
  }

  test('2. an UNSUBSCRIBE confirmation while not subscribed is not the reply of the EVAL after it: SIGTERM during the EVAL still delivers it', async (t) => {
    const f = await setup(t);
    const c = await RawClient.connect(f.sc.listen.port);
    t.after(() => c.close());
    const script =
      "local t0 = redis.call('TIME'); repeat local t = redis.call('TIME') until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 1500000; redis.call('SET', KEYS[1], 'written'); return 'eval-done'";
    // Pipelined: redis-server answers both when the EVAL ends. The shutdown starts once the sidecar
    // has forwarded both (from then on the EVAL's reply is owed).
    const s = await sessionOf(f.sc, c);
    const bytes = Buffer.concat([resp('UNSUBSCRIBE'), resp('EVAL', script, '1', 'acct:eval')]);
    c.write(bytes);
    await waitFor(() => scanned(s) >= bytes.length, { intervalMs: 1, what: 'both commands forwarded' });
    const code = await f.sc.shutdown('test');
    const got = c.received.toString('latin1');
    assert.equal(got, '*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n$9\r\neval-done\r\n', 'the EVAL reply reached the client');
    assert.equal(await f.redis.raw('GET acct:eval'), '$7\r\nwritten\r\n');
    assert.equal(code, 0, 'nothing was abandoned');
    assert.equal(f.sc.coordinator.report?.['commandsAbandoned'], 0);
  });

  test('3. a recursive Lua table (hundreds of nested arrays, then an error) passes through byte for byte and the connection stays usable', async (t) => {
    const f = await setup(t);
    const cmd = resp('EVAL', 'local a = {}; local b = {a}; a[1] = b; return a', '0');
    const direct = await exchange(f.redis.port, Buffer.concat([cmd, resp('PING')]));
    const through = await exchange(f.sc.listen.port, Buffer.concat([cmd, resp('PING')]));
    assert.ok(direct.toString('latin1').split('*1\r\n').length > 129, 'the server nests deeper than the old limit of 128');
    assert.equal(through.toString('latin1'), direct.toString('latin1'));
    assert.ok(through.toString('latin1').endsWith('+PONG\r\n'));
  });

  test('4. a refused command inside MULTI aborts the transaction like a queue-time error: EXECABORT, nothing runs, WATCH state as direct', async (t) => {
    const f = await setup(t);
    const seq = (refused: string) =>
      Buffer.concat([
        resp('SET', 'tx:k', '1'),
        resp('WATCH', 'tx:w'),
        resp('MULTI'),
        resp('SET', 'tx:k', '2'),
        resp(refused),
        resp('EXEC'),
        resp('GET', 'tx:k'),
        // The aborted EXEC unwatched tx:w: a transaction after it runs even though tx:w changes.
        resp('SET', 'tx:w', 'changed'),
        resp('MULTI'),
        resp('SET', 'tx:k', '3'),
        resp('EXEC'),
        resp('GET', 'tx:k'),
      ]);
    const direct = await exchange(f.redis.port, seq('NOSUCHCOMMAND'));
    const through = await exchange(f.sc.listen.port, seq('SHUTDOWN'));
    assert.match(through.toString('latin1'), /-ERR command 'shutdown' is denied by pika-sidecar/);
    assert.match(through.toString('latin1'), /-EXECABORT Transaction discarded because of previous errors\.\r\n\$1\r\n1\r\n/);
    assert.equal(normalise(through), normalise(direct));
    assert.equal(await f.redis.raw('GET tx:k'), '$1\r\n3\r\n');
  });

  test("5. the sidecar's refusals obey CLIENT REPLY OFF and SKIP exactly as the backend's replies do", async (t) => {
    const f = await setup(t);
    const seq = (refused: string) =>
      Buffer.concat([
        resp('CLIENT', 'REPLY', 'OFF'),
        resp(refused),
        resp('CLIENT', 'REPLY', 'ON'),
        resp('CLIENT', 'REPLY', 'SKIP'),
        resp(refused),
        resp('ECHO', 'after-skip'),
        resp('CLIENT', 'REPLY', 'SKIP'),
        resp('ECHO', 'skipped'),
        resp(refused),
      ]);
    const direct = await exchange(f.redis.port, seq('NOSUCHCOMMAND'));
    const through = await exchange(f.sc.listen.port, seq('SHUTDOWN'));
    assert.equal(normalise(through), '+OK\r\n$10\r\nafter-skip\r\n-REFUSED\r\n');
    assert.equal(normalise(through), normalise(direct));
  });

  test('6. a backend killed and restarted on its port during the drain, with a reply owed: exit 2 and the report names the abandoned command', async (t) => {
    const f = await setup(t, { shutdown: { drainTimeoutMs: 10_000 } });
    const c = await RawClient.connect(f.sc.listen.port);
    t.after(() => c.close());
    const script =
      "local t0 = redis.call('TIME'); repeat local t = redis.call('TIME') until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 3000000; return 1";
    c.write(resp('EVAL', script, '0'));
    const s = await sessionOf(f.sc, c);
    await waitFor(() => s.inflight === 1, { what: 'the EVAL in flight' });
    const exit = f.sc.shutdown('test');
    await waitFor(() => f.sc.coordinator.state === 'drain', { what: 'the drain' });
    const port = f.redis.port;
    await f.redis.kill();
    // A new redis-server on the same port: every later phase finds a healthy backend.
    const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-redis-'));
    const again = spawnTracked('redis-server', redisServerArgs(port, dir, 'notice'), { stdio: 'ignore' });
    t.after(async () => {
      await killChild(again);
      rmSync(dir, { recursive: true, force: true });
    });
    const code = await exit;
    const report = f.sc.coordinator.report!;
    assert.equal(report['commandsAbandoned'], 1);
    assert.equal((report['sessionsClosed'] as Record<string, number>)['backend_closed'], 1);
    assert.equal(code, 2, 'an abandoned reply is never exit 0');
    assert.match(String((report['dataAtRisk'] as string[]).join(' ')), /1 command abandoned/);
  });

  test('a client that floods refused commands and never reads stops being read: the sidecar buffers a bounded amount', async (t) => {
    const f = await setup(t);
    const c = await RawClient.connect(f.sc.listen.port);
    t.after(() => c.close());
    c.socket.pause(); // never reads
    const s = await sessionOf(f.sc, c);
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => resp('SHUTDOWN')));
    // Write until the client's own socket holds 2 MiB the sidecar has not taken (it stopped
    // reading); bounded by 3,000 batches (54 MB) for a sidecar that never stops.
    let written = 0;
    let batches = 0;
    while (c.socket.writableLength < 2 * 1024 * 1024 && batches < 3000) {
      c.socket.write(batch);
      written += batch.length;
      batches++;
      if (batches % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok(c.socket.writableLength >= 2 * 1024 * 1024, `the sidecar kept reading everything (${written} bytes written)`);
    assert.ok(s.client.isPaused(), 'the sidecar stopped reading the client');
    assert.ok(s.client.writableLength < 1024 * 1024, `bounded output buffered for the client: ${s.client.writableLength} bytes`);
    const taken = scanned(s);
    assert.ok(taken < written, `the sidecar stopped short of everything written (${taken} of ${written})`);
    // Reading again resumes the flow.
    c.socket.resume();
    await waitFor(() => scanned(s) > taken, { what: 'the client to be read again' });
  });
});
