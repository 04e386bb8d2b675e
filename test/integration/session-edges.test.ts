/**
 * The session's byte-level edge cases against a real redis-server: commands split across writes
 * (at every byte boundary), denied commands, inline limits, protocol errors after valid commands,
 * backpressure on a client that stops reading, RESP3 pushes in subscribed mode, CLIENT REPLY SKIP.
 * Each test asserts what the client receives, byte for byte, and what the backend did.
 *
 * To make a split deterministic the test waits, between writes, until the session's request
 * scanner has consumed every byte written so far (RequestScanner.bytesScanned), so each part is
 * its own chunk on the sidecar's side whatever TCP does.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Redis } from 'ioredis';
import { RedisServer } from '../../harness/redis-server.js';
import { redisWithSidecar, type TestSidecar } from '../support/sidecar.js';
import { RawClient, exchange, resp } from '../../harness/raw-client.js';
import { waitFor } from '../../harness/wait.js';
import { deferrer } from '../support/defer.js';
import type { DeepPartial } from '../support/sidecar.js';
import type { SidecarConfig } from '../../src/config/schema.js';
import type { Session } from '../../src/proxy/session.js';
import type { RequestScanner } from '../../src/resp/request-scanner.js';

/** The session serving the raw client (matched on the client's local port). */
async function sessionOf(sc: TestSidecar, c: RawClient | net.Socket): Promise<Session> {
  const socket = c instanceof RawClient ? c.socket : c;
  return waitFor(() => sc.registry.all().find((s) => s.client.remotePort === socket.localPort), {
    intervalMs: 2,
    what: 'the session of the test client',
  });
}

function scanned(s: Session): number {
  return (s as unknown as { requests: RequestScanner }).requests.bytesScanned;
}

/** Writes the parts one by one, each only after the sidecar has scanned every byte before it. */
async function writeParts(c: RawClient, s: Session, parts: Buffer[]): Promise<void> {
  let total = scanned(s);
  for (const p of parts) {
    c.write(p);
    total += p.length;
    const want = total;
    await waitFor(() => scanned(s) >= want || s.status !== 'open', {
      intervalMs: 1,
      timeoutMs: 5000,
      what: `the sidecar to scan ${want} bytes`,
    });
  }
}

/** Every way of cutting `bytes` in two. */
function* twoWaySplits(bytes: Buffer): Generator<[number, Buffer[]]> {
  for (let i = 1; i < bytes.length; i++) yield [i, [bytes.subarray(0, i), bytes.subarray(i)]];
}

async function commandStats(redis: RedisServer): Promise<string> {
  return redis.info('commandstats');
}

interface Fixture {
  redis: RedisServer;
  sc: TestSidecar;
  port: number;
  direct: Redis;
}

/** One redis-server and a sidecar in front of it, for one test; stopped sidecar first, then redis. */
async function setup(t: TestContext, over: DeepPartial<SidecarConfig> = {}): Promise<Fixture> {
  const defer = deferrer(t);
  const { redis, sc } = await redisWithSidecar(defer, {
    sidecar: {
      maxBulkBytes: 1024 * 1024,
      ...over,
      // Short budgets: a test that broke its backend still ends its sidecar quickly.
      shutdown: { drainTimeoutMs: 2000, closeTimeoutMs: 1000, replicationTimeoutMs: 2000, releaseTimeoutMs: 1000, ...over.shutdown },
    },
  });
  const direct = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  direct.on('error', () => undefined);
  defer(() => direct.disconnect());
  return { redis, sc, port: sc.listen.port, direct };
}

/**
 * Sends `parts` on a fresh connection (split deterministically) and reads until `until` holds: a
 * byte count, or the suffix the last reply ends with.
 */
async function splitExchange(f: Fixture, parts: Buffer[], until: number | string, timeoutMs = 2000): Promise<Buffer> {
  const c = await RawClient.connect(f.port);
  try {
    const s = await sessionOf(f.sc, c);
    await writeParts(c, s, parts);
    const out =
      typeof until === 'number'
        ? await c.until((b) => b.length >= until, timeoutMs, `${until} reply bytes`)
        : await c.until((b) => b.toString('latin1').endsWith(until), timeoutMs, JSON.stringify(until));
    await waitFor(() => s.inflight === 0, { timeoutMs, what: 'in flight back to 0' });
    return out;
  } finally {
    c.close();
  }
}

