/**
 * One client session: one client connection ↔ one dedicated backend connection, for its whole life.
 *
 *   client ──bytes──▶ RequestScanner: finds each command's name (EV_NAME) and end (EV_END)
 *            │          EV_NAME: forward, or refuse (denied list / replication during shutdown),
 *            │                   or stop here (draining: nothing new is forwarded)
 *            │          EV_END:  sent += replies this command will get; mode changes
 *            └──────▶ the same bytes, unmodified, to the backend (ranges of the chunk, no copies)
 *   client ◀─bytes─── ReplyScanner: counts top-level reply frames (pushes and attributes apart),
 *                       received += 1 per reply while received < sent; the same bytes to the client
 *
 * In flight = sent − received. Replies arrive in command order, so every piece of accounting is a
 * counter, never a per-command queue. Frames that arrive when nothing is outstanding (MONITOR
 * lines) are forwarded and not counted. In a subscribed session, pub/sub messages and
 * (un)subscribe confirmations are told from replies by their first element (pubsub-frames.ts).
 *
 * Once SYNC/PSYNC is forwarded the session is a `replication_link`: the backend sends an RDB
 * payload that is not RESP, so both directions become a raw pipe.
 *
 * Backpressure both ways: a write that returns false pauses the other side until 'drain'.
 * Graceful and forced are separate verbs: `drain()` (stop at a command boundary, close when
 * idle), `closeAtBoundary()` (close at the next reply frame boundary), `destroy()` (now).
 */
