/**
 * The pure model of one session's protocol state: what the backend will send back for the commands
 * forwarded so far, and which of the frames it sends are replies the client is owed.
 *
 *   request side ──▶ forwarded(kind, args)   one entry per command (runs of plain commands merged)
 *   reply side   ──▶ frame(info)             a top-level frame: a reply of the head entry or not
 *   drain        ──▶ owed / idle             is anything still owed to this client?
 *
 * No sockets, timers or logs: fed by scanner events, unit-tested as a table
 * (test/unit/accounting.test.ts) and checked against a real redis-server by the differential
 * fuzzer (test/integration/session-fuzz.test.ts).
 *
 * Commands are judged when they reach the head of the queue, in reply order: by then every earlier
 * frame has arrived, so the state the backend judged the command in (reply mode, transaction,
 * subscription counts read from confirmations, RESP version read from HELLO's reply) is known
 * exactly, not predicted. Redis 7.0 semantics, checked against redis-server 7.0.15:
 * - CLIENT REPLY OFF/SKIP silence replies, never (un)subscribe confirmations; SKIP is used up by
 *   the next command, an empty one (`*0`, a blank line) included; ON always answers +OK.
 * - (P|S)SUBSCRIBE x y → one confirmation per channel; (P|S)UNSUBSCRIBE with no channel → one per
 *   subscribed channel of that kind, or a single one (null channel) when there is none.
 * - In RESP2 with a subscription, only (P|S)(UN)SUBSCRIBE, PING, QUIT and RESET run; anything
 *   else is one error reply and changes nothing.
 * - Inside MULTI every command but EXEC/DISCARD/MULTI/WATCH/QUIT/RESET is one reply (+QUEUED or a
 *   queue-time error). A mode change queued in a transaction takes effect inside EXEC, where it
 *   cannot be seen: the model then says `uncertain` and never claims the session idle.
 *
 * Hot path: a plain command (GET, SET, ...) adds 1 to the run at the tail; a reply takes 1 from
 * the run at the head. Entries live in a ring of typed arrays that grows by doubling (rarely).
 */
import { Cmd, type CmdKind } from '../resp/command-table.js';
import { PUBSUB_MESSAGE, PUBSUB_OTHER, PUBSUB_SUBSCRIBED, PUBSUB_UNSUBSCRIBED } from './pubsub-frames.js';
import { FRAME_ATTRIBUTE, FRAME_PUSH, FRAME_REPLY } from '../resp/reply-scanner.js';
import { REPLY_OFF, REPLY_ON, REPLY_SKIP } from '../resp/argument-classifier.js';
import { RESP_TYPES } from '../resp/resp-types.js';

// Entry kinds.
const E_PLAIN = 0; // a run of `count` commands that each get one reply (or none when silenced)
const E_COMMAND = 1; // one command with its own rules (kind, argc, param)
const E_REFUSED = 2; // a command the sidecar refused: the backend got a stand-in that fails alike

/** Channel kinds of (un)subscribe commands and confirmations. */
export const SUB_CHANNEL = 0;
export const SUB_PATTERN = 1;
export const SUB_SHARD = 2;

/** What a top-level frame is, as the session tells it (only what the model asks for). */
export interface FrameInfo {
  /** FRAME_REPLY / FRAME_PUSH / FRAME_ATTRIBUTE of the reply scanner. */
  kind: number;
  /** The frame's first byte ('-' for an error). */
  firstByte: number;
  /** PUBSUB_* classification when `wantsPubSubHead` was true; else PUBSUB_OTHER. */
  pubsub: number;
  /** For confirmations: SUB_CHANNEL / SUB_PATTERN / SUB_SHARD. */
  subKind: number;
  /** For confirmations: the subscription count that ends the frame. */
  count: number;
}

/** What frame() decided. */
export const FRAME_NOT_OWED = 0; // a push, message, attribute, MONITOR line: forwarded, not counted
export const FRAME_OWED = 1; // a reply or confirmation the client was owed
export const FRAME_REFUSAL = 2; // the stand-in's error: the session replaces it with the refusal

const ERROR_BYTE = RESP_TYPES.ERROR;
const EFFECT_HELLO = 1;
const EFFECT_MONITOR = 2;

