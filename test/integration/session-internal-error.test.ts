/** A bug in the data path costs one session, never the process (I4: nothing brings it down). */
import { LogSummary } from '../../src/observability/log-summary.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Session, type SessionCloseInfo } from '../../src/proxy/session.js';
import { CommandTable } from '../../src/resp/command-table.js';
import { RedisServer } from '../../harness/redis-server.js';
import { RawClient, resp } from '../../harness/raw-client.js';
import { captureLogs } from '../support/log-capture.js';
import { deferrer } from '../support/defer.js';

test('an exception inside the session (here: a mode-change hook that throws) destroys that session only, with an error log', async (t) => {
  const defer = deferrer(t);
  const redis = await RedisServer.start();
  defer(() => redis.stop());
  const { logger, logs } = captureLogs('debug');
  const sessions: Session[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const backend = net.connect(redis.port, '127.0.0.1');
    sessions.push(
      new Session(client, backend, {
        table: new CommandTable(['shutdown']),
        limits: { maxBulkBytes: 1 << 20, maxInlineBytes: 1 << 16 },
        hot: { commands: 0, protocolErrors: 0, deniedCommands: 0 },
        logger,
        events: new LogSummary(logger),
        refuseReplication: () => false,
        onModeChange: () => {
          throw new Error('simulated bug in a mode-change hook');
        },
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(() => server.close());
  const port = (server.address() as net.AddressInfo).port;

  const healthy = await RawClient.connect(port);
  defer(() => healthy.close());
  healthy.write(resp('PING'));
  await healthy.untilEndsWith('+PONG\r\n');

  const victim = await RawClient.connect(port);
  defer(() => victim.close());
  const closed = new Promise<SessionCloseInfo>((resolve) => {
    const check = () => (sessions[1] ? sessions[1].once('closed', resolve) : setImmediate(check));
    check();
  });
  victim.write(resp('MULTI')); // a mode change: the hook throws inside the data handler
  await victim.waitClosed();
  assert.equal((await closed).reason, 'destroyed');
  assert.ok(
    logs.some((l) => l.msg === 'internal error in the data path; destroying this session only' && String(l.err).includes('simulated bug')),
  );

  healthy.take();
  healthy.write(resp('ECHO', 'still here'));
  await healthy.untilEndsWith('$10\r\nstill here\r\n');
});
