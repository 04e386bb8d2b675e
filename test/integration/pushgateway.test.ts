/** The optional final push of the shutdown metrics (a scrape may miss a short shutdown). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { redisWithSidecar } from '../support/sidecar.js';
import { deferrer } from '../support/defer.js';

test('release pushes the final shutdown metrics to the configured pushgateway once', async (t) => {
  const defer = deferrer(t);
  const pushes: Array<{ method: string; url: string; body: string }> = [];
  // A stand-in for a Prometheus Pushgateway on loopback: records what it is sent.
  const gateway = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      pushes.push({ method: req.method ?? '', url: req.url ?? '', body });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  defer(() => new Promise((r) => gateway.close(r)));
  const port = (gateway.address() as net.AddressInfo).port;
  const { sc } = await redisWithSidecar(defer, { sidecar: { shutdown: { pushgatewayUrl: `http://pusher:gw-Secret-42@127.0.0.1:${port}` } as never } });
  assert.equal(await sc.shutdown(), 0);
  assert.equal(pushes.length, 1);
  const push = pushes[0]!;
  assert.equal(push.method, 'POST');
  assert.match(push.url, /^\/metrics\/job\/pika-sidecar\/instance\//);
  assert.match(push.body, /pika_sidecar_shutdown_phase\{phase="drained"\} 1/);
  assert.match(push.body, /pika_sidecar_shutdown_phase_outcomes_total\{phase="replication_sync",outcome="skipped"\} 1/);
  assert.ok(sc.logs.some((l) => l.msg === 'pushed the final metrics to the pushgateway'));
  assert.ok(!sc.rawLogs.join('\n').includes('gw-Secret-42'), "the pushgateway URL's password never reaches a log line");
});
