/**
 * The kubelet play: each deployment in deploy/kubernetes, terminated under write load the way the
 * kubelet terminates it, against real processes. The manifests are read, not copied: the sidecar
 * runs with its container's args and env (ConfigMap and Secret resolved, ports and paths made
 * local), and the hooks that run are the manifests' own.
 *
 *   redis-server master + replica    stand in for Pika (shutdown-timeout 0: like Pika, the master
 *                                    stops at once on SIGTERM and waits for no replica)
 *   node dist/src/cli.js run ...     the pika-sidecar container (image ENTRYPOINT from deploy/Dockerfile)
 *   write load                       pipelined SETs through the sidecar's client port; every +OK
 *                                    is an acknowledged write
 *   terminatePod                     preStop hooks, SIGTERM order, grace-period timer (test/support/kubelet/termination.ts)
 *
 * The fronted variant (deploy/kubernetes/fronted) also plays its replication ports: fake raw
 * servers echo bytes on the backend's +2000 and +10001, standing in for Pika's (redis-server has
 * none); a replica link through the sidecar's +2000 is opened before the deletion. Its ports are
 * fixed so that the manifests' +2000/+10001 relations hold on this machine too.
 *
 * Verdicts: the backend's preStop (the stop gate) returned success while the backend still ran,
 * and the backend got SIGTERM only after it; the sidecar exited 0 within the grace period; every
 * acknowledged write is on the replica, and nothing that was not acknowledged is. Fronted: the link
 * still flowed in replication_sync, a new one was refused then, and the sidecar closed it before
 * the backend got SIGTERM (after releasing it and before opening the stop gate, by its log).
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { httpGet } from '../../harness/http.js';
import net from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startReplicationGroup } from '../../harness/redis-server.js';
import { freePikaPort } from '../../harness/ports.js';
import { RawServer, closed, connectRaw } from '../support/raw-stream.js';
import { shiftedPort } from '../../src/replication/pika-ports.js';
import { waitFor } from '../../harness/wait.js';
import {
  BACKEND_CONTAINER,
  Deployment,
  LocalPod,
  SIDECAR_CONTAINER,
  formatTimeline,
  sidecarImage,
  terminatePod,
  type LocalProcess,
  type TerminationResult,
  type TimelineEvent,
  type Variant,
} from '../support/kubelet/index.js';
import { DRAINED_FILE } from '../../src/shutdown/trigger-file.js';

/** The only override of the manifests' configuration: endpoint removal needs no 5 s on one machine. */
const TEST_ARGS = ['--announce-delay', '300ms'];
const LOAD_CONNECTIONS = 8;
const LOAD_WINDOW = 8;
const ACKED_BEFORE_PAUSE = 1000;
/** Writes acknowledged while the replica is stopped: the lag the gate must wait out. */
const ACKED_WHILE_PAUSED = 1000;

// ---- write load: pipelined SETs, replies counted in order ----

class WriteConnection {
  /** replies[i]: the reply to `SET play:<id>:<i>` was +OK. */
  readonly replies: boolean[] = [];
  sent = 0;
  closedByPeer = false;
  isClosed = false;
  private pending = '';
  private stopped = false;

  private constructor(
    private readonly sock: net.Socket,
    readonly id: number,
    private readonly window: number,
  ) {
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('end', () => (this.closedByPeer = !this.stopped));
    sock.on('error', () => undefined);
    sock.once('close', () => (this.isClosed = true));
  }

