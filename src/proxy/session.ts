/**
 * One client session: one client connection ↔ one dedicated backend connection, for its whole life.
 *
 *   client ──bytes──▶ RequestScanner: finds each command's name (EV_NAME) and end (EV_END)
 *            │          EV_NAME: forward, or refuse (denied list / replication during shutdown),
 *            │                   or stop here (draining: nothing new is forwarded)
 *            │          EV_END:  the model (accounting.ts) records what the command will get back
 *            └──────▶ the same bytes, unmodified, to the backend (ranges of the chunk, no copies)
 *   client ◀─bytes─── ReplyScanner: top-level frames; the model says which are replies owed to the
 *                       client (pushes, messages, MONITOR lines are not); the same bytes to the client
 *
 * A refused command never reaches the backend: a stand-in does, an unknown command that fails
 * the way the refused one must (one error reply, silenced by CLIENT REPLY OFF/SKIP like any, and
 * inside MULTI a queue-time error that makes EXEC answer EXECABORT and run nothing, on Redis and
 * on Pika). The backend's error for the stand-in is replaced by the sidecar's refusal text.
 *
 * Once SYNC/PSYNC is forwarded the session is a `replication_link`: the backend sends an RDB
 * payload that is not RESP, so both directions become a raw pipe.
 *
 * Backpressure both ways: a write that returns false pauses the other side until 'drain'; a client
 * whose unsent output is full is not read either (so a client that never reads cannot make the
 * sidecar, or the backend, queue replies without bound).
 * A client's FIN is passed on to the backend, which answers what it has and closes: the session
 * ends then, whatever any count says. Graceful and forced are separate verbs: `drain()` (stop at a
 * command boundary, close when idle), `closeAtBoundary()` (close at the next reply frame
 * boundary), `destroy()` (now).
 */
