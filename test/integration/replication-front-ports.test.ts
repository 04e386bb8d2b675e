/**
 * The fronted Pika replication ports on real loopback sockets: FrontPorts listening on P+2000 and
 * P+10001, fake raw servers standing in for the backend's Q+2000 and Q+10001 (Pika cannot run here;
 * these ports carry protobuf and rsync2, which the sidecar never reads, so any byte stream is the
 * real case for it). Bytes verified by SHA-256, buffering read from the link itself, counts from
 * the metrics registry.
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Registry } from 'prom-client';
import { FrontPorts } from '../../src/replication/front-ports.js';
import { shiftedPort } from '../../src/replication/pika-ports.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { isSidecarError } from '../../src/errors.js';
import { captureLogs } from '../support/log-capture.js';
import { freePikaPort } from '../../harness/ports.js';
import { RawServer, closed, connectRaw, readAll, writeRandom } from '../support/raw-stream.js';
import { waitFor } from '../../harness/wait.js';

const MiB = 1024 * 1024;

interface Rig {
  front: FrontPorts;
  metrics: Metrics;
  logs: Array<Record<string, unknown>>;
  /** The sidecar's binlog and rsync ports. */
  binlog: number;
  rsync: number;
  /** The backend's client port (nothing listens there: only +2000 and +10001 matter here). */
  backendPort: number;
}

async function rig(t: TestContext, opts: { flushMs?: number } = {}): Promise<Rig> {
  const listenPort = await freePikaPort();
  const backendPort = await freePikaPort();
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const { logger, logs } = captureLogs('debug');
  const front = new FrontPorts({
    listen: { host: '127.0.0.1', port: listenPort },
    backend: { host: '127.0.0.1', port: backendPort },
    connectTimeoutMs: 2000,
    logger,
    metrics,
    ...(opts.flushMs === undefined ? {} : { flushMs: opts.flushMs }),
  });
  await front.listen();
  t.after(() => front.destroy());
  return { front, metrics, logs, binlog: shiftedPort(listenPort, 'binlog'), rsync: shiftedPort(listenPort, 'rsync'), backendPort };
}

async function backendServer(t: TestContext, r: Rig, role: 'binlog' | 'rsync', onConnection?: (s: net.Socket) => void): Promise<RawServer> {
  const srv = await RawServer.start(shiftedPort(r.backendPort, role), onConnection);
  t.after(() => srv.close());
  return srv;
}

async function metricValue(m: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = m.registry.getSingleMetric(`pika_sidecar_${name}`);
  assert.ok(metric, `metric ${name} exists`);
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return found?.value ?? Number.NaN;
}

async function connectClient(t: TestContext, port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  const s = await connectRaw(port, opts);
  t.after(() => s.destroy());
  return s;
}

