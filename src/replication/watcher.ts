/**
 * The replication watcher: polls the backend's `INFO replication` over the control connection
 * (and, for Pika, each replica's own at the client port its master announces), keeps what /status
 * shows, exports the replication metrics, and runs the convergence wait of replication_sync.
 *
 *   control ──INFO server (once: dialect)──▶
 *   control ──INFO replication──▶ parse (redis-info | pika-info) ──▶ Observation
 *   [pika] replica probes ──INFO replication──▶ parse ──┘     │
 *                                                             ▼
 *                          assess (convergence.ts) ──▶ snapshot() + metrics
 *
 * Normal service: one poll every `pollIntervalMs` (timers unref'd). During waitForConvergence the
 * normal polling pauses and the wait polls with backoff (convergence-wait.ts).
 */
import type { BackendKind, ReplicationConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { BACKEND_ROLES, REPLICA_STATES, type ReplicaState } from '../observability/names.js';
import { dialAddress } from './addresses.js';
import { summarizeVerdicts, type ConvergenceResult, type PikaProbe, type ReplicaAssessment } from './convergence.js';
import { runConvergenceWait } from './convergence-wait.js';
import { dialectFromInfoServer, dialectFromReplication, type Dialect } from './dialect.js';
import { errorText, infoClientReplyText, isErrorReply, raceAbort, type InfoClient } from './info-client.js';
import { assessReplicas, formatTarget, targetOf, type Observation, type Target } from './observation.js';
import { parsePikaReplication, type PikaReplicaEntry } from './pika-info.js';
import { compareBinlog } from './positions.js';
import type { ParsedRole } from './redis-info.js';
import { parseRedisReplication } from './redis-info.js';
import { WritePause } from './write-pause.js';

export type { InfoClient } from './info-client.js';
export type { ConvergenceResult, ReplicaResult, ReplicaVerdict, WritePauseOutcome } from './convergence.js';

export interface ReplicationSnapshot {
  kind: 'redis' | 'pika' | 'unknown';
  role: 'master' | 'replica' | 'unknown';
  /** null when unknown: no poll yet, the last poll failed, or the backend is a replica. */
  converged: boolean | null;
  masterPosition: string | null;
  replicas: Array<{ address: string; state: ReplicaState; lagBytes: string | null; position: string | null }>;
  lastPollAt: string | null;
  lastError: string | null;
}

export interface ReplicationWatcherOptions {
  control: InfoClient;
  /** Opens a connection to a replica's client port (Pika probes); the watcher closes it. */
  connect: (host: string, port: number) => InfoClient;
  config: ReplicationConfig;
  backendKind: BackendKind;
  logger: Logger;
  metrics: Metrics;
  random?: () => number;
}

export class ReplicationWatcher {
  private readonly control: InfoClient;
  private readonly connect: (host: string, port: number) => InfoClient;
  private readonly config: ReplicationConfig;
  private readonly backendKind: BackendKind;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly random: () => number;
  private readonly pause: WritePause | null;
  private readonly lifetime = new AbortController();
  /** Replica probe connections by dialled "host:port". */
  private readonly probes = new Map<string, InfoClient>();
  private dialect: Dialect;
  private started = false;
  private closed = false;
  private waiting = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  private lastLoggedError: string | null = null;
  private publishedLagLabels = new Set<string>();
  private state: ReplicationSnapshot = {
    kind: 'unknown',
    role: 'unknown',
    converged: null,
    masterPosition: null,
    replicas: [],
    lastPollAt: null,
    lastError: null,
  };

  constructor(opts: ReplicationWatcherOptions) {
    this.control = opts.control;
    this.connect = opts.connect;
    this.config = opts.config;
    this.backendKind = opts.backendKind;
    this.logger = opts.logger.child({ component: 'replication' });
    this.metrics = opts.metrics;
    this.random = opts.random ?? Math.random;
    this.dialect = opts.backendKind === 'auto' ? 'unknown' : opts.backendKind;
    this.state.kind = this.dialect;
    this.pause = opts.config.pauseWrites ? new WritePause(this.control, this.logger) : null;
  }

  /** Normal-service polling: a poll now, then one every pollIntervalMs. Idempotent. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.logger.info({ intervalMs: this.config.pollIntervalMs, backendKind: this.backendKind }, 'replication watcher started');
    this.tick();
  }

  /** Stops polling, waits for a poll in flight, closes replica probe connections. Idempotent. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.stopTimer();
      this.lifetime.abort();
      this.logger.info('replication watcher closing');
    }
    await this.inflight?.catch(() => undefined);
    const clients = [...this.probes.values()];
    this.probes.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => c.destroy('replication watcher closed'))));
  }

  /** Same as close(), immediately: probe connections are destroyed. Idempotent. */
  destroy(): void {
    if (!this.closed) {
      this.closed = true;
      this.stopTimer();
      this.lifetime.abort();
    }
    for (const c of this.probes.values()) c.destroy('replication watcher destroyed');
    this.probes.clear();
  }

  snapshot(): ReplicationSnapshot {
    return { ...this.state, replicas: this.state.replicas.map((r) => ({ ...r })) };
  }

  /** One poll: updates snapshot() and the metrics; never rejects (failures land in lastError). */
  pollOnce(): Promise<void> {
    if (this.inflight) return this.inflight;
    const p = this.pollAndPublish().finally(() => {
      if (this.inflight === p) this.inflight = null;
    });
    this.inflight = p;
    return p;
  }

  /** See convergence-wait.ts and the rules in convergence.ts. Never throws. */
  async waitForConvergence(budgetMs: number, signal: AbortSignal): Promise<ConvergenceResult> {
    if (this.closed) {
      return {
        outcome: 'failed',
        reason: 'the replication watcher is closed',
        kind: this.dialect,
        target: null,
        targetMoved: false,
        replicas: [],
        durationMs: 0,
        writePause: 'off',
      };
    }
    this.waiting++;
    this.stopTimer();
    try {
      return await runConvergenceWait(
        {
          read: (s) => this.read(s),
          publish: (obs, target, assessments) => this.publish(obs, target, assessments),
          pause: this.pause,
          config: this.config,
          logger: this.logger,
          random: this.random,
          lifetime: this.lifetime.signal,
          known: this.state.role === 'master' ? this.state.replicas.map((r) => r.address) : [],
        },
        budgetMs,
        signal,
      );
    } finally {
      this.waiting--;
      if (this.waiting === 0) this.schedule();
    }
  }

  // ——— polling ———

  private tick(): void {
    this.timer = null;
    if (this.closed || this.waiting > 0) return;
    void this.pollOnce().finally(() => this.schedule());
  }

  private schedule(): void {
    if (!this.started || this.closed || this.waiting > 0 || this.timer) return;
    this.timer = setTimeout(() => this.tick(), this.config.pollIntervalMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async pollAndPublish(): Promise<void> {
    let obs: Observation;
    try {
      obs = await this.read(this.lifetime.signal);
    } catch (err) {
      if (this.closed) return;
      const text = errorText(err);
      this.state = { ...this.state, converged: null, lastPollAt: new Date().toISOString(), lastError: text };
      this.metrics.replicationConverged.set(0);
      if (text !== this.lastLoggedError)
        this.logger.warn({ err: text }, 'could not read the replication state; keeping the last known replicas');
      this.lastLoggedError = text;
      return;
    }
    if (this.closed) return;
    this.lastLoggedError = null;
    const now = targetOf(obs);
    if (!now) {
      this.publishUnknownPosition(obs);
      return;
    }
    this.publish(obs, now, assessReplicas(obs, now));
  }

  /** Reads the backend (and for Pika its replicas) once. Rejects on failure or abort. */
  private async read(signal: AbortSignal): Promise<Observation> {
    if (this.dialect === 'unknown') {
      const server = infoClientReplyText(await raceAbort(this.control.call('INFO', 'server'), signal), 'INFO server');
      const guess = dialectFromInfoServer(server);
      if (guess.dialect !== 'unknown')
        this.setDialect(guess.dialect, `INFO server reports ${guess.dialect}_version ${guess.version ?? '?'}`);
    }
    const text = infoClientReplyText(await raceAbort(this.control.call('INFO', 'replication'), signal), 'INFO replication');
    if (this.dialect === 'unknown') {
      const guess = dialectFromReplication(text);
      if (guess === 'unknown') throw new Error('could not tell whether the backend is redis or pika from INFO server or INFO replication');
      this.setDialect(guess, 'INFO replication has its shape');
    }
    if (this.dialect === 'redis') return { dialect: 'redis', info: parseRedisReplication(text) };
    let info = parsePikaReplication(text);
    const probes = await this.probeAll(info.replicas, signal);
    if (info.positions && [...probes.values()].some((p) => p.ok && p.info.positions && aheadOf(p.info.positions, info.positions!))) {
      // A replica read after the master may legitimately be past it; judge divergence against a
      // master position read after the replicas.
      const again = parsePikaReplication(
        infoClientReplyText(await raceAbort(this.control.call('INFO', 'replication'), signal), 'INFO replication'),
      );
      if (again.positions) info = again;
    }
    return { dialect: 'pika', info, probes };
  }

  private setDialect(d: Dialect, why: string): void {
    this.dialect = d;
    this.state = { ...this.state, kind: d };
    this.logger.info({ kind: d }, `backend kind is ${d}: ${why}`);
  }

  private async probeAll(entries: readonly PikaReplicaEntry[], signal: AbortSignal): Promise<Map<string, PikaProbe>> {
    const out = new Map<string, PikaProbe>();
    const dialled = new Set<string>();
    await Promise.all(
      entries.map(async (e) => {
        const dial = e.ip !== null && e.port !== null ? dialAddress(e.address, this.config.addressOverrides) : null;
        if (!dial) {
          out.set(e.address, { ok: false, error: `no address to dial for ${e.address}` });
          return;
        }
        const key = `${dial.host}:${dial.port}`;
        dialled.add(key);
        out.set(e.address, await this.probe(key, dial.host, dial.port, signal));
      }),
    );
    // Replicas that left the master's list: their probe connections go too.
    for (const [key, client] of this.probes) {
      if (dialled.has(key)) continue;
      this.probes.delete(key);
      client.destroy('replica no longer listed by the master');
    }
    return out;
  }

  private async probe(key: string, host: string, port: number, signal: AbortSignal): Promise<PikaProbe> {
    let client = this.probes.get(key);
    if (!client) {
      client = this.connect(host, port);
      this.probes.set(key, client);
    }
    try {
      const reply = await raceAbort(client.call('INFO', 'replication'), signal);
      if (isErrorReply(reply)) return { ok: false, error: `INFO replication refused: ${reply.message}` };
      const text = infoClientReplyText(reply, 'INFO replication');
      return { ok: true, info: parsePikaReplication(text) };
    } catch (err) {
      if (signal.aborted) throw err;
      // A fresh connection next time: whatever broke this one may have left it unusable.
      if (this.probes.get(key) === client) this.probes.delete(key);
      client.destroy('replica probe failed');
      return { ok: false, error: errorText(err) };
    }
  }

  // ——— what /status and the metrics show ———

  private publish(obs: Observation, master: Target, assessments: readonly ReplicaAssessment[]): void {
    const role = obs.info.role;
    const now = targetOf(obs) ?? master;
    const converged = role === 'master' ? summarizeVerdicts(assessments.map((a) => a.result)) === 'converged' : null;
    this.state = {
      kind: obs.dialect,
      role,
      converged,
      masterPosition: formatTarget(now),
      replicas: assessments.map((a) => ({
        address: a.result.address,
        state: a.state,
        lagBytes: a.lagBytes?.toString() ?? null,
        position: a.result.position,
      })),
      lastPollAt: new Date().toISOString(),
      lastError: null,
    };
    this.publishMetrics(role, converged, assessments);
  }

  private publishUnknownPosition(obs: Observation): void {
    const role = obs.info.role;
    this.state = {
      kind: obs.dialect,
      role,
      converged: null,
      masterPosition: null,
      replicas: obs.info.replicas.map((r) => ({ address: r.address, state: 'down', lagBytes: null, position: null })),
      lastPollAt: new Date().toISOString(),
      lastError: "the backend's INFO replication shows no readable position",
    };
    this.publishMetrics(role, null, []);
  }

  private publishMetrics(role: ParsedRole, converged: boolean | null, assessments: readonly ReplicaAssessment[]): void {
    const m = this.metrics;
    for (const r of BACKEND_ROLES) m.backendRole.set({ role: r }, r === role ? 1 : 0);
    m.replicationConverged.set(converged === true ? 1 : 0);
    const counts = new Map<ReplicaState, number>(REPLICA_STATES.map((s) => [s, 0]));
    for (const a of assessments) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
    for (const [state, n] of counts) m.replicas.set({ state }, n);
    const labels = new Set<string>();
    for (const a of assessments) {
      if (a.lagBytes === null) continue;
      labels.add(a.result.address);
      m.replicaLagBytes.set({ replica: a.result.address }, Number(a.lagBytes));
    }
    // Label sets of replicas that disappeared, or whose lag is now unknown, are removed.
    for (const old of this.publishedLagLabels) if (!labels.has(old)) m.replicaLagBytes.remove({ replica: old });
    this.publishedLagLabels = labels;
  }
}

function aheadOf(
  replica: ReadonlyMap<string, { filenum: bigint; offset: bigint }>,
  master: ReadonlyMap<string, { filenum: bigint; offset: bigint }>,
): boolean {
  for (const [db, r] of replica) {
    const m = master.get(db);
    if (m && compareBinlog(r, m) > 0) return true;
  }
  return false;
}
