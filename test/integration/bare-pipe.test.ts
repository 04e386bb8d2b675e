/**
 * The bench's baselines must be proxies, not shortcuts: each bare pipe mode (test/bench/bare-pipe.ts)
 * gives a client exactly the bytes a direct connection gets, for a pipeline of small commands and
 * values larger than every read buffer.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RedisServer } from '../../harness/redis-server.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { startBarePipe, type BarePipeName } from '../bench/targets.js';

const MODES: BarePipeName[] = ['pipe', 'pipe-data', 'pipe-onread', 'pipe-handle'];

/** SETs and GETs of values from 1 byte to 300 KB, PINGs in between, as one pipeline. */
function pipeline(tag: string): Buffer {
  const parts: Buffer[] = [];
  for (const [i, size] of [1, 100, 4096, 16_385, 65_537, 300_001].entries()) {
    const value = Buffer.alloc(size, 97 + i);
    parts.push(resp('SET', `${tag}:${i}`, value), resp('PING'), resp('GET', `${tag}:${i}`), resp('STRLEN', `${tag}:${i}`));
  }
  return Buffer.concat([...parts, resp('ECHO', 'end')]);
}

async function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  const c = await RawClient.connect(port);
  try {
    c.write(bytes);
    return await c.untilEndsWith('$3\r\nend\r\n', 20_000);
  } finally {
    c.close();
  }
}

describe('bench baselines: bare pipes', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.stop();
  });

  for (const mode of MODES) {
    test(`${mode} gives the client the bytes a direct connection gets`, async () => {
      const target = await startBarePipe(mode, redis.port);
      try {
        const direct = await exchange(redis.port, pipeline(mode));
        const piped = await exchange(target.port, pipeline(mode));
        assert.equal(piped.length, direct.length);
        assert.ok(piped.equals(direct), 'the same bytes');
      } finally {
        await target.stop();
      }
    });
  }
});
