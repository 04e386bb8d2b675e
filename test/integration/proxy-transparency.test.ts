/**
 * I5: through the sidecar, a client sees exactly what it sees on a direct connection. Where the
 * reply is deterministic the bytes are compared with a direct connection's, byte for byte.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisServer } from '../../harness/redis-server.js';
import { startSidecar, type TestSidecar } from '../support/sidecar.js';
import { RawClient, exchange, resp } from '../../harness/raw-client.js';
import { waitFor } from '../../harness/wait.js';

describe('the sidecar is transparent to clients', () => {
  let redis: RedisServer;
  let sidecar: TestSidecar;
  let port: number;
  const clients: Redis[] = [];
  const client = (opts: Record<string, unknown> = {}) => {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 0, enableOfflineQueue: true, ...opts });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };

  before(async () => {
    redis = await RedisServer.start();
    sidecar = await startSidecar(redis.port);
    port = sidecar.listen.port;
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await sidecar?.shutdown();
    await redis?.stop();
  });

  /** The same bytes, direct and through the sidecar, give the same bytes back. */
  async function assertSameAsDirect(bytes: Buffer, setup?: Buffer): Promise<Buffer> {
    if (setup) await exchange(redis.port, setup);
    const direct = await exchange(redis.port, bytes);
    if (setup) await exchange(redis.port, setup);
    const via = await exchange(port, bytes);
    assert.equal(via.toString('latin1'), direct.toString('latin1'));
    return via;
  }

  test('a pipeline of 10,000 commands written in one write gets 10,000 replies, in order', async () => {
    const parts: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) parts.push(i % 2 === 0 ? resp('SET', `p:${i}`, `v${i}`) : resp('GET', `p:${i - 1}`));
    const out = await assertSameAsDirect(Buffer.concat(parts));
    assert.equal(
      out
        .toString()
        .split('\r\n')
        .filter((l) => l === '+OK').length,
      5000,
    );
    assert.match(out.toString(), /\$5\r\nv9998\r\n$/);
  });

  test('a 64 MiB value is stored and read back intact', async () => {
    const big = Buffer.alloc(64 * 1024 * 1024, 'x');
    big.write('head', 0);
    big.write('tail', big.length - 4);
    const c = client();
    assert.equal(await c.set('big', big), 'OK');
    const back = await c.getBuffer('big');
    assert.ok(back && back.equals(big));
    await c.del('big');
  });

  test('inline commands work as on a direct connection', async () => {
    await assertSameAsDirect(Buffer.from('PING\r\nSET inl 1\r\nGET inl\nINCR inl\r\n\r\nECHO "a b"\r\n'));
  });

  test('MULTI/EXEC, DISCARD and WATCH behave as on a direct connection', async () => {
    await assertSameAsDirect(
      Buffer.concat([
        resp('MULTI'),
        resp('SET', 'tx', '1'),
        resp('INCR', 'tx'),
        resp('EXEC'),
        resp('MULTI'),
        resp('SET', 'tx', '9'),
        resp('DISCARD'),
        resp('GET', 'tx'),
      ]),
      resp('DEL', 'tx'),
    );
    const a = client();
    const b = client();
    await a.set('w', '1');
    await a.watch('w');
    await b.set('w', '2');
    const res = await a.multi().set('w', '3').exec();
    assert.equal(res, null, 'a watched key changed by another client aborts EXEC');
    assert.equal(await a.get('w'), '2');
  });

  test('SELECT and CLIENT SETNAME keep per-connection state', async () => {
    await assertSameAsDirect(
      Buffer.concat([
        resp('SELECT', '3'),
        resp('SET', 'db3', 'x'),
        resp('SELECT', '0'),
        resp('EXISTS', 'db3'),
        resp('CLIENT', 'SETNAME', 'me'),
        resp('CLIENT', 'GETNAME'),
      ]),
    );
  });

  test('CLIENT REPLY OFF, SKIP and ON suppress exactly the replies they do directly', async () => {
    await assertSameAsDirect(
      Buffer.concat([
        resp('CLIENT', 'REPLY', 'OFF'),
        resp('SET', 'r1', '1'),
        resp('CLIENT', 'REPLY', 'ON'),
        resp('CLIENT', 'REPLY', 'SKIP'),
        resp('SET', 'r2', '2'),
        resp('GET', 'r1'),
      ]),
    );
  });

  test('HELLO 3 switches to RESP3 and push frames (client tracking) arrive as on a direct connection', async () => {
    const bytes = Buffer.concat([
      resp('HELLO', '3'),
      resp('CLIENT', 'TRACKING', 'ON'),
      resp('GET', 'trk'),
      resp('SET', 'trk', '1'),
      resp('PING'),
    ]);
    await exchange(redis.port, resp('DEL', 'trk'));
    const direct = await exchange(redis.port, bytes);
    await exchange(redis.port, resp('DEL', 'trk'));
    const via = await exchange(port, bytes);
    const norm = (b: Buffer) => b.toString('latin1').replace(/\$2\r\nid\r\n:\d+/, 'ID');
    assert.equal(norm(via), norm(direct));
    assert.match(via.toString(), />2\r\n\$10\r\ninvalidate/);
  });

  test('SUBSCRIBE and PSUBSCRIBE receive messages published by another client', async () => {
    const sub = client();
    const got: string[] = [];
    sub.on('message', (ch: string, m: string) => got.push(`${ch}:${m}`));
    sub.on('pmessage', (_p: string, ch: string, m: string) => got.push(`p ${ch}:${m}`));
    await sub.subscribe('news');
    await sub.psubscribe('ne*');
    await waitFor(() => sidecar.registry.byMode().subscribed >= 1, { what: 'a subscribed session' });
    const pub = client();
    await pub.publish('news', 'hello');
    await waitFor(() => got.length >= 2, { what: 'two messages' });
    assert.deepEqual(got.sort(), ['news:hello', 'p news:hello']);
  });

  test('a RESP2 subscriber pinging while messages flow gets every pong; its count returns to 0 and UNSUBSCRIBE ends the mode', async () => {
    const sub = await RawClient.connect(port);
    sub.write(resp('SUBSCRIBE', 'flood'));
    await sub.untilEndsWith(':1\r\n');
    const pub = client();
    const publishing = (async () => {
      for (let i = 0; i < 20; i++) {
        const p = pub.pipeline();
        for (let j = 0; j < 100; j++) p.publish('flood', `m${i}.${j}`);
        await p.exec();
      }
    })();
    for (let i = 0; i < 50; i++) sub.write(resp('PING', `p${i}`));
    await publishing;
    const count = (b: Buffer, re: RegExp) => b.toString().match(re)?.length ?? 0;
    await sub.until(
      (b) => count(b, /\$4\r\npong\r\n/g) === 50 && count(b, /\$7\r\nmessage\r\n/g) === 2000,
      10_000,
      'every pong and message',
    );
    const text = sub.received.toString();
    assert.equal(text.match(/\$4\r\npong\r\n/g)?.length, 50, 'every PING answered');
    assert.equal(text.match(/\$7\r\nmessage\r\n/g)?.length, 2000, 'every message delivered');
    const session = sidecar.registry.all().find((x) => x.client.remotePort === sub.socket.localPort)!;
    assert.deepEqual([session.mode, session.inflight], ['subscribed', 0]);
    sub.write(resp('UNSUBSCRIBE'));
    await waitFor(() => session.mode === 'normal', { what: 'the session to leave subscribed mode' });
    sub.close();
  });

  test('MONITOR streams the commands of other clients', async () => {
    const mon = await RawClient.connect(port);
    mon.write(resp('MONITOR'));
    // The sidecar's own health PINGs may be monitored right after the +OK.
    await mon.until((b) => b.subarray(0, 5).toString() === '+OK\r\n');
    await waitFor(() => sidecar.registry.byMode().monitor >= 1, { what: 'a monitor session' });
    await client().set('monitored', 'yes');
    await mon.until((b) => b.includes('"monitored"'));
    mon.close();
  });

  test('BLPOP times out with a nil reply, and is served by a later push', async () => {
    const c = client();
    assert.equal(await c.blpop('empty-list', 0.1), null);
    const waiting = c.blpop('queue', 5);
    await waitFor(() => sidecar.registry.byMode().blocked >= 1, { what: 'a blocked session' });
    await client().rpush('queue', 'job');
    assert.deepEqual(await waiting, ['queue', 'job']);
    await waitFor(() => sidecar.registry.byMode().blocked === 0, { what: 'the session to leave blocked mode' });
  });

  test('QUIT answers +OK and closes the connection', async () => {
    const c = await RawClient.connect(port);
    c.write(resp('QUIT'));
    await c.untilEndsWith('+OK\r\n');
    await c.waitClosed();
  });

  test('/metrics and /status describe sessions by mode and commands', async () => {
    const text = await (await fetch(`http://127.0.0.1:${sidecar.admin.port}/metrics`)).text();
    for (const name of [
      'pika_sidecar_inflight_commands',
      'pika_sidecar_client_connections{mode="normal"}',
      'pika_sidecar_commands_total',
      'pika_sidecar_backend_up 1',
      'pika_sidecar_process_cpu_seconds_total',
    ]) {
      assert.ok(text.includes(name), `metrics include ${name}`);
    }
    const status = (await (await fetch(`http://127.0.0.1:${sidecar.admin.port}/status`)).json()) as Record<string, unknown>;
    assert.equal(status.phase, 'running');
    assert.equal(status.ready, true);
    assert.ok(typeof (status.sessions as { total: number }).total === 'number');
    assert.equal((await fetch(`http://127.0.0.1:${sidecar.admin.port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${sidecar.admin.port}/readyz`)).status, 200);
  });
});
