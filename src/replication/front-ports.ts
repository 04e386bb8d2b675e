/**
 * The fronted Pika replication ports (replication.frontPikaPorts, design §5 "fronted" layout): two
 * listeners on the sidecar's listen host at listen port +2000 (binlog) and +10001 (rsync), each
 * connection forwarded raw to the backend's same port as a FrontLink.
 *
 * A link is never a client session: it is not in the session registry, not in flight, not drained.
 * From intercept on (refuse()), new connections are closed at accept, counted and logged (first
 * one at once, repeats summarised); links open before keep flowing until release, which closes
 * them (close()) before the stop gate opens, so the backend stops with no replica attached here.
 */
import net from 'node:net';
import { SidecarError } from '../errors.js';
import type { HostPort } from '../config/schema.js';
import { LogSummary } from '../observability/log-summary.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { FrontRefuseReason } from '../observability/names.js';
import { FrontLink } from './front-link.js';
import { FRONT_PORT_ROLES, PIKA_PORT_OFFSETS, shiftedPort, type FrontPortRole } from './pika-ports.js';

/** close(): how long open links get to flush what is queued before they are destroyed. */
export const LINK_FLUSH_MS = 250;

export interface FrontPortsOptions {
  listen: HostPort;
  backend: HostPort;
  connectTimeoutMs: number;
  logger: Logger;
  metrics: Metrics;
  /** Defaults to LINK_FLUSH_MS. */
  flushMs?: number;
}

export interface FrontAddress {
  role: FrontPortRole;
  host: string;
  port: number;
}

export class FrontPorts {
  private readonly servers = new Map<FrontPortRole, net.Server>();
  private readonly links = new Set<FrontLink>();
  private state: 'idle' | 'listening' | 'closed' = 'idle';
  private refusing = false;
  private closing: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly summary: LogSummary;

  constructor(private readonly opts: FrontPortsOptions) {
    this.log = opts.logger.child({ component: 'front-ports' });
    this.summary = new LogSummary(this.log);
    for (const role of FRONT_PORT_ROLES) {
      this.servers.set(
        role,
        net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (c) => this.accept(role, c)),
      );
    }
  }

  /** Binds both ports; a port in use is a start-up error naming it (and nothing stays bound). */
  async listen(): Promise<FrontAddress[]> {
    const out: FrontAddress[] = [];
    try {
      for (const [role, server] of this.servers) out.push(await this.bind(role, server));
    } catch (err) {
      this.destroy();
      throw err;
    }
    this.state = 'listening';
    this.log.info(
      {
        ports: out.map((a) => `${a.role}=${a.host}:${a.port}`),
        backend: FRONT_PORT_ROLES.map((r) => `${r}=${this.opts.backend.host}:${shiftedPort(this.opts.backend.port, r)}`),
      },
      "fronting Pika's replication ports",
    );
    return out;
  }

  private bind(role: FrontPortRole, server: net.Server): Promise<FrontAddress> {
    const { host } = this.opts.listen;
    const port = shiftedPort(this.opts.listen.port, role);
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const why = `listen port +${PIKA_PORT_OFFSETS[role]}, replication.frontPikaPorts`;
        reject(
          new SidecarError('ERR_STARTUP', `cannot listen on ${host}:${port} (${role}: ${why}): ${err.code ?? err.message}`, { cause: err }),
        );
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.error({ err: err.message, port: role }, 'front port listener error'));
        const addr = server.address() as net.AddressInfo;
        resolve({ role, host: addr.address, port: addr.port });
      });
    });
  }

  /** Open links by port role. */
  openLinks(): Record<FrontPortRole, number> {
    const out: Record<FrontPortRole, number> = { binlog: 0, rsync: 0 };
    for (const l of this.links) out[l.role] += 1;
    return out;
  }

  /** The open links (tests read their byte counts and buffering). */
  get activeLinks(): readonly FrontLink[] {
    return [...this.links];
  }

  /** From now on, new connections are closed at accept; open links keep flowing. Idempotent. */
  refuse(): void {
    if (this.refusing) return;
    this.refusing = true;
    this.log.info({ open: this.openLinks() }, 'refusing new replication links on the fronted ports; open links keep flowing');
  }

  private accept(role: FrontPortRole, socket: net.Socket): void {
    socket.on('error', () => undefined);
    if (this.refusing || this.state !== 'listening') {
      this.refused(role, 'shutting_down', socket);
      socket.destroy();
      return;
    }
    const m = this.opts.metrics;
    const bytes = {
      to_backend: m.replicationFrontBytesTotal.labels(role, 'to_backend'),
      to_replica: m.replicationFrontBytesTotal.labels(role, 'to_replica'),
    };
    const link = new FrontLink({
      role,
      replica: socket,
      backend: { host: this.opts.backend.host, port: shiftedPort(this.opts.backend.port, role) },
      connectTimeoutMs: this.opts.connectTimeoutMs,
      logger: this.log,
      onBytes: (direction, n) => bytes[direction].inc(n),
    });
    this.links.add(link);
    m.replicationFrontLinks.inc({ port: role });
    this.log.info({ port: role, peer: link.peer }, `replication link opened on the ${role} port`);
    link.once('close', (end, error) => {
      this.links.delete(link);
      m.replicationFrontLinks.dec({ port: role });
      if (end === 'unreachable') {
        this.refused(role, 'backend_unreachable', socket, error);
        return;
      }
      this.log.info(
        { port: role, peer: link.peer, end, err: error, bytes: link.bytes },
        `replication link on the ${role} port closed (${end})`,
      );
    });
  }

  private refused(role: FrontPortRole, reason: FrontRefuseReason, socket: net.Socket, error?: string): void {
    this.opts.metrics.replicationFrontRefusedTotal.inc({ port: role, reason });
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const message =
      reason === 'shutting_down'
        ? `refused a new replication link on the ${role} port: the sidecar is shutting down`
        : `closed a new replication link on the ${role} port: the backend's ${role} port did not answer`;
    this.summary.event(
      'warn',
      `front_refused_${role}_${reason}`,
      { port: role, peer, reason, ...(error === undefined ? {} : { err: error }) },
      message,
    );
  }

  /**
   * Graceful: the listeners stop, new connections are refused, every open link is closed (flushed,
   * FIN both ways; destroyed if it has not flushed within flushMs). Idempotent and joinable.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.refusing = true;
    const wasListening = this.state === 'listening';
    this.state = 'closed';
    const links = [...this.links];
    if (links.length > 0) this.log.info({ open: this.openLinks() }, 'closing the replication links on the fronted ports');
    const flushMs = this.opts.flushMs ?? LINK_FLUSH_MS;
    this.closing = Promise.all([
      ...[...this.servers.values()].map((s) =>
        wasListening ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve(),
      ),
      ...links.map((l) => l.close(flushMs)),
    ]).then(() => {
      this.summary.close();
      if (wasListening) this.log.info('fronted replication ports closed; no replica is attached through the sidecar');
    });
    return this.closing;
  }

  /** Forced: listeners and links destroyed now. Idempotent. */
  destroy(): void {
    this.refusing = true;
    this.state = 'closed';
    for (const s of this.servers.values()) if (s.listening) s.close();
    for (const l of this.links) l.destroy('front ports destroyed');
    this.summary.close();
  }
}