  static open(port: number, id: number, window: number): Promise<WriteConnection> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        const conn = new WriteConnection(sock, id, window);
        conn.pump();
        resolve(conn);
      });
    });
  }

  key(i: number): string {
    return `play:${this.id}:${i}`;
  }

  get acked(): number {
    return this.replies.filter(Boolean).length;
  }

  private pump(): void {
    while (!this.stopped && !this.sock.destroyed && this.sent - this.replies.length < this.window) {
      const key = this.key(this.sent);
      const value = String(this.sent);
      this.sent += 1;
      this.sock.write(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`);
    }
  }

  private onData(chunk: string): void {
    this.pending += chunk;
    // SET answers one line: +OK or -ERR ...
    for (let nl = this.pending.indexOf('\r\n'); nl >= 0; nl = this.pending.indexOf('\r\n')) {
      this.replies.push(this.pending.slice(0, nl) === '+OK');
      this.pending = this.pending.slice(nl + 2);
    }
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.sock.destroy();
  }
}

class WriteLoad {
  private constructor(readonly connections: WriteConnection[]) {}

  static async start(port: number): Promise<WriteLoad> {
    const conns: WriteConnection[] = [];
    for (let id = 0; id < LOAD_CONNECTIONS; id++) conns.push(await WriteConnection.open(port, id, LOAD_WINDOW));
    return new WriteLoad(conns);
  }

  get acked(): number {
    return this.connections.reduce((n, c) => n + c.acked, 0);
  }

  get sent(): number {
    return this.connections.reduce((n, c) => n + c.sent, 0);
  }

  stop(): void {
    for (const c of this.connections) c.stop();
  }
}

/** Acknowledged writes missing (or wrong) on the replica, and how many keys it holds. */
async function checkReplica(port: number, load: WriteLoad): Promise<{ missing: string[]; keys: number }> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await redis.connect();
  try {
    const missing: string[] = [];
    for (const conn of load.connections) {
      const acked = conn.replies.flatMap((ok, i) => (ok ? [i] : []));
      for (let from = 0; from < acked.length; from += 1000) {
        const chunk = acked.slice(from, from + 1000);
        const values = await redis.mget(...chunk.map((i) => conn.key(i)));
        chunk.forEach((i, j) => {
          if (values[j] !== String(i)) missing.push(conn.key(i));
        });
      }
    }
    return { missing, keys: await redis.dbsize() };
  } finally {
    redis.disconnect();
  }
}

// ---- fronted variant: a replication link through the sidecar, echoed by a fake Pika +2000 ----

class EchoLink {
  private sent = '';
  private echoed = '';
  /** Date.now() when the sidecar's FIN (or a reset) arrived. */
  endedAt: number | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => (this.echoed += d.toString()));
    socket.on('error', () => undefined);
    const ended = () => (this.endedAt ??= Date.now());
    socket.once('end', ended);
    socket.once('close', ended);
  }

  static async open(port: number): Promise<EchoLink> {
    return new EchoLink(await connectRaw(port));
  }

  get intact(): boolean {
    return this.echoed === this.sent;
  }

  async roundTrip(word: string): Promise<void> {
    this.sent += `${word};`;
    this.socket.write(`${word};`);
    await waitFor(() => this.intact, { timeoutMs: 5000, what: `the echo of ${word} through the replication link` });
  }
}

// ---- small helpers ----

/** The sidecar's shutdown phase from GET /status. */
async function shutdownState(port: number): Promise<string> {
  const r = await httpGet('127.0.0.1', port, '/status');
  return String((JSON.parse(r.body) as { phase?: unknown }).phase);
}

function argAfter(args: readonly string[], flag: string): string {
  const i = args.indexOf(flag);
  const value = i < 0 ? undefined : args[i + 1];
  if (value === undefined) throw new Error(`the sidecar's args have no ${flag}`);
  return value;
}

function explain(result: TerminationResult | undefined, sidecar: LocalProcess): string {
  const timeline = result ? `\ntimeline:\n${formatTimeline(result.timeline)}` : '';
  return `${timeline}\nsidecar output (tail):\n${sidecar.output.split('\n').slice(-25).join('\n')}`;
}

// ---- the play ----

interface Scenario {
  variant: Variant;
  title: string;
  sigtermOrder?: readonly string[];
}

const SCENARIOS: Scenario[] = [
  {
    variant: 'regular',
    sigtermOrder: [SIDECAR_CONTAINER, BACKEND_CONTAINER],
    title:
      'regular containers with the sidecar signalled first: the gate holds the backend until replicas converge, and no acknowledged write is lost',
  },
  {
    variant: 'regular',
    sigtermOrder: [BACKEND_CONTAINER, SIDECAR_CONTAINER],
    title:
      'regular containers with the backend signalled first: the backend still stops only after the gate opened, and no acknowledged write is lost',
  },
  {
    variant: 'native-sidecar',
    title:
      'a native sidecar stopped after the backend: the backend preStop file gate holds the backend until replicas converge, and no acknowledged write is lost',
  },
  {
    variant: 'fronted',
    title:
      'the fronted layout: a replica link through the sidecar flows until replication_sync, new ones are refused, it is closed before the backend stops, and no acknowledged write is lost',
  },
];

async function play(t: TestContext, scenario: Scenario): Promise<void> {
  const dep = Deployment.load(scenario.variant);
  const grace = dep.podSpec.terminationGracePeriodSeconds;
  assert.ok(grace !== undefined && grace > 0, 'the pod spec sets terminationGracePeriodSeconds');
  const sidecarSpec = dep.container(SIDECAR_CONTAINER).container;

  const fronted = scenario.variant === 'fronted';
  // Fronted: the sidecar derives +2000/+10001 from the ports it is given, so they are chosen with those free.
  const { master, replicas } = await startReplicationGroup(1, {
    config: ['shutdown-timeout', '0'],
    ...(fronted ? { port: await freePikaPort() } : {}),
  });
  t.after(() => Promise.all([master.stop(), ...replicas.map((r) => r.stop())]));
  const replica = replicas[0]!;
  const fixedPorts = new Map([[dep.namedPort(BACKEND_CONTAINER, 'pika'), master.port]]);
  const fakes: RawServer[] = [];
  if (fronted) {
    const sidecarPort = await freePikaPort();
    fixedPorts.set(dep.namedPort(BACKEND_CONTAINER, 'pika-repl'), shiftedPort(master.port, 'binlog'));
    fixedPorts.set(dep.namedPort(BACKEND_CONTAINER, 'pika-rsync'), shiftedPort(master.port, 'rsync'));
    fixedPorts.set(dep.namedPort(SIDECAR_CONTAINER, 'client'), sidecarPort);
    fixedPorts.set(dep.namedPort(SIDECAR_CONTAINER, 'front-repl'), shiftedPort(sidecarPort, 'binlog'));
    fixedPorts.set(dep.namedPort(SIDECAR_CONTAINER, 'front-rsync'), shiftedPort(sidecarPort, 'rsync'));
    for (const role of ['binlog', 'rsync'] as const) fakes.push(await RawServer.start(shiftedPort(master.port, role)));
    t.after(() => Promise.all(fakes.map((f) => f.close())));
  }

  const workDir = mkdtempSync(join(tmpdir(), 'pika-sidecar-kubelet-'));
  t.after(() => rmSync(workDir, { recursive: true, force: true }));
  const pod = await LocalPod.create(dep, { workDir, fixedPorts, images: { [SIDECAR_CONTAINER]: sidecarImage() } });
  t.after(() => pod.destroy());
  pod.adopt(BACKEND_CONTAINER, master.proc);
  const sidecar = pod.start(SIDECAR_CONTAINER, TEST_ARGS);

  // The kubelet's readiness probe, from the manifest.
  const readiness = sidecarSpec.readinessProbe?.httpGet;
  assert.ok(readiness, 'the sidecar has an httpGet readiness probe');
  const readinessPort = pod.localPort(dep.resolvePort(SIDECAR_CONTAINER, readiness.port));
  await waitFor(
    async () => {
      if (!sidecar.running) throw new Error(`the sidecar exited: ${sidecar.output}`);
      return (await httpGet('127.0.0.1', readinessPort, readiness.path ?? '/')).status === 200;
    },
    { timeoutMs: 15_000, what: `sidecar readiness on ${readiness.path ?? '/'}` },
  );

  const load = await WriteLoad.start(pod.localPort(dep.namedPort(SIDECAR_CONTAINER, 'client')));
  t.after(() => load.stop());
  const link = fronted ? await EchoLink.open(pod.localPort(dep.namedPort(SIDECAR_CONTAINER, 'front-repl'))) : undefined;
  if (link) {
    t.after(() => link.socket.destroy());
    await link.roundTrip('before the deletion');
  }
  await waitFor(() => load.acked >= ACKED_BEFORE_PAUSE, { timeoutMs: 15_000, what: `${ACKED_BEFORE_PAUSE} acknowledged writes` });

  // Real lag: the replica stops executing while writes go on, and resumes only once the sidecar
  // is in replication_sync, with the backend's gate still closed.
  replica.pause();
  await waitFor(() => load.acked >= ACKED_BEFORE_PAUSE + ACKED_WHILE_PAUSED, {
    timeoutMs: 15_000,
    what: 'writes while the replica is paused',
  });
  const events: TimelineEvent[] = [];
  const terminating = terminatePod(pod, {
    gracePeriodSeconds: grace,
    ...(scenario.sigtermOrder ? { sigtermOrder: scenario.sigtermOrder } : {}),
    onEvent: (e) => events.push(e),
  });
  terminating.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
  const adminPort = pod.localPort(dep.namedPort(SIDECAR_CONTAINER, 'admin'));
  await waitFor(async () => (await shutdownState(adminPort)) === 'replication_sync', {
    timeoutMs: 20_000,
    what: 'the sidecar in replication_sync',
  });
  const early = events.filter((e) => e.container === BACKEND_CONTAINER && e.event !== 'preStop:start');
  assert.deepEqual(early, [], 'the backend was held (its gate closed, no signal) while its replica lagged');
  assert.ok(pod.process(BACKEND_CONTAINER).running, 'the backend still runs while its replica lags');
  if (link) {
    await link.roundTrip('in replication_sync');
    const late = await connectRaw(pod.localPort(dep.namedPort(SIDECAR_CONTAINER, 'front-rsync')));
    late.on('error', () => undefined);
    late.write('a new full sync');
    await closed(late);
    assert.equal(fakes[1]!.accepted, 0, "a new link during the shutdown never reached the backend's +10001");
    assert.equal(fakes[0]!.accepted, 1, 'only the link opened before the deletion reached +2000');
  }
  const resumedAt = Date.now();
  replica.resume();
  const result = await terminating;
  const why = explain(result, sidecar);
  t.diagnostic(`${load.acked} writes acknowledged of ${load.sent} sent\n${formatTimeline(result.timeline)}`);
  await waitFor(() => load.connections.every((c) => c.isClosed), { timeoutMs: 10_000, what: 'every client connection to close' });

  // The backend: held by its preStop gate until the sidecar was drained.
  const backend = result.containers.get(BACKEND_CONTAINER)!;
  const gate = backend.hook;
  assert.ok(gate, `the backend's preStop ran${why}`);
  assert.ok(
    gate.ok,
    `the backend's preStop (the stop gate) succeeded: ${gate.kind} status=${gate.status} exit=${gate.exitCode} ${gate.error ?? ''} ${gate.output}${why}`,
  );
  if (gate.kind === 'httpGet') {
    assert.equal(gate.status, 200, `the gate answered 200${why}`);
    assert.equal((JSON.parse(gate.output) as { result?: string }).result, 'drained', `the gate reported drained${why}`);
  } else {
    assert.equal(gate.kind, 'exec');
    const triggerDir = pod.mapText(SIDECAR_CONTAINER, argAfter(sidecarSpec.args ?? [], '--shutdown-trigger-dir'));
    assert.ok(existsSync(join(triggerDir, DRAINED_FILE)), `the sidecar wrote ${DRAINED_FILE} in the shared volume${why}`);
  }
  assert.ok(gate.endedAt >= resumedAt, `the gate opened only after the lagging replica resumed${why}`);
  assert.ok(backend.runningAfterHook, `the backend was still running when its gate opened${why}`);
  assert.ok(
    backend.sigtermAt !== undefined && backend.sigtermAt >= gate.endedAt,
    `the backend got SIGTERM only after its gate returned${why}`,
  );
  assert.equal(backend.killed, false, `the backend stopped within the grace period${why}`);

  // The sidecar: a clean exit, in time.
  const side = result.containers.get(SIDECAR_CONTAINER)!;
  assert.equal(side.exit.code, 0, `the sidecar exited 0${why}`);
  assert.equal(side.killed, false, `the sidecar was not SIGKILLed${why}`);
  assert.ok(side.exit.at - result.deletedAt <= result.gracePeriodMs, `the sidecar exited within the grace period${why}`);
  if (!dep.container(SIDECAR_CONTAINER).init) {
    assert.ok(side.hook?.ok, `the sidecar's own preStop (drain --wait) succeeded: ${side.hook?.output ?? ''}${why}`);
  } else {
    // Native sidecar: nothing reaches it before the backend has exited.
    const sidecarEvents = result.timeline.filter(
      (e) => e.container === SIDECAR_CONTAINER && (e.event === 'preStop:start' || e.event === 'SIGTERM'),
    );
    for (const e of sidecarEvents) {
      assert.ok(result.deletedAt + e.at >= backend.exit.at, `the native sidecar's ${e.event} came after the backend exited${why}`);
    }
  }

  if (link) {
    assert.ok(link.endedAt !== undefined, `the sidecar closed the replication link${why}`);
    assert.ok(
      backend.sigtermAt !== undefined && link.endedAt <= backend.sigtermAt,
      `the replication link was closed before the backend got SIGTERM${why}`,
    );
    assert.ok(link.intact, 'every byte sent through the link came back');
    const msgs = sidecar.output.split('\n').flatMap((l) => {
      try {
        return [String((JSON.parse(l) as { msg?: unknown }).msg)];
      } catch {
        return [];
      }
    });
    const released = msgs.indexOf('released front_links');
    const gateOpen = msgs.indexOf('stop gate open: the backend may stop now');
    assert.ok(released >= 0 && gateOpen > released, `the sidecar released the links before it opened the stop gate${why}`);
  }

  // Zero loss, and no write executed that the client was not told about.
  const { missing, keys } = await checkReplica(replica.port, load);
  assert.ok(load.acked >= ACKED_BEFORE_PAUSE + ACKED_WHILE_PAUSED, 'the load was acknowledged before the deletion');
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${load.acked} acknowledged writes are missing on the replica${why}`);
  assert.equal(keys, load.acked, `the replica holds exactly the ${load.acked} acknowledged writes (${load.sent} sent)${why}`);
  assert.ok(
    load.connections.some((c) => c.closedByPeer),
    `the sidecar closed the client connections itself${why}`,
  );
}

describe('the kubelet play of deploy/kubernetes', () => {
  for (const scenario of SCENARIOS) {
    test(scenario.title, { timeout: 45_000 }, (t) => play(t, scenario));
  }
});
