/**
 * The backend's replies are read into a buffer each backend socket reuses (src/backend/read-buffer.ts).
 * A reply the client has not taken yet is still referenced by the client socket's write queue;
 * overwriting that buffer would corrupt replies silently. Here slow-reading clients, several at
 * once, get large pipelines of bulk values whose sizes straddle every read size, and what they
 * receive is compared byte for byte with what a direct connection gets for the same bytes.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RedisServer } from '../../harness/redis-server.js';
import { startSidecar, type TestSidecar } from '../support/sidecar.js';
import { resp } from '../../harness/raw-client.js';
import { prng } from '../support/prng.js';
import { READ_BUFFER_BYTES, READ_BUFFER_MAX_BYTES, readBufferSizes, readBuffersHandedOver } from '../../src/backend/read-buffer.js';
import { waitFor } from '../../harness/wait.js';
import type { Session } from '../../src/proxy/session.js';

/** Value sizes around the read buffer's sizes and the kernel's, and a few large ones. */
const SIZES = [
  0,
  1,
  13,
  4095,
  4096,
  4097,
  READ_BUFFER_BYTES - 5,
  READ_BUFFER_BYTES - 1,
  READ_BUFFER_BYTES,
  READ_BUFFER_BYTES + 1,
  32768,
  READ_BUFFER_MAX_BYTES - 9,
  READ_BUFFER_MAX_BYTES,
  READ_BUFFER_MAX_BYTES + 3,
  100_003,
  262_144,
  1_000_001,
];

/** Random bytes: a reused buffer overwritten under a queued write shows as a difference. */
function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** `bytes` cut in random-sized pieces. */
function cut(bytes: Buffer, rand: () => number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(rand() * 200_000));
    pieces.push(bytes.subarray(at, at + n));
    at += n;
  }
  return pieces;
}

/**
 * Connects, writes `pieces` (all at once, or with trickleMs > 0 one every trickleMs), and reads
 * until `total` bytes came back. `paceMs` > 0: after each chunk the socket is paused that long (a
 * client slower than loopback). `hold`: the client reads nothing until the last piece is written.
 */
function receive(
  port: number,
  pieces: Buffer[],
  total: number,
  paceMs: number,
  trickleMs = 0,
  hold = false,
  timeoutMs = 60_000,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    let writer: NodeJS.Timeout | undefined;
    const socket = net.connect({ port, host: '127.0.0.1' });
    const stop = (): void => {
      clearTimeout(timer);
      clearTimeout(writer);
    };
    const timer = setTimeout(() => {
      stop();
      socket.destroy();
      reject(new Error(`timed out after ${got} of ${total} bytes`));
    }, timeoutMs);
    socket.on('error', (err) => {
      stop();
      reject(err);
    });
    if (hold) socket.pause();
    socket.on('connect', () => {
      if (trickleMs === 0) {
        for (const p of pieces) socket.write(p);
        return;
      }
      let i = 0;
      const next = (): void => {
        socket.write(pieces[i++]!);
        if (i < pieces.length) writer = setTimeout(next, trickleMs);
        else if (hold) writer = setTimeout(() => socket.resume(), 50);
      };
      next();
    });
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= total) {
        stop();
        socket.destroy();
        resolve(Buffer.concat(parts));
        return;
      }
      if (paceMs > 0) {
        socket.pause();
        setTimeout(() => socket.resume(), paceMs);
      }
    });
  });
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