/** Details of a command the model needs beyond its kind (from the request scanner). */
export interface CommandArgs {
  argc: number;
  /** REPLY_ON / REPLY_OFF / REPLY_SKIP (argument-classifier.ts) for `CLIENT REPLY x`, else 0. */
  clientReply: number;
  /** 2 or 3 for `HELLO 2|3 ...`, else 0. */
  helloVersion: number;
  /** SUB_* for the (un)subscribe family. */
  subKind: number;
  /** XREAD/XREADGROUP with BLOCK. */
  blockArg: boolean;
}

export class SessionAccounting {
  // ── the backend's state, as of the head of the queue ──
  replyOff = false;
  /** The command at the head is the one a CLIENT REPLY SKIP silences. */
  private skipThis = false;
  inMulti = false;
  /** A mode change was queued in the current transaction (its effect inside EXEC is unseen). */
  private multiChangesMode = false;
  resp3 = false;
  channels = 0;
  patterns = 0;
  shards = 0;
  monitor = false;
  /** The model can no longer tell replies from other frames with certainty (see header). */
  uncertain = false;
  /** The backend will close the connection (QUIT was answered). */
  quitting = false;

  // ── the queue of commands whose frames are still due ──
  private cap = 16;
  private kinds: Uint8Array = new Uint8Array(this.cap);
  private cmdKinds: Uint8Array = new Uint8Array(this.cap);
  private counts: Int32Array = new Int32Array(this.cap);
  private params: Int32Array = new Int32Array(this.cap);
  private extras: Int32Array = new Int32Array(this.cap);
  private head = 0;
  private size = 0;
  /** Frames still due for the head command once it was judged; -1: not judged yet. */
  private headDue = -1;
  /** What the head's reply decides: EFFECT_HELLO (the protocol) or EFFECT_MONITOR. */
  private headEffect = 0;
  /** The refusal texts of E_REFUSED entries, in order (allocated on the first refusal). */
  private refusals: unknown[] | undefined;
  private refusalHead = 0;
  /** Commands in the queue (a run counts each of its commands). */
  private queued = 0;
  /** Bumped whenever something a session mode depends on changes. */
  version = 0;

  /** Commands forwarded whose frames have not all arrived (an upper bound until they reach the head). */
  get owed(): number {
    return this.queued;
  }

  /** Nothing is owed and the model is sure of it. */
  get idle(): boolean {
    return this.queued === 0 && !this.uncertain;
  }

  get subscribed(): boolean {
    return this.channels + this.patterns + this.shards > 0;
  }

  /** The head command is blocked on the backend (a blocking command awaiting its reply). */
  get blocked(): boolean {
    if (this.size === 0 || this.kinds[this.head] !== E_COMMAND || this.headDue <= 0) return false;
    const k = this.cmdKinds[this.head];
    return (k === Cmd.BLOCKING || (k === Cmd.XREAD && this.extras[this.head] === 1)) && !this.inMulti;
  }

  /** The head expects (un)subscribe confirmations, or a subscription is open: classify frames. */
  get wantsPubSubHead(): boolean {
    if (this.subscribed) return true;
    if (this.size === 0 || this.kinds[this.head] !== E_COMMAND) return false;
    const k = this.cmdKinds[this.head];
    return k === Cmd.SUBSCRIBE || k === Cmd.UNSUBSCRIBE;
  }

  /** The next owed frame is the stand-in's error: the session must not forward it. */
  get headIsRefusal(): boolean {
    return this.size > 0 && this.kinds[this.head] === E_REFUSED && this.headDue > 0;
  }

  /** The refusal text of the head E_REFUSED entry. */
  headRefusal<T>(): T {
    return this.refusals![this.refusalHead] as T;
  }

  // ─── request side ─────────────────────────────────────────────────────────────────────────

  /** A plain command was forwarded: one reply unless silenced. The hot path. */
  forwardedPlain(): void {
    this.queued++;
    if (this.size > 0) {
      const tail = (this.head + this.size - 1) & (this.cap - 1);
      if (this.kinds[tail] === E_PLAIN) {
        this.counts[tail]!++;
        return;
      }
    }
    this.push(E_PLAIN, Cmd.OTHER, 1, 0, 0);
    this.settle();
  }