describe('session byte-level edges', () => {
  test('a command name split across three writes is forwarded whole', async (t) => {
    const f = await setup(t);
    const out = await splitExchange(
      f,
      [Buffer.from('*3\r\n$3\r\nS'), Buffer.from('E'), Buffer.from('T\r\n$7\r\ne:split\r\n$2\r\nok\r\n'), resp('GET', 'e:split')],
      13,
    );
    assert.equal(out.toString(), '+OK\r\n$2\r\nok\r\n');
    assert.equal(await f.direct.get('e:split'), 'ok');
  });

  test('a denied command split inside its name, in writes of its own, is refused and never reaches the backend; the commands around it keep their order', async (t) => {
    const f = await setup(t);
    const c = await RawClient.connect(f.port);
    t.after(() => c.close());
    const s = await sessionOf(f.sc, c);
    c.write(resp('SET', 'e:b', 'x'));
    await c.untilEndsWith('+OK\r\n');
    await writeParts(c, s, [
      Buffer.from('*2\r\n$8\r\nSHUT'),
      Buffer.from('DO'),
      Buffer.from('WN\r\n$6\r\nNO'),
      Buffer.concat([Buffer.from('SAVE\r\n'), resp('APPEND', 'e:b', 'y')]),
    ]);
    const got = (await c.untilEndsWith(':2\r\n')).toString();
    assert.match(got, /^\+OK\r\n-ERR command 'shutdown' is denied by pika-sidecar[^\r\n]*\r\n:2\r\n$/);
    assert.equal(await f.direct.get('e:b'), 'xy');
    assert.ok(await f.redis.ping(), 'the backend is still running');
    assert.doesNotMatch(await commandStats(f.redis), /cmdstat_shutdown/, 'the backend never ran SHUTDOWN');
    assert.equal(s.inflight, 0);
  });

  test('a complete command in the same write as the start of a denied command is answered, before the refusal', async (t) => {
    const f = await setup(t);
    const out = await splitExchange(
      f,
      [
        Buffer.concat([resp('SET', 'e:c', 'x'), Buffer.from('*2\r\n$8\r\nSHUT')]),
        Buffer.concat([Buffer.from('DOWN\r\n$6\r\nNOSAVE\r\n'), resp('GET', 'e:c')]),
      ],
      '$1\r\nx\r\n',
    );
    assert.match(out.toString(), /^\+OK\r\n-ERR command 'shutdown' is denied[^\r\n]*\r\n\$1\r\nx\r\n$/);
    assert.equal(await f.direct.get('e:c'), 'x');
  });

  test('a denied command earlier in a write that ends inside the next command name never reaches the backend, and nothing runs twice', async (t) => {
    const f = await setup(t);
    await f.direct.set('e:n', '0');
    const out = await splitExchange(
      f,
      [
        Buffer.concat([resp('INCR', 'e:n'), resp('SHUTDOWN', 'NOSAVE'), resp('INCR', 'e:n'), Buffer.from('*2\r\n$3\r\nGE')]),
        Buffer.from('T\r\n$3\r\ne:n\r\n'),
      ],
      '$1\r\n2\r\n',
    );
    assert.match(out.toString(), /^:1\r\n-ERR command 'shutdown' is denied[^\r\n]*\r\n:2\r\n\$1\r\n2\r\n$/);
    assert.ok(await f.redis.ping().catch(() => false), 'the backend is still running');
    assert.equal(await f.direct.get('e:n'), '2', 'each INCR ran once');
  });

  test('a pipeline with denied commands gives the same bytes whole and split at every byte boundary; SHUTDOWN never reaches the backend', async (t) => {
    const f = await setup(t);
    const pipeline = Buffer.concat([
      resp('SET', 'e:a', '1'),
      resp('SHUTDOWN', 'NOSAVE'),
      resp('INCR', 'e:a'),
      resp('shutdown'),
      resp('GET', 'e:a'),
    ]);
    const whole = await exchange(f.port, pipeline);
    assert.match(
      whole.toString(),
      /^\+OK\r\n-ERR command 'shutdown' is denied by pika-sidecar[^\r\n]*\r\n:2\r\n-ERR command 'shutdown' is denied[^\r\n]*\r\n\$1\r\n2\r\n$/,
    );
    for (const [at, parts] of twoWaySplits(pipeline)) {
      // Stops at the first split that goes wrong: with the bug, the backend may be gone after it.
      const out = await splitExchange(f, parts, whole.length).catch((e: Error) => Buffer.from(`(${e.message})`));
      assert.equal(out.toString(), whole.toString(), `split at byte ${at}`);
      assert.ok(await f.redis.ping().catch(() => false), `the backend is still running after the split at byte ${at}`);
    }
    assert.doesNotMatch(await commandStats(f.redis), /cmdstat_shutdown/, 'the backend never ran SHUTDOWN');
  });

  test('a pipeline of allowed commands gives the same bytes whole and split at every byte boundary', async (t) => {
    const f = await setup(t);
    const pipeline = Buffer.concat([
      resp('SET', 'e:w', '1'),
      resp('INCR', 'e:w'),
      resp('APPEND', 'e:w', 'x'),
      Buffer.from('*0\r\n'),
      resp('GET', 'e:w'),
      resp('PING'),
    ]);
    const whole = await exchange(f.port, pipeline);
    assert.equal(whole.toString(), '+OK\r\n:2\r\n:2\r\n$2\r\n2x\r\n+PONG\r\n');
    for (const [at, parts] of twoWaySplits(pipeline)) {
      const out = await splitExchange(f, parts, whole.length);
      assert.equal(out.toString(), whole.toString(), `split at byte ${at}`);
    }
  });

  test('inline commands split at every byte boundary give the same bytes as whole', async (t) => {
    const f = await setup(t);
    const pipeline = Buffer.from('SET e:inl hello\r\nAPPEND e:inl " w"\r\n\r\nGET e:inl\nECHO \'a b\'\r\n');
    const whole = await exchange(f.port, pipeline);
    assert.equal(whole.toString(), '+OK\r\n:7\r\n$7\r\nhello w\r\n$3\r\na b\r\n');
    for (const [at, parts] of twoWaySplits(pipeline)) {
      const out = await splitExchange(f, parts, whole.length);
      assert.equal(out.toString(), whole.toString(), `split at byte ${at}`);
    }
  });

  test('an inline line of exactly the 64 KiB limit, arriving in pieces, is forwarded whole', async (t) => {
    const f = await setup(t);
    const head = 'SET e:inline-big ';
    const value = 'v'.repeat(64 * 1024 - head.length - 1); // the line up to its '\n' is 65,536 bytes with the '\r'
    const line = Buffer.from(`${head}${value}\r\n`);
    assert.equal(line.length, 64 * 1024 + 1);
    const parts = [
      line.subarray(0, 1000),
      line.subarray(1000, 40_000),
      line.subarray(40_000, line.length - 1),
      line.subarray(line.length - 1),
    ];
    const out = await splitExchange(f, [...parts, resp('STRLEN', 'e:inline-big')], 5 + 8);
    assert.equal(out.toString(), `+OK\r\n:${value.length}\r\n`);
    assert.equal(await f.direct.get('e:inline-big'), value);
  });

  /** Sends `bytes` on a fresh connection and returns everything received until the server closes it. */
  async function untilClosed(p: number, bytes: Buffer): Promise<Buffer> {
    const c = await RawClient.connect(p);
    try {
      c.write(bytes);
      await c.waitClosed(3000);
      return c.received;
    } finally {
      c.close();
    }
  }

  test('an inline line over the limit gets the protocol error, as on a direct connection', async (t) => {
    const f = await setup(t);
    const bytes = Buffer.from(`SET e:too-big ${'x'.repeat(70_000)}`);
    const via = await untilClosed(f.port, bytes);
    assert.equal(via.toString(), '-ERR Protocol error: too big inline request\r\n');
    assert.equal(via.toString(), (await untilClosed(f.redis.port, bytes)).toString());
    assert.equal(await f.direct.exists('e:too-big'), 0);
  });

  test('an inline line over the limit after a valid command in the same write: the valid one is answered first', async (t) => {
    const f = await setup(t);
    const bytes = Buffer.concat([resp('SET', 'e:before-big', '1'), Buffer.from(`SET e:too-big ${'x'.repeat(70_000)}`)]);
    const via = await untilClosed(f.port, bytes);
    assert.equal(via.toString(), '+OK\r\n-ERR Protocol error: too big inline request\r\n');
    assert.equal(await f.direct.get('e:before-big'), '1');
  });

  const malformed: Array<[string, Buffer]> = [
    ['a negative bulk length', Buffer.from('*2\r\n$3\r\nGET\r\n$-5\r\n')],
    ['a non-numeric multibulk length', Buffer.from('*x\r\n')],
    ["an element that does not start with '$'", Buffer.from('*1\r\n:3\r\nfoo\r\n')],
    ['unbalanced quotes in an inline command', Buffer.from('SET e:q "open\r\n')],
  ];
  for (const [what, bad] of malformed) {
    test(`${what} after several valid commands: their replies, then exactly one protocol error line, then close — as on a direct connection`, async (t) => {
      const f = await setup(t);
      const valid = Buffer.concat([resp('SET', 'e:pv', '1'), resp('INCR', 'e:pv'), resp('GET', 'e:pv'), Buffer.from('PING\r\n')]);
      const after = resp('SET', 'e:after-bad', 'never');
      const run = async (p: number, split: boolean): Promise<string> => {
        await f.direct.del('e:pv', 'e:after-bad');
        const c = await RawClient.connect(p);
        try {
          if (split)
            await writeParts(c, await sessionOf(f.sc, c), [valid, Buffer.concat([bad, after])]); // the bad frame in a later write
          else c.write(Buffer.concat([valid, bad, after]));
          await c.waitClosed();
          return c.received.toString('latin1');
        } finally {
          c.close();
        }
      };
      const directOut = await run(f.redis.port, false);
      const via = await run(f.port, false);
      assert.match(via, /^\+OK\r\n:2\r\n\$1\r\n2\r\n\+PONG\r\n-ERR Protocol error: [^\r\n]+\r\n$/);
      assert.equal(via, directOut);
      assert.equal(await f.direct.exists('e:after-bad'), 0, 'nothing after the bad frame ran');
      assert.equal(await f.direct.get('e:pv'), '2', 'everything before it ran');
      assert.equal(await run(f.port, true), directOut, 'the same when the bad frame comes in its own write');
      assert.equal(await f.direct.exists('e:after-bad'), 0);
    });
  }

  test("a protocol error naming a non-ASCII byte is byte-identical to the backend's", async (t) => {
    const f = await setup(t);
    const bytes = Buffer.from([...Buffer.from('*1\r\n'), 0xff, ...Buffer.from('3\r\nfoo\r\n')]);
    const directOut = await untilClosed(f.redis.port, bytes);
    const via = await untilClosed(f.port, bytes);
    assert.equal(via.toString('hex'), directOut.toString('hex'));
  });

  test('a client that stops reading a 200k-reply pipeline gets every reply in order afterwards, and the sidecar buffers only a bounded amount meanwhile', async (t) => {
    const f = await setup(t);
    const keys = 10;
    const valueSize = 1024;
    const n = 200_000;
    const values = Array.from({ length: keys }, (_, k) => Buffer.alloc(valueSize, 0x61 + k));
    await Promise.all(values.map((v, k) => f.direct.set(`bp:${k}`, v)));
    // The whole reply stream is this period repeated n / keys times.
    const period = Buffer.concat(values.map((v) => Buffer.concat([Buffer.from(`$${valueSize}\r\n`), v, Buffer.from('\r\n')])));
    const expectedTotal = (period.length / keys) * n;
    const requests = Buffer.concat(Array.from({ length: keys }, (_, k) => resp('GET', `bp:${k}`)));
    const pipeline = Buffer.concat(Array.from({ length: n / keys }, () => requests));

    const socket = net.connect(f.port, '127.0.0.1');
    t.after(() => socket.destroy());
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.pause();
    socket.write(pipeline);
    const s = await sessionOf(f.sc, socket);
    await waitFor(() => s.backend.isPaused(), { timeoutMs: 20_000, what: 'the sidecar to stop reading the backend' });
    const buffered = s.client.writableLength;
    const readSoFar = s.backend.bytesRead;
    t.diagnostic(
      `while the client is not reading: ${buffered} bytes queued in the sidecar, ${readSoFar} of ${expectedTotal} reply bytes read from the backend`,
    );
    assert.ok(buffered < 2 * 1024 * 1024, `the sidecar queues ${buffered} bytes for a client that does not read`);
    assert.ok(readSoFar < expectedTotal / 4, 'the sidecar stopped reading the backend long before the end of the replies');
    assert.ok(s.inflight > 0);

    let received = 0;
    let mismatchAt = -1;
    const done = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        if (mismatchAt < 0) {
          let i = 0;
          while (i < chunk.length) {
            const off = (received + i) % period.length;
            const len = Math.min(chunk.length - i, period.length - off);
            if (!chunk.subarray(i, i + len).equals(period.subarray(off, off + len))) {
              mismatchAt = received + i;
              break;
            }
            i += len;
          }
        }
        received += chunk.length;
        if (received >= expectedTotal) resolve();
      });
    });
    socket.resume();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for every reply: ${received} of ${expectedTotal} bytes`)), 45_000);
    });
    try {
      await Promise.race([done, deadline]);
    } finally {
      clearTimeout(timer);
    }
    assert.equal(mismatchAt, -1, `the reply stream differs from the expected one at byte ${mismatchAt}`);
    assert.equal(received, expectedTotal);
    await waitFor(() => s.inflight === 0, { what: 'in flight back to 0' });
  });

  test('RESP3: HELLO 3, SUBSCRIBE, then PING in subscribed mode gets its reply; pushes are not counted; bytes as on a direct connection', async (t) => {
    const f = await setup(t);
    const transcript = async (p: number): Promise<string> => {
      const c = await RawClient.connect(p);
      try {
        const session = p === f.port ? await sessionOf(f.sc, c) : undefined;
        c.write(Buffer.concat([resp('HELLO', '3'), resp('SUBSCRIBE', 'e:ch'), resp('PING')]));
        await c.untilEndsWith('+PONG\r\n');
        if (session) {
          assert.equal(session.mode, 'subscribed');
          assert.equal(session.inflight, 0, 'the subscribe confirmation push is not a reply');
        }
        assert.match(await f.redis.raw('PUBLISH e:ch hello'), /^:1\r\n$/);
        await c.untilEndsWith('$5\r\nhello\r\n');
        c.write(Buffer.concat([resp('PING', 'in-sub'), resp('UNSUBSCRIBE', 'e:ch'), resp('PING')]));
        await c.untilEndsWith('+PONG\r\n');
        if (session) await waitFor(() => session.inflight === 0, { what: 'in flight back to 0' });
        return c.received.toString('latin1').replace(/(\$2\r\nid\r\n:)\d+/, '$1<id>');
      } finally {
        c.close();
      }
    };
    const directOut = await transcript(f.redis.port);
    const via = await transcript(f.port);
    assert.equal(via, directOut);
    assert.match(via, /^%7\r\n/, 'HELLO 3 answered with a RESP3 map');
    assert.match(
      via,
      />3\r\n\$9\r\nsubscribe\r\n\$4\r\ne:ch\r\n:1\r\n\+PONG\r\n>3\r\n\$7\r\nmessage\r\n\$4\r\ne:ch\r\n\$5\r\nhello\r\n\$6\r\nin-sub\r\n>3\r\n\$11\r\nunsubscribe\r\n/,
    );
  });

  test('CLIENT REPLY SKIP inside a pipeline suppresses exactly the next reply, as on a direct connection, and in flight returns to 0', async (t) => {
    const f = await setup(t);
    const pipeline = Buffer.concat([
      resp('SET', 'e:s', '1'),
      resp('CLIENT', 'REPLY', 'SKIP'),
      resp('SET', 'e:t', '2'),
      resp('INCR', 'e:s'),
      resp('CLIENT', 'REPLY', 'SKIP'),
      resp('CLIENT', 'REPLY', 'SKIP'),
      resp('GET', 'e:t'),
      resp('CLIENT', 'REPLY', 'SKIP'),
      resp('CLIENT', 'REPLY', 'ON'),
      resp('GET', 'e:s'),
    ]);
    const directOut = await exchange(f.redis.port, pipeline);
    assert.equal(directOut.toString(), '+OK\r\n:2\r\n+OK\r\n$1\r\n2\r\n');
    await f.direct.del('e:s', 'e:t');
    const c = await RawClient.connect(f.port);
    t.after(() => c.close());
    const s = await sessionOf(f.sc, c);
    // Split inside an argument, so every command name is known in its chunk.
    await writeParts(c, s, [pipeline.subarray(0, 60), pipeline.subarray(60)]);
    const out = await c.untilEndsWith('$1\r\n2\r\n');
    assert.equal(out.toString(), directOut.toString());
    await waitFor(() => s.inflight === 0 && s.mode === 'normal', { what: 'in flight 0 and mode normal' });
    assert.equal(f.sc.registry.inflight(), 0);
    assert.equal(await f.direct.get('e:t'), '2', 'the command whose reply was skipped ran');
  });
});