import type net from 'node:net';
import { EventEmitter } from 'node:events';
import { CommandTable, Cmd } from '../resp/command-table.js';
import { RequestScanner, NEED_MORE, EV_NAME, REPLY_OFF, REPLY_ON, REPLY_SKIP } from '../resp/request-scanner.js';
import { ReplyScanner, FRAME_REPLY, FRAME_PUSH } from '../resp/reply-scanner.js';
import { sidecarErrorReply } from '../backend/encode.js';
import { classifyPubSubHead, endsWithZeroCount, PUBSUB_HEAD_BYTES, PUBSUB_OTHER, PUBSUB_UNSUBSCRIBED } from './pubsub-frames.js';
import { isSidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { CloseReason, SessionMode } from '../observability/names.js';
import type { HotCounters } from '../observability/metrics.js';

/** Session life: open → draining → closing → closed; any state → closed by destroy(). */
export type SessionState = 'open' | 'draining' | 'closing' | 'closed';
const TRANSITIONS: Record<SessionState, readonly SessionState[]> = {
  open: ['draining', 'closing', 'closed'],
  draining: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

/** What the session reads from its owner (the registry): shared switches, limits and counters. */
export interface SessionContext {
  table: CommandTable;
  limits: { maxBulkBytes: number; maxInlineBytes: number };
  hot: HotCounters;
  logger: Logger;
  /** True from `intercept` on: SYNC/PSYNC/SLAVEOF/REPLICAOF are refused. */
  refuseReplication(): boolean;
  /** Called on every mode change (the registry keeps counts by mode). */
  onModeChange(session: Session, from: SessionMode, to: SessionMode): void;
}

export interface SessionCloseInfo {
  reason: CloseReason;
  /** Commands forwarded whose replies were not delivered (forced closes only). */
  abandoned: number;
}

/** A client that left first is owed nothing: only forced closes abandon replies. */
function closeInfo(reason: CloseReason, inflight: number): SessionCloseInfo {
  return { reason, abandoned: reason === 'client_quit' ? 0 : Math.max(0, inflight) };
}

let nextId = 1;
/** How long a closing client may take to accept its last bytes before it is destroyed. */
const CLIENT_FLUSH_TIMEOUT_MS = 1000;

export class Session extends EventEmitter {
  readonly id = nextId++;
  readonly remote: string;
  private state: SessionState = 'open';
  private currentMode: SessionMode = 'normal';

  // Accounting (counters only; see the header).
  private sent = 0;
  private received = 0;
  private blockedUntil = 0;
  private inTransaction = false;
  private subscribed = false;
  /** Replies owed before the first SUBSCRIBE: frames after them are in subscribed context. */
  private subscribedFrom = 0;
  /** Shard subscriptions are counted apart by the backend: their zero count does not end the mode. */
  private shardSubscribed = false;
  private resp3 = false;
  /** The reply index of a HELLO 2/3 whose outcome decides the protocol (0: none pending). */
  private helloAt = 0;
  private helloVersion = 0;
  /** The first bytes of a pub/sub-context frame cut by a chunk end (allocated on first SUBSCRIBE). */
  private frameHead: Buffer | undefined;
  private frameHeadLen = 0;
  private monitor = false;
  private replyOff = false;
  private skipNext = false;
  private replicationLink = false;
  private quitSent = false;

  // Request side.
  private readonly requests: RequestScanner;
  /** Bytes of a command whose name is not known yet, from earlier chunks (held back, not forwarded). */
  private held: Buffer | undefined;
  /** The current command's name is known and it is being forwarded (true) or discarded (false). */
  private forwardingCurrent = true;
  private nameSeen = false;
  /** Stop forwarding anything more from the client (drain, protocol error, client gone). */
  private inputStopped = false;
  /** Error replies the sidecar owes the client, each after `at` replies: keeps pipelined order. */
  private injections: Array<{ at: number; reply: Buffer }> = [];
  private protocolError: string | undefined;

  // Reply side.
  private readonly replies: ReplyScanner;
  private closeAtReplyBoundary = false;
  private closeWhenIdle = false;
  private pendingReason: CloseReason | undefined;
  private closeInfo: SessionCloseInfo | undefined;

  private readonly onClientData = (chunk: Buffer) => this.handleClientData(chunk);
  private readonly onBackendData = (chunk: Buffer) => this.handleBackendData(chunk);

  constructor(
    readonly client: net.Socket,
    readonly backend: net.Socket,
    private readonly ctx: SessionContext,
  ) {
    super();
    this.remote = `${client.remoteAddress ?? '?'}:${client.remotePort ?? 0}`;
    this.requests = new RequestScanner(ctx.table, ctx.limits);
    // MONITOR lines hold whole commands and Lua can return long status lines: the backend is
    // trusted, so a reply line may be as long as the longest command a client may send.
    this.replies = new ReplyScanner({ maxLineBytes: 4 * ctx.limits.maxBulkBytes + 65536 });

    client.on('data', this.onClientData);
    backend.on('data', this.onBackendData);
    // Backpressure: each side pauses the other while its write buffer is full.
    backend.on('drain', () => {
      if (!this.inputStopped && this.state !== 'closed') client.resume();
    });
    client.on('drain', () => {
      if (this.state !== 'closed') backend.resume();
    });
    // The client half-closed: answer what it sent, then close (allowHalfOpen is on).
    client.on('end', () => this.onClientEnd());
    client.on('close', () => this.onClientClose());
    client.on('error', (err: Error & { code?: string }) => {
      this.log().debug({ err: err.code ?? err.message }, 'client connection error');
    });
    backend.on('end', () => this.onBackendEnd());
    backend.on('close', () => this.onBackendEnd());
    backend.on('error', (err: Error & { code?: string }) => {
      this.log().warn({ session: this.id, err: err.code ?? err.message }, 'backend connection error; closing the session');
    });
    client.resume();
  }

  // ─── state ──────────────────────────────────────────────────────────────────────────────────

  get status(): SessionState {
    return this.state;
  }

  get mode(): SessionMode {
    return this.currentMode;
  }

  /** Commands forwarded whose reply has not been delivered yet. */
  get inflight(): number {
    return this.sent - this.received;
  }

  /** The backend-side port of this session's connection (matches `CLIENT LIST` addr=). */
  get backendLocalPort(): number | undefined {
    return this.backend.localPort;
  }

  private log(): Logger {
    return this.ctx.logger;
  }

  private setState(to: SessionState): void {
    const from = this.state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`session ${this.id}: illegal transition ${from} -> ${to}`);
    this.state = to;
    if (this.log().isLevelEnabled('debug')) this.log().debug({ session: this.id, from, to }, 'session state changed');
  }

  private refreshMode(): void {
    const to: SessionMode = this.replicationLink
      ? 'replication_link'
      : this.monitor
        ? 'monitor'
        : this.subscribed
          ? 'subscribed'
          : this.received < this.blockedUntil
            ? 'blocked'
            : this.inTransaction
              ? 'transaction'
              : this.replyOff || this.skipNext
                ? 'reply_off'
                : 'normal';
    const from = this.currentMode;
    if (from === to) return;
    this.currentMode = to;
    if (this.log().isLevelEnabled('debug')) this.log().debug({ session: this.id, from, to }, 'session mode changed');
    this.ctx.onModeChange(this, from, to);
  }

  // ─── client → backend ───────────────────────────────────────────────────────────────────────

  private handleClientData(chunk: Buffer): void {
    if (this.inputStopped || this.state === 'closed') return;
    if (this.replicationLink) {
      this.writeBackend(chunk);
      return;
    }
    const scanner = this.requests;
    let fwdStart = 0; // start of the range not yet forwarded
    let pos = 0;
    // Where the current command began in this chunk; -1 when it began in an earlier one.
    let cmdBegin = scanner.atBoundary ? 0 : -1;
    try {
      // Until NEED_MORE, not until the chunk's end: an EV_NAME at the very end of the chunk may
      // have its EV_END at the same position.
      for (;;) {
        const at = scanner.next(chunk, pos);
        if (at === NEED_MORE) break;
        if (scanner.event === EV_NAME) {
          this.nameSeen = true;
          const cmdStart = cmdBegin;
          const decision = this.decide(scanner.commandId);
          if (decision === 'forward') {
            this.forwardingCurrent = true;
            if (this.held) {
              this.writeBackend(this.held);
              this.held = undefined;
            }
          } else {
            // Forward what came before this command; this command's bytes go nowhere.
            if (cmdStart > fwdStart) {
              this.writeBackend(chunk.subarray(fwdStart, cmdStart));
              fwdStart = cmdStart;
            }
            this.held = undefined;
            this.forwardingCurrent = false;
            if (decision === 'stop') {
              this.stopInput();
              return;
            }
          }
        } else {
          // EV_END
          this.nameSeen = false;
          if (this.forwardingCurrent) {
            this.account();
          } else {
            fwdStart = at; // skip the refused command's bytes
            this.forwardingCurrent = true;
          }
          cmdBegin = at;
          if (this.replicationLink) {
            // Everything after PSYNC is a raw stream.
            this.writeBackend(fwdStart === 0 && at === chunk.length ? chunk : chunk.subarray(fwdStart));
            return;
          }
        }
        pos = at;
      }
    } catch (err) {
      this.onProtocolError(err, chunk, fwdStart, cmdBegin);
      return;
    }
    // End of chunk. Bytes of a command whose name is still unknown are held back.
    if (!scanner.atBoundary && !this.nameSeen) {
      const cmdStart = cmdBegin;
      const holdFrom = cmdStart >= 0 ? cmdStart : 0;
      if (holdFrom > fwdStart) this.writeBackend(chunk.subarray(fwdStart, holdFrom));
      const tail = chunk.subarray(holdFrom);
      this.held = this.held && cmdStart < 0 ? Buffer.concat([this.held, tail]) : Buffer.from(tail);
      return;
    }
    if (!this.forwardingCurrent) return; // inside a refused command: drop the rest of it
    if (fwdStart === 0) this.writeBackend(chunk);
    else if (fwdStart < chunk.length) this.writeBackend(chunk.subarray(fwdStart));
  }

  /** What to do with a command whose name just became known. */
  private decide(id: number): 'forward' | 'refuse' | 'stop' {
    const table = this.ctx.table;
    if (this.state === 'draining' && !this.inTransaction) return 'stop';
    if (table.isDenied(id)) {
      this.refuse(`command '${table.name(id)}' is denied by pika-sidecar (the backend sees every sidecar client as local)`);
      return 'refuse';
    }
    const kind = table.kind(id);
    if ((kind === Cmd.SYNC || kind === Cmd.REPLICAOF) && this.ctx.refuseReplication()) {
      this.refuse(`pika-sidecar is shutting down: '${table.name(id)}' refused; use another master`);
      return 'refuse';
    }
    return 'forward';
  }

  /** Queues an error reply for a refused command, after the replies of everything sent before it. */
  private refuse(message: string): void {
    this.ctx.hot.deniedCommands++;
    this.log().info({ session: this.id, reason: message }, 'refused a command');
    const reply = sidecarErrorReply(message);
    if (this.injections.length === 0 && this.received >= this.sent && this.replies.atBoundary) this.client.write(reply);
    else this.injections.push({ at: this.sent, reply });
  }

  /** A forwarded command is complete: how many replies it gets, and what it does to the mode. */
  private account(): void {
    const s = this.requests;
    const table = this.ctx.table;
    const kind = table.kind(s.commandId);
    this.ctx.hot.commands++;
    let expected = 1;
    if (kind === Cmd.EMPTY) expected = 0;
    else if (this.skipNext) {
      expected = 0;
      this.skipNext = false;
    } else if (this.replyOff) expected = 0;

    switch (kind) {
      case Cmd.OTHER:
      case Cmd.EMPTY:
        break;
      case Cmd.CLIENT:
        if (s.clientReply === REPLY_OFF) {
          this.replyOff = true;
          expected = 0;
        } else if (s.clientReply === REPLY_SKIP) {
          if (!this.replyOff) this.skipNext = true;
          expected = 0;
        } else if (s.clientReply === REPLY_ON) {
          this.replyOff = false;
          expected = 1;
        }
        break;
      case Cmd.MULTI:
        this.inTransaction = true;
        break;
      case Cmd.EXEC:
      case Cmd.DISCARD:
        this.inTransaction = false;
        break;
      case Cmd.SUBSCRIBE:
        if (s.argc < 2) break; // no channel: one error reply
        expected = 0; // confirmations are pub/sub frames, not replies
        if (!this.subscribed) {
          this.subscribed = true;
          this.subscribedFrom = this.sent;
          this.frameHead ??= Buffer.alloc(PUBSUB_HEAD_BYTES);
        }
        if (table.name(s.commandId) === 'ssubscribe') this.shardSubscribed = true;
        break;
      case Cmd.UNSUBSCRIBE:
        expected = 0;
        break;
      case Cmd.MONITOR:
        this.monitor = true;
        break;
      case Cmd.SYNC:
        this.replicationLink = true;
        expected = 0;
        break;
      case Cmd.QUIT:
        this.quitSent = true;
        break;
      case Cmd.RESET:
        this.inTransaction = this.subscribed = this.shardSubscribed = this.monitor = this.replyOff = this.skipNext = this.resp3 = false;
        this.helloAt = 0;
        break;
      case Cmd.HELLO:
        // The switch takes effect when the reply shows HELLO succeeded (Pika answers -ERR).
        if (s.helloVersion !== 0 && expected > 0) {
          this.helloAt = this.sent + 1;
          this.helloVersion = s.helloVersion;
        }
        break;
      case Cmd.BLOCKING:
        if (!this.inTransaction && expected > 0) this.blockedUntil = this.sent + 1;
        break;
      case Cmd.XREAD:
        if (s.blockArg && !this.inTransaction && expected > 0) this.blockedUntil = this.sent + 1;
        break;
      default:
        break;
    }
    this.sent += expected;
    if (kind !== Cmd.OTHER || this.currentMode === 'reply_off') this.refreshMode();
  }

  private onProtocolError(err: unknown, chunk: Buffer, fwdStart: number, cmdStart: number): void {
    if (!isSidecarError(err, 'ERR_PROTOCOL')) return this.onInternalError(err);
    this.ctx.hot.protocolErrors++;
    // Complete commands before the bad one are forwarded; the bad one is not.
    if (cmdStart > fwdStart) this.writeBackend(chunk.subarray(fwdStart, cmdStart));
    this.protocolError = err.message;
    this.log().warn({ session: this.id, remote: this.remote, err: err.message }, 'client sent malformed RESP; closing its connection after its earlier replies');
    this.pendingReason = 'protocol_error';
    this.stopInput();
  }

  /**
   * A bug in the data path (anything but a protocol error) costs this one session, never the
   * process: every other session keeps its replies in flight.
   */
  private onInternalError(err: unknown): void {
    this.log().error({ session: this.id, err: err instanceof Error ? err.stack : String(err) }, 'internal error in the data path; destroying this session only');
    this.destroy('destroyed');
  }

  private writeBackend(buf: Buffer): void {
    if (!this.backend.write(buf)) this.client.pause();
  }

  // ─── backend → client ───────────────────────────────────────────────────────────────────────

  private handleBackendData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    if (this.replicationLink && this.replies.atBoundary && this.received >= this.sent) {
      this.writeClient(chunk);
      return;
    }
    const scanner = this.replies;
    let pos = 0;
    let written = 0;
    try {
      while (pos < chunk.length) {
        const frameStart = scanner.atBoundary ? pos : -1; // -1: the frame began in an earlier chunk
        const at = scanner.next(chunk, pos);
        if (at === NEED_MORE) {
          if (this.subscribed) this.keepFrameHead(chunk, frameStart);
          break;
        }
        pos = at;
        let counted = scanner.frameKind === FRAME_REPLY && this.received < this.sent; // else push/attribute/unsolicited
        if (this.subscribed && this.received >= this.subscribedFrom && scanner.frameKind === (this.resp3 ? FRAME_PUSH : FRAME_REPLY)) {
          if (this.isPubSubFrame(chunk, frameStart, at)) counted = false;
        }
        if (counted) {
          this.received++;
          if (this.received === this.blockedUntil) this.refreshMode();
          if (this.received === this.helloAt) this.onHelloReply(chunk, frameStart);
        }
        // An error reply the sidecar owes goes right after the frame that makes it due.
        const inj = this.injections[0];
        if (inj !== undefined && this.received >= inj.at) {
          this.writeClient(chunk.subarray(written, at));
          written = at;
          this.flushInjections();
        }
        if (!counted) continue;
        if (this.closeAtReplyBoundary || (this.closeWhenIdle && this.canClose())) {
          if (at > written) this.writeClient(chunk.subarray(written, at));
          this.finish();
          return;
        }
        if (this.replicationLink && this.received >= this.sent) {
          // +FULLRESYNC / +CONTINUE arrived; the rest is an RDB payload and the command stream.
          this.writeClient(chunk.subarray(written));
          return;
        }
      }
    } catch (err) {
      if (!isSidecarError(err, 'ERR_PROTOCOL')) return this.onInternalError(err);
      this.log().error({ session: this.id, err: err.message }, 'backend sent malformed RESP; destroying the session');
      this.destroy('destroyed');
      return;
    }
    if (written === 0) this.writeClient(chunk);
    else if (written < chunk.length) this.writeClient(chunk.subarray(written));
    if (this.replies.atBoundary && (this.closeAtReplyBoundary || (this.closeWhenIdle && this.canClose()))) this.finish();
  }

  /** HELLO switched the protocol unless its reply is an error (a frame cut by a chunk start counts as success). */
  private onHelloReply(chunk: Buffer, frameStart: number): void {
    this.helloAt = 0;
    if (frameStart < 0 || chunk[frameStart] !== 0x2d) this.resp3 = this.helloVersion === 3;
  }

  /** A frame in subscribed context: a message or confirmation (not a reply)? Ends the mode on a zero count. */
  private isPubSubFrame(chunk: Buffer, frameStart: number, end: number): boolean {
    let head: Buffer;
    if (frameStart >= 0) head = chunk.subarray(frameStart, Math.min(end, frameStart + PUBSUB_HEAD_BYTES));
    else {
      const saved = this.frameHead!.subarray(0, this.frameHeadLen);
      head = saved.length >= PUBSUB_HEAD_BYTES ? saved : Buffer.concat([saved, chunk.subarray(0, Math.min(end, PUBSUB_HEAD_BYTES - saved.length))]);
    }
    const kind = classifyPubSubHead(head);
    if (kind === PUBSUB_UNSUBSCRIBED && !this.shardSubscribed && endsWithZeroCount(chunk, frameStart, end)) {
      this.subscribed = false; // no subscription left: the backend is out of pub/sub context
      this.refreshMode();
    }
    return kind !== PUBSUB_OTHER;
  }

  /** Saves the head of a frame a chunk end cut, so it can be classified when it completes. */
  private keepFrameHead(chunk: Buffer, frameStart: number): void {
    const head = this.frameHead!;
    if (frameStart >= 0) this.frameHeadLen = chunk.copy(head, 0, frameStart, Math.min(chunk.length, frameStart + PUBSUB_HEAD_BYTES));
    else if (this.frameHeadLen < PUBSUB_HEAD_BYTES) this.frameHeadLen += chunk.copy(head, this.frameHeadLen, 0, Math.min(chunk.length, PUBSUB_HEAD_BYTES - this.frameHeadLen));
  }

  private flushInjections(): void {
    while (this.injections.length > 0 && this.received >= this.injections[0]!.at) {
      this.client.write(this.injections.shift()!.reply);
    }
  }

  private writeClient(buf: Buffer): void {
    if (!this.client.write(buf)) this.backend.pause();
  }

  /** Nothing outstanding: every forwarded command's reply was written to the client. */
  private isIdle(): boolean {
    return this.received >= this.sent && this.replies.atBoundary && this.injections.length === 0;
  }

  // ─── closing ────────────────────────────────────────────────────────────────────────────────

  /** May close now: nothing outstanding, and no transaction the drain must let finish. */
  private canClose(): boolean {
    return this.isIdle() && (!this.inTransaction || this.inputStopped);
  }

  private stopInput(): void {
    this.inputStopped = true;
    this.held = undefined;
    this.client.pause();
    this.closeWhenIdle = true;
    if (this.canClose()) this.finish();
  }

  private onClientEnd(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.pendingReason ??= 'client_quit';
    this.stopInput();
  }

  private onClientClose(): void {
    if (this.state === 'closing') this.done();
    else this.destroy('client_quit');
  }

  private onBackendEnd(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    // Whatever the backend sent was already written to the client; end after it.
    if (this.quitSent) {
      this.close('client_quit', 0);
      return;
    }
    this.log().warn({ session: this.id, inflight: this.inflight }, 'backend closed the connection; closing the client');
    this.close('backend_closed', this.inflight);
  }

  /**
   * Drain: forward nothing new (except inside an open MULTI, until EXEC/DISCARD); close once every
   * forwarded command's reply has been delivered. A command only partly received is dropped: it
   * never reached the backend whole, so it was not executed and is safe to retry. Subscribed and
   * monitor sessions close like any other, at the first reply frame boundary with nothing counted
   * outstanding. Replication links are left alone (they close after replication_sync).
   */
  drain(): void {
    if (this.state !== 'open') return;
    this.setState('draining');
    this.pendingReason ??= 'drained';
    if (this.replicationLink) return;
    this.closeWhenIdle = true;
    if (!this.inTransaction) this.stopInput();
  }

  /** Counts this session's eventual graceful close under `reason` (e.g. `unblocked`). */
  labelClose(reason: CloseReason): void {
    if (this.state === 'open' || this.state === 'draining') this.pendingReason = reason;
  }

  /** Close at the next reply frame boundary, whatever is still in flight (counted as abandoned). */
  closeAtBoundary(reason: CloseReason): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.pendingReason = reason;
    this.closeAtReplyBoundary = true;
    this.stopInput();
    if (this.replies.atBoundary) this.finish();
  }

  private finish(): void {
    this.close(this.pendingReason ?? 'drained', this.inflight);
  }

  /**
   * Graceful end: the client's queued bytes are flushed, then its socket ends; the backend
   * connection is destroyed (an incomplete command on it is discarded by the backend).
   * 'closed' is emitted once the client socket has closed, bounded by CLIENT_FLUSH_TIMEOUT_MS.
   */
  private close(reason: CloseReason, abandoned: number): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.setState('closing');
    this.closeInfo = closeInfo(reason, abandoned);
    this.detach();
    if (this.protocolError !== undefined) this.client.write(sidecarErrorReply(this.protocolError));
    this.client.end();
    // Read (and discard: no data listener is attached) until the client's FIN, so 'close' comes
    // as soon as the client has its last bytes; a paused socket would never see the FIN.
    this.client.resume();
    this.backend.destroy();
    // A client that never reads its replies must not hold the session open.
    const timer = setTimeout(() => this.client.destroy(), CLIENT_FLUSH_TIMEOUT_MS);
    timer.unref();
    this.client.once('close', () => clearTimeout(timer));
  }

  /** Forced: both sockets now; in-flight commands are counted as abandoned. Idempotent. */
  destroy(reason: CloseReason = 'destroyed'): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') this.closeInfo = closeInfo(reason, this.inflight);
    this.detach();
    this.client.destroy();
    this.backend.destroy();
    this.done();
  }

  private detach(): void {
    this.client.off('data', this.onClientData);
    this.backend.off('data', this.onBackendData);
    this.held = undefined;
  }

  private done(): void {
    if (this.state === 'closed') return;
    this.setState('closed');
    const info = this.closeInfo ?? { reason: 'destroyed', abandoned: 0 };
    if (this.log().isLevelEnabled('debug')) this.log().debug({ session: this.id, reason: info.reason, abandoned: info.abandoned }, 'session closed');
    this.emit('closed', info);
  }
}