  /** A command with rules of its own was forwarded. */
  forwarded(kind: CmdKind, a: CommandArgs): void {
    let param = 0;
    let extra = 0;
    switch (kind) {
      case Cmd.CLIENT:
        param = a.clientReply;
        extra = a.argc;
        break;
      case Cmd.HELLO:
        param = a.helloVersion;
        extra = a.argc;
        break;
      case Cmd.SUBSCRIBE:
      case Cmd.UNSUBSCRIBE:
        param = a.subKind;
        extra = a.argc;
        break;
      case Cmd.XREAD:
        extra = a.blockArg ? 1 : 0;
        break;
      default:
        break;
    }
    this.queued++;
    this.push(E_COMMAND, kind, 1, param, extra);
    this.settle();
  }

  /** A refused command: the backend got a stand-in (an unknown command) that fails the same way. */
  refused(refusal: unknown): void {
    (this.refusals ??= []).push(refusal);
    this.queued++;
    this.push(E_REFUSED, Cmd.OTHER, 1, 0, 0);
    this.settle();
  }

  // ─── reply side ───────────────────────────────────────────────────────────────────────────

  /** A complete top-level frame arrived. Returns FRAME_OWED / FRAME_NOT_OWED / FRAME_REFUSAL. */
  /**
   * The hot path: a reply frame (not a push or attribute) while the head is a run of plain
   * commands in no special mode and no subscription is open, so nothing about the frame needs
   * reading. Consumes it and returns true; false: call frame() with the frame's details.
   */
  plainReply(): boolean {
    if (
      this.headDue !== 1 ||
      this.kinds[this.head] !== E_PLAIN ||
      this.replyOff ||
      this.skipThis ||
      this.channels + this.patterns + this.shards > 0
    )
      return false;
    this.queued--;
    // The next command of the run is judged alike: one reply (headDue stays 1).
    if (--this.counts[this.head]! > 0) return true;
    this.headDue = -1;
    this.head = (this.head + 1) & (this.cap - 1);
    this.size--;
    this.settle();
    return true;
  }

  frame(f: FrameInfo): number {
    if (f.kind === FRAME_REPLY && f.pubsub === PUBSUB_OTHER && this.plainReply()) return FRAME_OWED;
    if (f.kind === FRAME_ATTRIBUTE) return FRAME_NOT_OWED;
    // Pub/sub frames are arrays in RESP2 and pushes in RESP3: an array in RESP3 is a reply.
    const pubsub = (this.resp3 ? f.kind === FRAME_PUSH : f.kind === FRAME_REPLY) ? f.pubsub : PUBSUB_OTHER;
    if (pubsub === PUBSUB_MESSAGE && (this.subscribed || this.wantsPubSubHead)) return FRAME_NOT_OWED;
    if (pubsub === PUBSUB_SUBSCRIBED || pubsub === PUBSUB_UNSUBSCRIBED) {
      if (this.headExpectsConfirmations()) {
        this.applyConfirmation(pubsub, f.subKind, f.count);
        this.consume();
        return FRAME_OWED;
      }
      if (f.kind !== FRAME_REPLY) return FRAME_NOT_OWED;
    } else if (f.kind !== FRAME_REPLY) {
      return FRAME_NOT_OWED; // a push (message, invalidation) is never a reply
    }
    if (this.size === 0 || this.headDue <= 0) {
      // Nothing owed: a MONITOR line, or a frame the model did not foresee.
      if (!this.monitor) this.uncertain = true;
      return FRAME_NOT_OWED;
    }
    const kindAtHead = this.kinds[this.head];
    if (kindAtHead === E_REFUSED && f.firstByte === ERROR_BYTE) {
      this.consume();
      return FRAME_REFUSAL;
    }
    if (this.headEffect === EFFECT_HELLO && f.firstByte !== ERROR_BYTE) this.setResp3(this.params[this.head] === 3);
    else if (this.headEffect === EFFECT_MONITOR && f.firstByte !== ERROR_BYTE) {
      this.monitor = true;
      this.version++;
    }
    this.consume();
    return FRAME_OWED;
  }