import type net from 'node:net';
import { EventEmitter } from 'node:events';
import { CommandTable, Cmd } from '../resp/command-table.js';
import { RequestScanner, NEED_MORE, EV_NAME } from '../resp/request-scanner.js';
import { ReplyScanner, FRAME_ATTRIBUTE, FRAME_REPLY } from '../resp/reply-scanner.js';
import { REFUSED_STAND_IN, sidecarErrorReply } from '../backend/encode.js';
import { reuseBufferOnAccepted, setReadSink } from '../backend/read-buffer.js';
import { classifyPubSub, PUBSUB_HEAD_BYTES, PUBSUB_KIND_SHIFT, PUBSUB_MESSAGE, PUBSUB_OTHER, trailingCount } from './pubsub-frames.js';
import {
  SessionAccounting,
  FRAME_NOT_OWED,
  FRAME_OWED,
  FRAME_REFUSAL,
  SUB_CHANNEL,
  SUB_PATTERN,
  SUB_SHARD,
  type CommandArgs,
  type FrameInfo,
} from './accounting.js';
import type { LogSummary } from '../observability/log-summary.js';
import { isSidecarError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { CloseReason, SessionMode } from '../observability/names.js';
import type { HotCounters } from '../observability/metrics.js';
import { RESP_TYPES } from '../resp/resp-types.js';

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
  /** Per-event data-path logs (refusals): the first now, then periodic summaries. */
  events: LogSummary;
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
/** Bytes kept of the end of a cut pub/sub frame: its `:count\r\n`. */
const TAIL_BYTES = 24;
/** How long a closing client may take to accept its last bytes before it is destroyed. */
const CLIENT_FLUSH_TIMEOUT_MS = 1000;

export class Session extends EventEmitter {
  readonly id = nextId++;
  readonly remote: string;
  private state: SessionState = 'open';
  private currentMode: SessionMode = 'normal';

  /** What is owed to the client (see accounting.ts). */
  readonly model = new SessionAccounting();
  private modelVersion = 0;
  /** A MULTI was forwarded and no EXEC/DISCARD/RESET after it (the drain lets it finish). */
  private requestInMulti = false;
  private replicationLink = false;
  private quitSent = false;
  /** The client sent its FIN: the backend got one too and closes once it has answered. */
  private clientEnded = false;
  /** The client's unsent output is full: neither side is read until it drains. */
  private clientFull = false;
  /** The backend's unsent input is full: the client is not read until it drains. */
  private backendFull = false;

  // Request side.
  private readonly requests: RequestScanner;
  /** Bytes of a command whose name is not known yet, from earlier chunks (held back, not forwarded). */
  private held: Buffer | undefined;
  /** The current command's name is known and it is being forwarded (true) or discarded (false). */
  private forwardingCurrent = true;
  private nameSeen = false;
  /** Stop forwarding anything more from the client (drain, protocol error, client gone). */
  private inputStopped = false;
  /** The refusal of the command being dropped, recorded at its end. */
  private refusal: Buffer | undefined;
  private protocolError: string | undefined;
  /** Ids of the pattern and shard (un)subscribe commands. */
  private readonly patternIds: ReadonlySet<number>;
  private readonly shardIds: ReadonlySet<number>;
  private readonly args: CommandArgs = { argc: 0, clientReply: 0, helloVersion: 0, subKind: 0, blockArg: false };

  // Reply side.
  private readonly replies: ReplyScanner;
  private readonly frameInfo: FrameInfo = { kind: 0, firstByte: 0, pubsub: PUBSUB_OTHER, subKind: 0, count: 0 };
  /** The first byte of the frame being scanned. */
  private frameFirst = 0;
  /** The frame being scanned is the stand-in's error: dropped, the refusal goes out instead. */
  private swallowing = false;
  /** The first and the last bytes of a pub/sub-context frame cut by chunk ends (allocated on need). */
  private frameHead: Buffer | undefined;
  private frameHeadLen = 0;
  private frameTail: Buffer | undefined;
  private frameTailLen = 0;
  private closeAtReplyBoundary = false;
  private closeWhenIdle = false;
  private pendingReason: CloseReason | undefined;
  private closeInfo: SessionCloseInfo | undefined;

  private readonly onClientData = (chunk: Buffer) => this.handleClientData(chunk);
  private readonly onBackendData = (chunk: Buffer) => this.handleBackendData(chunk);
  /**
   * A pool socket's reads arrive in its reused buffer (read-buffer.ts), valid until this returns.
   * Nothing on the reply side keeps a chunk: partial pub/sub frames are copied (keepFrameEnds),
   * the scanner keeps numbers. Only a client write still queued (not completed synchronously)
   * keeps the bytes, and then the socket reads into a new buffer.
   */
  private readonly onBackendRead = (chunk: Buffer): boolean => {
    this.handleBackendData(chunk);
    return this.client.writableLength > 0;
  };
  /** The backend's reads come through onBackendRead (a pool socket), not 'data'. */
  private readonly backendReused: boolean;
  /**
   * The same for the client (reuseBufferOnAccepted). The request side keeps no chunk either: a
   * command held back is copied (`held`), the scanner copies the bytes it needs; only a backend
   * write still queued keeps them.
   */
  private readonly onClientRead = (chunk: Buffer): boolean => {
    this.handleClientData(chunk);
    return this.backend.writableLength > 0;
  };
  private readonly clientReused: boolean;

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
    const t = ctx.table;
    this.patternIds = new Set([t.idOf('psubscribe'), t.idOf('punsubscribe')]);
    this.shardIds = new Set([t.idOf('ssubscribe'), t.idOf('sunsubscribe')]);

    this.clientReused = reuseBufferOnAccepted(client, this.onClientRead);
    if (!this.clientReused) client.on('data', this.onClientData);
    this.backendReused = setReadSink(backend, this.onBackendRead);
    if (!this.backendReused) backend.on('data', this.onBackendData);
    // Backpressure: each side pauses the other while its write buffer is full.
    backend.on('drain', () => {
      this.backendFull = false;
      this.resumeClient();
    });
    client.on('drain', () => {
      this.clientFull = false;
      if (this.state === 'closed') return;
      backend.resume();
      this.resumeClient();
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
    return this.model.owed;
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
    const m = this.model;
    this.modelVersion = m.version;
    const to: SessionMode = this.replicationLink
      ? 'replication_link'
      : m.monitor
        ? 'monitor'
        : m.subscribed
          ? 'subscribed'
          : m.blocked
            ? 'blocked'
            : this.requestInMulti || m.inMulti
              ? 'transaction'
              : m.replyOff
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
            // The refused command's bytes go nowhere; its stand-in takes its place.
            fwdStart = at;
            this.forwardingCurrent = true;
            this.writeBackend(REFUSED_STAND_IN);
            this.model.refused(this.refusal);
            this.refusal = undefined;
            if (this.model.version !== this.modelVersion) this.refreshMode();
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
    if (this.state === 'draining' && !this.requestInMulti) return 'stop';
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

  /** Records the refusal of the command being dropped; it is sent in place of its stand-in's error. */
  private refuse(message: string): void {
    this.ctx.hot.deniedCommands++;
    this.ctx.events.event('info', `refused:${message}`, { session: this.id, reason: message }, 'refused a command');
    this.refusal = sidecarErrorReply(message);
  }

  /** A forwarded command is complete: the model records what it will get back. */
  private account(): void {
    const s = this.requests;
    const kind = this.ctx.table.kind(s.commandId);
    this.ctx.hot.commands++;
    const m = this.model;
    switch (kind) {
      case Cmd.OTHER:
      case Cmd.PING:
      case Cmd.AUTH:
      case Cmd.SHUTDOWN:
      case Cmd.WATCH:
      case Cmd.UNWATCH:
      case Cmd.REPLICAOF:
        m.forwardedPlain();
        if (m.version !== this.modelVersion) this.refreshMode();
        return;
      case Cmd.MULTI:
        this.requestInMulti = true;
        break;
      case Cmd.EXEC:
      case Cmd.DISCARD:
      case Cmd.RESET:
        this.requestInMulti = false;
        break;
      case Cmd.SYNC:
        // +FULLRESYNC, the keepalive newlines and the RDB payload are not RESP: once every earlier
        // reply has arrived, the rest is a raw stream (handleBackendData).
        this.replicationLink = true;
        this.refreshMode();
        return;
      case Cmd.QUIT:
        this.quitSent = true;
        break;
      default:
        break;
    }
    const a = this.args;
    a.argc = s.argc;
    a.clientReply = s.clientReply;
    a.helloVersion = s.helloVersion;
    a.blockArg = s.blockArg;
    a.subKind = this.shardIds.has(s.commandId) ? SUB_SHARD : this.patternIds.has(s.commandId) ? SUB_PATTERN : SUB_CHANNEL;
    m.forwarded(kind, a);
    this.refreshMode();
  }

  private onProtocolError(err: unknown, chunk: Buffer, fwdStart: number, cmdStart: number): void {
    if (!isSidecarError(err, 'ERR_PROTOCOL')) return this.onInternalError(err);
    this.ctx.hot.protocolErrors++;
    // Complete commands before the bad one are forwarded; the bad one is not.
    if (cmdStart > fwdStart) this.writeBackend(chunk.subarray(fwdStart, cmdStart));
    this.protocolError = err.message;
    this.log().warn(
      { session: this.id, remote: this.remote, err: err.message },
      'client sent malformed RESP; closing its connection after its earlier replies',
    );
    this.pendingReason = 'protocol_error';
    this.stopInput();
  }

  /**
   * A bug in the data path (anything but a protocol error) costs this one session, never the
   * process: every other session keeps its replies in flight.
   */
  private onInternalError(err: unknown): void {
    this.log().error(
      { session: this.id, err: err instanceof Error ? err.stack : String(err) },
      'internal error in the data path; destroying this session only',
    );
    this.destroy('destroyed');
  }

  private writeBackend(buf: Buffer): void {
    if (!this.backend.write(buf)) {
      this.backendFull = true;
      this.client.pause();
    }
  }

  /** Reads the client again once nothing holds it back. */
  private resumeClient(): void {
    if (this.state === 'closed' || this.inputStopped || this.clientFull || this.backendFull) return;
    this.client.resume();
  }

  // ─── backend → client ───────────────────────────────────────────────────────────────────────

  private handleBackendData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    const m = this.model;
    if (this.replicationLink && this.replies.atBoundary && m.owed === 0) {
      this.writeClient(chunk);
      return;
    }
    const scanner = this.replies;
    let pos = 0;
    let written = 0;
    try {
      while (pos < chunk.length) {
        let frameStart = -1; // -1: the frame began in an earlier chunk
        if (scanner.atBoundary) {
          frameStart = pos;
          this.frameFirst = chunk[pos]!;
          if (this.frameFirst === RESP_TYPES.ERROR && m.headIsRefusal) {
            // The stand-in's error: forward what came before it, then drop it.
            if (pos > written) this.writeClient(chunk.subarray(written, pos));
            written = pos;
            this.swallowing = true;
          }
        }
        const at = scanner.next(chunk, pos);
        if (at === NEED_MORE) {
          if (m.wantsPubSubHead) this.keepFrameEnds(chunk, frameStart);
          if (this.swallowing) written = chunk.length;
          break;
        }
        pos = at;
        // The common case (a reply to a plain command, nothing to read in it) skips onFrame.
        let verdict = FRAME_OWED;
        if (this.swallowing || scanner.frameKind !== FRAME_REPLY || !m.plainReply()) {
          const refusal = this.swallowing ? m.headRefusal<Buffer>() : undefined;
          verdict = this.onFrame(chunk, frameStart, at);
          if (verdict === FRAME_REFUSAL || refusal !== undefined) {
            this.swallowing = false;
            written = at;
            this.writeClient(refusal ?? sidecarErrorReply('refused by pika-sidecar'));
          }
        }
        if (m.version !== this.modelVersion) this.refreshMode();
        if (verdict === FRAME_NOT_OWED) continue;
        if (this.closeAtReplyBoundary || (this.closeWhenIdle && this.canClose())) {
          if (at > written) this.writeClient(chunk.subarray(written, at));
          this.finish();
          return;
        }
        if (this.replicationLink && m.owed === 0) {
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

  /** Tells the model about the frame chunk[frameStart, end) (frameStart -1: begun in an earlier chunk). */
  private onFrame(chunk: Buffer, frameStart: number, end: number): number {
    const m = this.model;
    const f = this.frameInfo;
    f.kind = this.replies.frameKind;
    f.firstByte = this.frameFirst;
    f.pubsub = PUBSUB_OTHER;
    f.subKind = 0;
    f.count = 0;
    if (f.kind !== FRAME_ATTRIBUTE && (this.frameFirst === RESP_TYPES.ARRAY || this.frameFirst === RESP_TYPES.PUSH) && m.wantsPubSubHead) {
      const c = classifyPubSub(this.frameHeadOf(chunk, frameStart, end));
      f.pubsub = c & ((1 << PUBSUB_KIND_SHIFT) - 1);
      f.subKind = c >> PUBSUB_KIND_SHIFT;
      if (f.pubsub !== PUBSUB_OTHER && f.pubsub !== PUBSUB_MESSAGE) f.count = this.countOf(chunk, frameStart, end);
    }
    return m.frame(f);
  }

  /** The first bytes of the frame ending at `end`. */
  private frameHeadOf(chunk: Buffer, frameStart: number, end: number): Buffer {
    if (frameStart >= 0) return chunk.subarray(frameStart, Math.min(end, frameStart + PUBSUB_HEAD_BYTES));
    const saved = this.frameHead!.subarray(0, this.frameHeadLen);
    return saved.length >= PUBSUB_HEAD_BYTES
      ? saved
      : Buffer.concat([saved, chunk.subarray(0, Math.min(end, PUBSUB_HEAD_BYTES - saved.length))]);
  }

  /** The subscription count that ends a confirmation (`:N\r\n`), or 0 when unreadable. */
  private countOf(chunk: Buffer, frameStart: number, end: number): number {
    const from = frameStart >= 0 ? frameStart : 0;
    let n: number;
    if (end - from >= TAIL_BYTES || frameStart >= 0) n = trailingCount(chunk, from, end);
    else
      n = trailingCount(
        Buffer.concat([this.frameTail!.subarray(0, this.frameTailLen), chunk.subarray(0, end)]),
        0,
        this.frameTailLen + end,
      );
    return n < 0 ? 0 : n;
  }

  /** Saves the head and the tail of a frame a chunk end cut, so it can be classified when it completes. */
  private keepFrameEnds(chunk: Buffer, frameStart: number): void {
    const head = (this.frameHead ??= Buffer.alloc(PUBSUB_HEAD_BYTES));
    const tail = (this.frameTail ??= Buffer.alloc(TAIL_BYTES));
    if (frameStart >= 0) {
      this.frameHeadLen = chunk.copy(head, 0, frameStart, Math.min(chunk.length, frameStart + PUBSUB_HEAD_BYTES));
      this.frameTailLen = 0;
    } else if (this.frameHeadLen < PUBSUB_HEAD_BYTES) {
      this.frameHeadLen += chunk.copy(head, this.frameHeadLen, 0, Math.min(chunk.length, PUBSUB_HEAD_BYTES - this.frameHeadLen));
    }
    // The last TAIL_BYTES bytes of the frame so far.
    const from = Math.max(frameStart, 0);
    const got = chunk.length - from;
    if (got >= TAIL_BYTES) {
      this.frameTailLen = chunk.copy(tail, 0, chunk.length - TAIL_BYTES);
    } else {
      const keep = Math.min(this.frameTailLen, TAIL_BYTES - got);
      tail.copy(tail, 0, this.frameTailLen - keep, this.frameTailLen);
      this.frameTailLen = keep + chunk.copy(tail, keep, from);
    }
  }

  private writeClient(buf: Buffer): void {
    if (!this.client.write(buf)) {
      this.clientFull = true;
      this.backend.pause();
      this.client.pause();
    }
  }

  // ─── closing ────────────────────────────────────────────────────────────────────────────────

  /** May close now: nothing owed (and the model is sure), no transaction the drain must let finish. */
  private canClose(): boolean {
    return this.model.idle && this.replies.atBoundary && (!this.requestInMulti || this.inputStopped);
  }

  private stopInput(): void {
    this.inputStopped = true;
    this.held = undefined;
    this.client.pause();
    this.closeWhenIdle = true;
    if (this.canClose()) this.finish();
  }

  /**
   * The client half-closed. Like a direct client's FIN, it goes on to the backend, which answers
   * what it has already read and closes; the session ends then (onBackendEnd), whatever the model
   * says is owed.
   */
  private onClientEnd(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.pendingReason ??= 'client_quit';
    this.clientEnded = true;
    this.stopInput();
    if (!this.backend.destroyed) this.backend.end();
  }

  private onClientClose(): void {
    if (this.state === 'closing') this.done();
    else this.destroy('client_quit');
  }

  private onBackendEnd(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    // Whatever the backend sent was already written to the client; end after it.
    if (this.quitSent || this.clientEnded) {
      this.close('client_quit', 0);
      return;
    }
    const owed = this.model.owedReplies();
    this.log().warn({ session: this.id, inflight: owed }, 'backend closed the connection; closing the client');
    this.close('backend_closed', owed);
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
    if (!this.requestInMulti) this.stopInput();
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
    this.close(this.pendingReason ?? 'drained', this.model.owedReplies());
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
    if (this.state !== 'closing') this.closeInfo = closeInfo(reason, this.model.owedReplies());
    this.detach();
    this.client.destroy();
    this.backend.destroy();
    this.done();
  }

  private detach(): void {
    if (this.clientReused) setReadSink(this.client, undefined);
    else this.client.off('data', this.onClientData);
    if (this.backendReused) setReadSink(this.backend, undefined);
    else this.backend.off('data', this.onBackendData);
    this.held = undefined;
  }

  private done(): void {
    if (this.state === 'closed') return;
    this.setState('closed');
    const info = this.closeInfo ?? { reason: 'destroyed', abandoned: 0 };
    if (this.log().isLevelEnabled('debug'))
      this.log().debug({ session: this.id, reason: info.reason, abandoned: info.abandoned }, 'session closed');
    this.emit('closed', info);
  }
}
