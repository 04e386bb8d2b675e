/**
 * Accounting in a subscribed session, against a backend whose bytes the test writes itself, so the
 * order of messages and replies is exact: a pub/sub message that arrives between a PING and its
 * reply must not be taken for that reply (I1: the drain would close the session before the pong).
 */
import { LogSummary } from '../../src/observability/log-summary.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Session } from '../../src/proxy/session.js';
import { CommandTable } from '../../src/resp/command-table.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { captureLogs } from '../support/log-capture.js';
import { deferrer } from '../support/defer.js';
import { waitFor } from '../../harness/wait.js';

/** A client ↔ session ↔ scripted backend, all on loopback. */
async function scripted(t: Parameters<typeof deferrer>[0]) {
  const defer = deferrer(t);
  let backendSide!: net.Socket;
  let toBackend = '';
  const fakeBackend = net.createServer((s) => {
    backendSide = s;
    s.on('data', (d: Buffer) => (toBackend += d.toString('latin1')));
  });
  fakeBackend.listen(0, '127.0.0.1');
  await once(fakeBackend, 'listening');
  defer(() => fakeBackend.close());
  let session!: Session;
  const front = net.createServer({ allowHalfOpen: true }, (client) => {
    const backend = net.connect((fakeBackend.address() as net.AddressInfo).port, '127.0.0.1');
    session = new Session(client, backend, {
      table: new CommandTable(['shutdown']),
      limits: { maxBulkBytes: 1 << 20, maxInlineBytes: 1 << 16 },
      hot: { commands: 0, protocolErrors: 0, deniedCommands: 0 },
      logger: captureLogs('silent').logger,
      events: new LogSummary(captureLogs('silent').logger),
      refuseReplication: () => false,
      onModeChange: () => undefined,
    });
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  defer(() => front.close());
  const client = await RawClient.connect((front.address() as net.AddressInfo).port);
  defer(() => client.close());
  await waitFor(() => session !== undefined && backendSide !== undefined, { what: 'the session' });
  defer(() => session.destroy());
  /** Client bytes, then waits until the backend has them. */
  const send = async (bytes: Buffer) => {
    const want = toBackend.length + bytes.length;
    client.write(bytes);
    await waitFor(() => toBackend.length >= want, { what: 'the bytes at the backend' });
  };
  /** Backend bytes, then waits until the client has them. */
  const reply = async (text: string) => {
    const want = client.received.length + Buffer.byteLength(text, 'latin1');
    backendSide.write(Buffer.from(text, 'latin1'));
    await client.until((b) => b.length >= want, 5000, 'the bytes at the client');
  };
  return { session: () => session, send, reply, client };
}

const MESSAGE = '*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n';

test('RESP2: a message between a PING and its pong is not counted as the reply; UNSUBSCRIBE to zero ends subscribed mode', async (t) => {
  const s = await scripted(t);
  await s.send(resp('SUBSCRIBE', 'ch'));
  await s.reply('*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n');
  assert.deepEqual([s.session().mode, s.session().inflight], ['subscribed', 0]);

  await s.send(resp('PING'));
  assert.equal(s.session().inflight, 1);
  await s.reply(MESSAGE);
  assert.equal(s.session().inflight, 1, 'a message is not the reply to PING');
  // A message cut inside its head by a chunk boundary is still a message.
  await s.reply(MESSAGE.slice(0, 9));
  await s.reply(MESSAGE.slice(9));
  assert.equal(s.session().inflight, 1);
  await s.reply('*2\r\n$4\r\npong\r\n$0\r\n\r\n');
  assert.equal(s.session().inflight, 0, 'the pong is');

  await s.send(resp('UNSUBSCRIBE'));
  await s.reply('*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n');
  assert.deepEqual([s.session().mode, s.session().inflight], ['normal', 0]);

  // Out of pub/sub context a reply that looks like a message is a reply.
  await s.send(resp('LRANGE', 'l', '0', '-1'));
  await s.reply(MESSAGE);
  assert.equal(s.session().inflight, 0);
});

test('RESP3: pushes are not replies, and an array reply that starts with "message" is one', async (t) => {
  const s = await scripted(t);
  await s.send(resp('HELLO', '3'));
  await s.reply('%1\r\n$5\r\nproto\r\n:3\r\n');
  await s.send(resp('SUBSCRIBE', 'ch'));
  await s.reply('>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n');
  assert.deepEqual([s.session().mode, s.session().inflight], ['subscribed', 0]);
  await s.send(resp('LRANGE', 'l', '0', '-1')); // RESP3 allows any command while subscribed
  await s.reply(`>${MESSAGE.slice(1)}`); // a message push first
  assert.equal(s.session().inflight, 1);
  await s.reply(MESSAGE); // the LRANGE reply: an array whose first element happens to be "message"
  assert.equal(s.session().inflight, 0);
  await s.send(resp('UNSUBSCRIBE', 'ch'));
  await s.reply('>3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n');
  assert.equal(s.session().mode, 'normal');
});

test('shard subscriptions: a zero count of plain subscriptions does not end subscribed mode', async (t) => {
  const s = await scripted(t);
  await s.send(resp('SSUBSCRIBE', 'sch'));
  await s.reply('*3\r\n$10\r\nssubscribe\r\n$3\r\nsch\r\n:1\r\n');
  await s.send(resp('UNSUBSCRIBE'));
  await s.reply('*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n');
  assert.equal(s.session().mode, 'subscribed', 'the shard channel is still subscribed');
  await s.reply('*3\r\n$8\r\nsmessage\r\n$3\r\nsch\r\n$1\r\nx\r\n');
  assert.equal(s.session().inflight, 0);
});

test('a HELLO 3 the backend refuses (as Pika does) leaves the session in RESP2: its array messages are still told from replies', async (t) => {
  const s = await scripted(t);
  await s.send(resp('HELLO', '3'));
  await s.reply("-ERR unknown command 'hello'\r\n");
  await s.send(resp('SUBSCRIBE', 'ch'));
  await s.reply('*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n');
  await s.send(resp('PING'));
  await s.reply(MESSAGE);
  assert.equal(s.session().inflight, 1, 'an array message in RESP2 is not the reply to PING');
  await s.reply('*2\r\n$4\r\npong\r\n$0\r\n\r\n');
  assert.equal(s.session().inflight, 0);
});