  /** How many of the queued commands still get a frame (for counting abandoned ones). */
  owedReplies(): number {
    // Walk the queue with the reply mode only: a silenced command is owed nothing.
    let off = this.replyOff;
    let skip = this.skipThis;
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      const at = (this.head + i) & (this.cap - 1);
      const kind = this.kinds[at];
      let count = this.counts[at]!;
      if (i === 0 && this.headDue > 0) {
        n++; // the head was judged: it is waiting for a frame
        if (kind !== E_PLAIN) continue;
        count--;
      } else if (kind === E_COMMAND) {
        const cmd = this.cmdKinds[at];
        const r = this.params[at];
        if (cmd === Cmd.EMPTY) {
          skip = false;
          continue;
        }
        if (cmd === Cmd.CLIENT && r !== 0) {
          if (r === REPLY_ON) n++;
          off = r === REPLY_OFF;
          skip = r === REPLY_SKIP && !off;
          continue;
        }
        if (cmd === Cmd.UNSUBSCRIBE || (cmd === Cmd.SUBSCRIBE && this.extras[at]! >= 2)) {
          n++; // confirmations are never silenced
          skip = false;
          continue;
        }
      }
      if (off) {
        skip = false;
        continue;
      }
      if (skip && count > 0) {
        skip = false;
        count--;
      }
      n += count;
    }
    return n;
  }

  // ─── judging the head ─────────────────────────────────────────────────────────────────────

  /** Judges head commands until one is waiting for a frame (or the queue is empty). */
  private settle(): void {
    while (this.size > 0 && this.headDue <= 0) {
      if (this.headDue === 0) {
        this.finishHead();
        continue;
      }
      this.headDue = this.judge();
    }
  }

  /** How many frames the head command gets, applying its effects on the backend's state. */
  private judge(): number {
    const at = this.head;
    const silent = this.replyOff || this.skipThis;
    this.skipThis = false; // resetClient() after every command, empty ones included
    const r = silent ? 0 : 1;
    this.headEffect = 0;
    const kind = this.kinds[at];
    if (kind !== E_COMMAND) return r;
    const cmd = this.cmdKinds[at] as CmdKind;
    if (cmd === Cmd.EMPTY) return 0;
    // RESP2 with a subscription: only the pub/sub commands, PING, QUIT and RESET run.
    if (
      !this.resp3 &&
      this.subscribed &&
      cmd !== Cmd.SUBSCRIBE &&
      cmd !== Cmd.UNSUBSCRIBE &&
      cmd !== Cmd.PING &&
      cmd !== Cmd.QUIT &&
      cmd !== Cmd.RESET
    ) {
      return r;
    }
    if (this.inMulti) {
      switch (cmd) {
        case Cmd.EXEC:
        case Cmd.DISCARD:
          if (cmd === Cmd.EXEC && this.multiChangesMode) this.uncertain = true;
          this.setMulti(false);
          return r;
        case Cmd.MULTI:
        case Cmd.WATCH:
          return r; // an error that does not abort the transaction
        case Cmd.QUIT:
          this.quitting = true;
          return r;
        case Cmd.RESET:
          return this.reset(silent);
        case Cmd.CLIENT:
        case Cmd.HELLO:
        case Cmd.SUBSCRIBE:
        case Cmd.UNSUBSCRIBE:
        case Cmd.MONITOR:
          this.multiChangesMode = true;
          return r; // +QUEUED (or a queue-time error)
        default:
          return r;
      }
    }
    switch (cmd) {
      case Cmd.MULTI:
        this.setMulti(true);
        return r;
      case Cmd.CLIENT: {
        const mode = this.params[at];
        if (mode === REPLY_ON) {
          this.replyOff = false;
          this.version++;
          return 1;
        }
        if (mode === REPLY_OFF) {
          this.replyOff = true;
          this.version++;
          return 0;
        }
        if (mode === REPLY_SKIP) {
          if (!this.replyOff) this.skipThis = true; // for the next command
          this.version++;
          return 0;
        }
        return r;
      }
      case Cmd.SUBSCRIBE: {
        const argc = this.extras[at]!;
        return argc < 2 ? r : argc - 1;
      }
      case Cmd.UNSUBSCRIBE: {
        const argc = this.extras[at]!;
        if (argc >= 2) return argc - 1;
        const sub = this.params[at];
        const n = sub === SUB_CHANNEL ? this.channels : sub === SUB_PATTERN ? this.patterns : this.shards;
        return n > 0 ? n : 1;
      }
      case Cmd.HELLO:
        // Answered with a map/array, or an error that leaves the protocol alone. A silenced HELLO
        // without AUTH cannot fail on Redis; with AUTH its outcome is unseen.
        if (this.params[at] === 0) return r;
        if (!silent) this.headEffect = EFFECT_HELLO;
        else if (this.extras[at] === 2) this.setResp3(this.params[at] === 3);
        else this.uncertain = true;
        return r;
      case Cmd.QUIT:
        this.quitting = true;
        return r;
      case Cmd.RESET:
        return this.reset(silent);
      case Cmd.MONITOR:
        if (silent) this.uncertain = true;
        else this.headEffect = EFFECT_MONITOR;
        return r;
      default:
        return r;
    }
  }

  /** RESET: every mode back to a fresh connection's, then +RESET (silenced only by SKIP). */
  private reset(silent: boolean): number {
    const skipped = silent && !this.replyOff;
    this.replyOff = false;
    this.setMulti(false);
    this.setResp3(false);
    this.channels = this.patterns = this.shards = 0;
    this.monitor = false;
    this.uncertain = false;
    this.version++;
    return skipped ? 0 : 1;
  }

  private setMulti(on: boolean): void {
    if (this.inMulti === on) return;
    this.inMulti = on;
    this.multiChangesMode = false;
    this.version++;
  }

  private setResp3(on: boolean): void {
    if (this.resp3 === on) return;
    this.resp3 = on;
    this.version++;
  }

  private headExpectsConfirmations(): boolean {
    if (this.size === 0 || this.headDue <= 0 || this.kinds[this.head] !== E_COMMAND || this.inMulti) return false;
    const k = this.cmdKinds[this.head];
    if (k !== Cmd.SUBSCRIBE && k !== Cmd.UNSUBSCRIBE) return false;
    return k === Cmd.UNSUBSCRIBE || this.extras[this.head]! >= 2;
  }

  /** Counts read from a confirmation: channels and patterns share one count, shards have their own. */
  private applyConfirmation(pubsub: number, sub: number, count: number): void {
    const before = this.subscribed;
    if (sub === SUB_SHARD) this.shards = count;
    else {
      const delta = count - (this.channels + this.patterns);
      if (sub === SUB_CHANNEL) this.channels = Math.max(0, this.channels + delta);
      else this.patterns = Math.max(0, this.patterns + delta);
    }
    void pubsub;
    if (before !== this.subscribed) this.version++;
  }

  /** One frame of the head command arrived. */
  private consume(): void {
    const wasBlocked = this.kinds[this.head] === E_COMMAND && this.blocked;
    if (--this.headDue === 0) this.finishHead();
    this.settle();
    if (wasBlocked) this.version++;
  }

  /** The head command got all its frames: the next command of a run, or the next entry. */
  private finishHead(): void {
    const at = this.head;
    this.queued--;
    this.headDue = -1;
    if (this.kinds[at] === E_PLAIN && --this.counts[at]! > 0) return;
    if (this.kinds[at] === E_REFUSED) {
      this.refusals![this.refusalHead] = undefined;
      if (++this.refusalHead === this.refusals!.length) {
        this.refusals!.length = 0;
        this.refusalHead = 0;
      }
    }
    this.head = (at + 1) & (this.cap - 1);
    this.size--;
  }

  private push(kind: number, cmd: number, count: number, param: number, extra: number): void {
    if (this.size === this.cap) this.grow();
    const at = (this.head + this.size) & (this.cap - 1);
    this.kinds[at] = kind;
    this.cmdKinds[at] = cmd;
    this.counts[at] = count;
    this.params[at] = param;
    this.extras[at] = extra;
    this.size++;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const order = <T extends Uint8Array | Int32Array>(a: T, n: T): T => {
      for (let i = 0; i < this.size; i++) n[i] = a[(this.head + i) & (this.cap - 1)]!;
      return n;
    };
    this.kinds = order(this.kinds, new Uint8Array(cap));
    this.cmdKinds = order(this.cmdKinds, new Uint8Array(cap));
    this.counts = order(this.counts, new Int32Array(cap));
    this.params = order(this.params, new Int32Array(cap));
    this.extras = order(this.extras, new Int32Array(cap));
    this.head = 0;
    this.cap = cap;
  }
}

export { PUBSUB_OTHER };