describe('replies read into a reused buffer reach slow clients intact', () => {
  let redis: RedisServer;
  let sidecar: TestSidecar;
  const seed = Number(process.env.FUZZ_SEED ?? 20261202);
  const rand = prng(seed);
  let pipeline: Buffer;
  let expected: Buffer;

  before(async () => {
    redis = await RedisServer.start();
    sidecar = await startSidecar(redis.port);
    // Values set directly; the pipeline reads them back and echoes more random payloads.
    const setup: Buffer[] = [];
    const keys: string[] = [];
    for (const [i, size] of SIZES.entries()) {
      keys.push(`rb:${i}`);
      setup.push(resp('SET', `rb:${i}`, randomBytes(rand, size)));
    }
    const parts: Buffer[] = [];
    for (let round = 0; round < 6; round++) {
      for (const i of SIZES.keys()) {
        const k = keys[Math.floor(rand() * keys.length)]!;
        parts.push(resp('GET', k));
        if (rand() < 0.5) parts.push(resp('PING'));
        if (rand() < 0.3) parts.push(resp('ECHO', randomBytes(rand, SIZES[(i * 7 + round) % SIZES.length]!)));
        if (rand() < 0.2) parts.push(resp('STRLEN', k), resp('GETRANGE', k, '5', String(READ_BUFFER_BYTES)));
        if (rand() < 0.1) parts.push(resp('GET', 'rb:missing'), resp('LPUSH', keys[0]!, 'x')); // a null and an error
      }
    }
    pipeline = Buffer.concat(parts);
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ port: redis.port, host: '127.0.0.1' }, () => s.write(Buffer.concat([...setup, resp('ECHO', 'loaded')])));
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.endsWith('$6\r\nloaded\r\n')) {
          s.destroy();
          resolve();
        }
      });
      s.on('error', reject);
    });
    // The direct answer, read as fast as possible: the reference.
    expected = await receiveAll(redis.port, pipeline);
    assert.ok(expected.length > 8 * 1024 * 1024, `a large reply stream (${expected.length} bytes)`);
  });
  after(async () => {
    await sidecar?.shutdown();
    await redis?.stop();
  });

  /** Everything the pipeline gets back, ended by a marker. */
  async function receiveAll(port: number, bytes: Buffer): Promise<Buffer> {
    const marker = resp('ECHO', 'the-end');
    const tail = Buffer.from('$7\r\nthe-end\r\n');
    const out = await new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      let last = Buffer.alloc(0);
      const s = net.connect({ port, host: '127.0.0.1' }, () => s.write(Buffer.concat([bytes, marker])));
      s.on('data', (d: Buffer) => {
        parts.push(d);
        last = Buffer.concat([last, d]).subarray(-tail.length);
        if (last.equals(tail)) {
          s.destroy();
          resolve(Buffer.concat(parts));
        }
      });
      s.on('error', reject);
    });
    return out.subarray(0, out.length - tail.length);
  }

  /**
   * Three clients at once, two of them slow; each must get the direct bytes, and the slowest
   * session must have given read buffers away to queued client writes (the path under test ran).
   */
  async function threeClients(pipeline: Buffer, expected: Buffer): Promise<void> {
    const total = expected.length;
    const runs = await Promise.all([
      receive(sidecar.listen.port, cut(pipeline, prng(seed + 1)), total, 0),
      receive(sidecar.listen.port, cut(pipeline, prng(seed + 2)), total, 1),
      (async () => {
        const p = receive(sidecar.listen.port, cut(pipeline, prng(seed + 3)), total, 3);
        let handed = 0;
        const watch = setInterval(() => {
          for (const s of sidecar.registry.all()) handed = Math.max(handed, readBuffersHandedOver(s.backend));
        }, 20);
        try {
          return { out: await p, handed };
        } finally {
          clearInterval(watch);
        }
      })(),
    ]);
    const outs = [runs[0], runs[1], runs[2].out];
    for (const [i, out] of outs.entries()) {
      const at = firstDifference(out, expected);
      assert.ok(
        out.length === expected.length && at === expected.length,
        `client ${i}: ${out.length} bytes, first difference at byte ${at} of ${expected.length} (seed ${seed})`,
      );
    }
    assert.ok(runs[2].handed > 0, 'the slow client queued writes that kept read buffers');
  }

  test('bulk values of every size around the read sizes, pipelined', async () => {
    await threeClients(pipeline, expected);
  });

  test('many small replies: reads below the write-queue limit of the client keep coming while writes are queued', async () => {
    const parts: Buffer[] = [];
    for (let i = 0; i < 60_000; i++) {
      const r = rand();
      if (r < 0.5) parts.push(resp('ECHO', randomBytes(rand, 1 + Math.floor(rand() * 300))));
      else if (r < 0.8) parts.push(resp('GET', `rb:${1 + Math.floor(rand() * 4)}`));
      else if (r < 0.9) parts.push(resp('PING'));
      else parts.push(resp('STRLEN', `rb:${Math.floor(rand() * SIZES.length)}`));
    }
    const small = Buffer.concat(parts);
    const direct = await receiveAll(redis.port, small);
    assert.ok(direct.length > 8 * 1024 * 1024, `a large reply stream (${direct.length} bytes)`);
    await threeClients(small, direct);
  });

  test('requests trickling in while slow clients are behind: small reads arrive while their writes are queued', async () => {
    // Clients that read nothing for a while: 4 MB of backlog first (1 MB values), then small
    // commands, one a millisecond (each reply one small read). Once the kernel's buffers towards
    // a client are full (about 4 MB on loopback), small replies queue behind each other until the
    // queue is over the client socket's high-water mark and the backend is paused: the reads at
    // risk. Three such clients at once: three such windows.
    const pieces: Buffer[] = [Buffer.concat(Array.from({ length: 4 }, () => resp('GET', `rb:${SIZES.length - 1}`)))];
    for (let i = 0; i < 1500; i++)
      pieces.push(
        rand() < 0.9 ? resp('ECHO', randomBytes(rand, 1 + Math.floor(rand() * 1200))) : resp('GET', `rb:${1 + Math.floor(rand() * 4)}`),
      );
    const direct = await receiveAll(redis.port, Buffer.concat(pieces));
    const outs = await Promise.all([0, 1, 2].map(() => receive(sidecar.listen.port, pieces, direct.length, 0, 1, true)));
    for (const [i, out] of outs.entries()) {
      const at = firstDifference(out, direct);
      assert.ok(
        out.length === direct.length && at === direct.length,
        `client ${i}: ${out.length} bytes, first difference at byte ${at} of ${direct.length} (seed ${seed})`,
      );
    }
    assert.ok(
      sidecar.registry.all().some((s) => readBuffersHandedOver(s.backend) > 0),
      'queued client writes kept read buffers (the path under test ran)',
    );
  });

  /** Every 2 ms, for at most 5 s: the corked cases wait for one read at a time. */
  const until = (cond: () => boolean, what: string) => waitFor(cond, { timeoutMs: 5000, intervalMs: 2, what });

  /** A client of the sidecar that has had its +PONG, its session, and what it receives from then on. */
  async function pingedClient(): Promise<{ socket: net.Socket; session: Session; received: (n: number) => Promise<Buffer> }> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port: sidecar.listen.port, host: '127.0.0.1' }, () => resolve(s));
      s.on('error', reject);
    });
    let parts: Buffer[] = [];
    let got = 0;
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
    });
    let session: Session | undefined;
    try {
      socket.write(resp('PING'));
      await until(() => got === 7, '+PONG');
      parts = [];
      got = 0;
      session = sidecar.registry.all().find((s) => s.client.remotePort === socket.localPort);
      assert.ok(session, 'the session of this client');
    } catch (err) {
      socket.destroy();
      throw err;
    }
    const received = async (n: number): Promise<Buffer> => {
      await until(() => got >= n, 'every reply');
      return Buffer.concat(parts);
    };
    return { socket, session, received };
  }

  test('a client socket whose writes are all queued (corked): every small reply read after another keeps its bytes', async () => {
    // Deterministic: the session's client socket is corked, so every write stays queued (as one
    // that did not complete synchronously does) while the backend goes on reading, one reply a
    // read; then uncorked. A reused buffer overwritten under the queue shows in every reply.
    const commands = Array.from({ length: 40 }, () => resp('ECHO', randomBytes(rand, 1 + Math.floor(rand() * 300))));
    const direct = await receiveAll(redis.port, Buffer.concat(commands));
    const { socket, session, received } = await pingedClient();
    try {
      session.client.cork();
      const handedBefore = readBuffersHandedOver(session.backend);
      let replied = 0;
      for (const [i, c] of commands.entries()) {
        socket.write(c);
        // Each reply its own read: wait until the session has queued it.
        await until(() => session.client.writableLength > replied, `reply ${i} queued`);
        replied = session.client.writableLength;
      }
      assert.equal(readBuffersHandedOver(session.backend) - handedBefore, commands.length, 'each queued reply kept its read buffer');
      session.client.uncork();
      const out = await received(direct.length);
      assert.equal(out.length, direct.length);
      assert.equal(firstDifference(out, direct), direct.length, 'the replies as a direct connection gets them');
    } finally {
      socket.destroy();
    }
  });

  test('the client direction: with the backend socket corked, every small command read after another reaches the backend intact', async () => {
    const commands = Array.from({ length: 40 }, () => resp('ECHO', randomBytes(rand, 1 + Math.floor(rand() * 300))));
    const direct = await receiveAll(redis.port, Buffer.concat(commands));
    const { socket, session, received } = await pingedClient();
    try {
      assert.ok(readBuffersHandedOver(session.client) >= 0, 'this Node reads accepted sockets into reused buffers (probeAcceptedReuse)');
      session.backend.cork();
      const handedBefore = readBuffersHandedOver(session.client);
      let queued = 0;
      for (const [i, c] of commands.entries()) {
        socket.write(c);
        await until(() => session.backend.writableLength > queued, `command ${i} queued`);
        queued = session.backend.writableLength;
      }
      assert.equal(readBuffersHandedOver(session.client) - handedBefore, commands.length, 'each queued command kept its read buffer');
      session.backend.uncork();
      const out = await received(direct.length);
      assert.equal(out.length, direct.length);
      assert.equal(firstDifference(out, direct), direct.length, 'the replies as a direct connection gets them');
    } finally {
      socket.destroy();
    }
  });
  test('a session that carried a large value is small again once it goes back to small commands', async () => {
    const value = randomBytes(rand, 1_000_001);
    const { socket, session, received } = await pingedClient();
    try {
      const sizes = (): unknown => ({ client: readBufferSizes(session.client), backend: readBufferSizes(session.backend) });
      const small = { now: READ_BUFFER_BYTES, peak: READ_BUFFER_BYTES };
      assert.deepEqual(sizes(), { client: small, backend: small }, 'read buffers start small');
      socket.write(Buffer.concat([resp('SET', 'read-buffer:large', value), resp('GET', 'read-buffer:large')]));
      const head = `+OK\r\n$${value.length}\r\n`.length;
      const reply = await received(head + value.length + 2);
      assert.equal(firstDifference(reply.subarray(head, head + value.length), value), value.length, 'the value as sent');
      socket.write(resp('PING'));
      await received(reply.length + 7);
      const grownThenSmall = { now: READ_BUFFER_BYTES, peak: READ_BUFFER_MAX_BYTES };
      assert.deepEqual(sizes(), { client: grownThenSmall, backend: grownThenSmall }, 'full reads grew them, a small read shrank them');
    } finally {
      socket.destroy();
    }
  });
});