describe('fronted Pika replication ports', () => {
  test('64 MiB each way through one binlog link arrive unchanged, and the metrics count every byte', async (t) => {
    const r = await rig(t);
    let backendSide: { sent: Promise<string>; got: Promise<{ digest: string; bytes: number }> } | undefined;
    await backendServer(t, r, 'binlog', (s) => {
      backendSide = { got: readAll(s).done, sent: writeRandom(s, 64 * MiB).done };
    });
    // Half-open: the replica keeps sending after the backend has sent its last byte and its FIN.
    const replica = await connectClient(t, r.binlog, { allowHalfOpen: true });
    const got = readAll(replica).done;
    const sent = writeRandom(replica, 64 * MiB).done;
    await waitFor(() => backendSide, { what: 'the link to reach the backend' });
    assert.equal(await metricValue(r.metrics, 'replication_front_links', { port: 'binlog' }), 1, 'one link open');

    const [toBackend, toReplica] = await Promise.all([backendSide!.got, got]);
    assert.equal(toBackend.bytes, 64 * MiB);
    assert.equal(toBackend.digest, await sent, 'the backend received exactly what the replica sent');
    assert.equal(toReplica.bytes, 64 * MiB);
    assert.equal(toReplica.digest, await backendSide!.sent, 'the replica received exactly what the backend sent');

    await closed(replica);
    await waitFor(async () => (await metricValue(r.metrics, 'replication_front_links', { port: 'binlog' })) === 0, {
      what: 'the link to close',
    });
    assert.equal(await metricValue(r.metrics, 'replication_front_bytes_total', { port: 'binlog', direction: 'to_backend' }), 64 * MiB);
    assert.equal(await metricValue(r.metrics, 'replication_front_bytes_total', { port: 'binlog', direction: 'to_replica' }), 64 * MiB);
    assert.equal(await metricValue(r.metrics, 'replication_front_bytes_total', { port: 'rsync', direction: 'to_replica' }), 0);
    const closedLine = r.logs.find((l) => l['msg'] === 'replication link on the binlog port closed (ended)');
    assert.ok(closedLine, 'the link logs how it ended');
  });

  test('a replica that stops reading makes the sidecar stop reading the backend: bounded buffering, then every byte once it resumes', async (t) => {
    const r = await rig(t);
    let writer: ReturnType<typeof writeRandom> | undefined;
    await backendServer(t, r, 'rsync', (s) => {
      writer = writeRandom(s, 64 * MiB);
    });
    const replica = await connectClient(t, r.rsync);
    replica.pause(); // the stalled reader
    await waitFor(() => writer, { what: 'the link to reach the backend' });
    await waitFor(() => r.front.activeLinks[0]?.isPaused('to_replica') && writer!.blocked, {
      what: 'the sidecar to pause the backend side while the backend waits for drain',
    });
    const link = r.front.activeLinks[0]!;
    // Node's write buffer (16 KiB high-water mark) plus the read or two (64 KiB each) that were in
    // hand when write() said stop; everything else waits in the kernel's socket buffers.
    const bound = 256 * 1024;
    assert.ok(link.peakBuffered <= bound, `the sidecar buffered at most ${link.peakBuffered} bytes (bound ${bound})`);
    assert.ok(link.bufferedBytes <= bound);
    assert.ok(writer!.written - link.bytes.to_replica >= 0);

    const reader = readAll(replica);
    replica.resume();
    const [got, digest] = await Promise.all([reader.done, writer!.done]);
    assert.equal(got.bytes, 64 * MiB);
    assert.equal(got.digest, digest, 'every byte arrived, in order');
    assert.ok(link.peakBuffered <= bound, `still bounded over the whole transfer: peak ${link.peakBuffered} bytes`);
  });

  test('a backend that stops reading makes the sidecar stop reading the replica, and the transfer completes once it resumes', async (t) => {
    const r = await rig(t);
    let backendSocket: net.Socket | undefined;
    await backendServer(t, r, 'binlog', (s) => {
      s.pause();
      backendSocket = s;
    });
    const replica = await connectClient(t, r.binlog);
    const writer = writeRandom(replica, 32 * MiB);
    await waitFor(() => r.front.activeLinks[0]?.isPaused('to_backend') && writer.blocked, {
      what: 'the sidecar to pause the replica side',
    });
    const link = r.front.activeLinks[0]!;
    assert.ok(link.peakBuffered <= 256 * 1024, `bounded: peak ${link.peakBuffered} bytes`);
    const reader = readAll(backendSocket!);
    backendSocket!.resume();
    const [got, digest] = await Promise.all([reader.done, writer.done]);
    assert.equal(got.digest, digest);
    assert.equal(got.bytes, 32 * MiB);
  });

  test('half-close is passed on: the replica ends its side, the backend still answers, then the link closes', async (t) => {
    const r = await rig(t);
    let backendSocket: net.Socket | undefined;
    let backendSawEnd = false;
    let backendGot = '';
    await backendServer(t, r, 'binlog', (s) => {
      backendSocket = s;
      s.on('data', (d: Buffer) => (backendGot += d.toString()));
      s.once('end', () => (backendSawEnd = true));
    });
    const replica = await connectClient(t, r.binlog);
    let received = '';
    replica.on('data', (d: Buffer) => (received += d.toString()));
    replica.end('last request');
    await waitFor(() => backendSawEnd, { what: "the replica's FIN at the backend" });
    assert.equal(backendGot, 'last request');
    assert.equal(await metricValue(r.metrics, 'replication_front_links', { port: 'binlog' }), 1, 'half-closed, still open');
    backendSocket!.end('late answer');
    await closed(replica);
    assert.equal(received, 'late answer', 'the answer after the half-close arrived');
    await waitFor(async () => (await metricValue(r.metrics, 'replication_front_links', { port: 'binlog' })) === 0, {
      what: 'the link to close',
    });
  });

  test('a reset on the backend side destroys the replica side too', async (t) => {
    const r = await rig(t);
    let backendSocket: net.Socket | undefined;
    await backendServer(t, r, 'binlog', (s) => (backendSocket = s));
    const replica = await connectClient(t, r.binlog);
    replica.on('error', () => undefined);
    await waitFor(() => backendSocket, { what: 'the link' });
    backendSocket!.resetAndDestroy();
    await closed(replica);
    await waitFor(() => r.logs.find((l) => l['msg'] === 'replication link on the binlog port closed (error)'), {
      what: 'the error close logged',
    });
    assert.equal(await metricValue(r.metrics, 'replication_front_links', { port: 'binlog' }), 0);
  });

  test('a replica that leaves destroys the backend side', async (t) => {
    const r = await rig(t);
    let backendSocket: net.Socket | undefined;
    await backendServer(t, r, 'rsync', (s) => (backendSocket = s));
    const replica = await connectClient(t, r.rsync);
    await waitFor(() => backendSocket, { what: 'the link' });
    replica.resetAndDestroy();
    await closed(backendSocket!);
    await waitFor(async () => (await metricValue(r.metrics, 'replication_front_links', { port: 'rsync' })) === 0, {
      what: 'the link to close',
    });
  });

  test("a backend port where nothing listens closes the replica's connection and counts it as backend_unreachable", async (t) => {
    const r = await rig(t);
    const replica = await connectClient(t, r.rsync);
    replica.on('error', () => undefined);
    await closed(replica);
    await waitFor(
      async () => (await metricValue(r.metrics, 'replication_front_refused_total', { port: 'rsync', reason: 'backend_unreachable' })) === 1,
      {
        what: 'the refusal counted',
      },
    );
    assert.equal(await metricValue(r.metrics, 'replication_front_links', { port: 'rsync' }), 0);
  });

  test('after refuse() new connections are closed at accept, counted and logged once with the peer, while an open link keeps flowing', async (t) => {
    const r = await rig(t);
    const backend = await backendServer(t, r, 'binlog'); // echo
    const open = await connectClient(t, r.binlog);
    let echoed = '';
    open.on('data', (d: Buffer) => (echoed += d.toString()));
    open.write('before;');
    await waitFor(() => echoed === 'before;', { what: 'the echo before refuse()' });

    r.front.refuse();
    const peers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const late = await connectClient(t, r.binlog);
      peers.push(`127.0.0.1:${late.localPort}`);
      late.on('error', () => undefined);
      late.write('must not arrive');
      await closed(late);
    }
    assert.equal(backend.accepted, 1, 'no refused connection reached the backend');
    assert.equal(await metricValue(r.metrics, 'replication_front_refused_total', { port: 'binlog', reason: 'shutting_down' }), 3);
    const lines = r.logs.filter((l) => l['event'] === 'front_refused_binlog_shutting_down');
    assert.equal(lines.length, 1, 'logged once; repeats go to the periodic summary');
    assert.equal(lines[0]!['peer'], peers[0], 'the log names the peer');

    open.write('after;');
    await waitFor(() => echoed === 'before;after;', { what: 'the echo after refuse()' });
    assert.equal(await metricValue(r.metrics, 'replication_front_links', { port: 'binlog' }), 1);
  });

  test('close() closes every link and both listeners, even a link whose replica stopped reading; it is idempotent', async (t) => {
    const r = await rig(t, { flushMs: 100 });
    await backendServer(t, r, 'binlog', (s) => void writeRandom(s, 64 * MiB).done.catch(() => undefined));
    await backendServer(t, r, 'rsync');
    const stalled = await connectClient(t, r.binlog);
    stalled.pause();
    stalled.on('error', () => undefined);
    const idle = await connectClient(t, r.rsync);
    await waitFor(() => r.front.activeLinks.length === 2 && r.front.activeLinks.some((l) => l.isPaused('to_replica')), {
      what: 'two links, one stalled',
    });

    const closing = r.front.close();
    assert.equal(r.front.close(), closing, 'joinable');
    await closing;
    assert.deepEqual(r.front.openLinks(), { binlog: 0, rsync: 0 });
    await closed(idle);
    stalled.resume();
    await closed(stalled);
    for (const port of [r.binlog, r.rsync]) {
      await assert.rejects(connectRaw(port), /ECONNREFUSED/, `port ${port} no longer listens`);
    }
    assert.ok(r.logs.some((l) => l['msg'] === 'closing the replication links on the fronted ports'));
  });

  test('a front port already in use is a start-up error naming the port and the option', async (t) => {
    const listenPort = await freePikaPort();
    const squatter = await RawServer.start(shiftedPort(listenPort, 'rsync'));
    t.after(() => squatter.close());
    const { logger } = captureLogs('silent');
    const front = new FrontPorts({
      listen: { host: '127.0.0.1', port: listenPort },
      backend: { host: '127.0.0.1', port: 9321 },
      connectTimeoutMs: 1000,
      logger,
      metrics: createMetrics(new Registry(), { defaultMetrics: false }),
    });
    t.after(() => front.destroy());
    await assert.rejects(front.listen(), (err: unknown) => {
      assert.ok(isSidecarError(err, 'ERR_STARTUP'));
      assert.match(
        err.message,
        new RegExp(
          `127\\.0\\.0\\.1:${shiftedPort(listenPort, 'rsync')} \\(rsync: listen port \\+10001, replication\\.frontPikaPorts\\): EADDRINUSE`,
        ),
      );
      return true;
    });
    // Nothing stays bound: the binlog port is free again.
    const probe = await RawServer.start(shiftedPort(listenPort, 'binlog'));
    await probe.close();
  });
});
