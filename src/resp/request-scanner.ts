/**
 * Finds command boundaries in a client's byte stream, the way redis-server 7 frames it, without
 * decoding values and without rescanning: state carries over between chunks, bulk payloads are
 * skipped by count, and the only bytes ever read twice are those of a `*`/`$` header line (at most
 * 17) that the fast path hands to the byte-by-byte path (a line straddling the chunk's end, "0",
 * a sign, 16+ digits).
 *
 *   client bytes ──▶ next(buf, pos) ──▶ EV_NAME (first argument complete, command classified)
 *                                   └─▶ EV_END  (whole command complete: argc, CLIENT REPLY, HELLO, BLOCK)
 *
 * Framing mirrors processMultibulkBuffer / processInlineBuffer in Redis 7.0's networking.c, checked
 * against redis-server 7.0.15, because any difference makes the proxy's counts drift from the
 * backend's:
 * - A request starting with '*' is a multibulk; anything else is an inline line.
 * - Header lines (`*<count>`, `$<len>`) end at the first '\r'; the byte after it is skipped unread.
 *   Numbers follow string2ll: no '+', no leading zeros, no "-0", 64-bit overflow is invalid.
 * - `*0` and `*<negative>` are consumed with no command and no reply (an EMPTY command here).
 * - A bulk payload is skipped by count, and so are the two bytes after it (Redis never checks them).
 * - An inline line ends at '\n' (one '\r' before it is stripped) and splits like sdssplitargs,
 *   quotes and escapes included, so "unbalanced quotes in request" is raised exactly when Redis does.
 *   A line that splits into no arguments is consumed with no command and no reply (EMPTY).
 * - Redis finds line ends with strchr(), which stops at a NUL byte: a NUL before the terminator
 *   means the line never ends, and only the size limit below ends it, as in Redis.
 * - Size limits are judged when a chunk is used up, as Redis judges them after each read: a line
 *   with no terminator yet and more than maxInlineBytes bytes is "too big ...".
 *
 * Four machines, each in its own module: framing (this file), header numbers (header-number.ts),
 * the inline tokenizer (inline-tokenizer.ts) and argument classification (argument-classifier.ts).
 *
 * Hot path: no allocation per command; the first argument is looked up in place (or copied into a
 * small preallocated buffer when it straddles chunks); later arguments are skipped by count, except
 * the first 16 bytes of the arguments of CLIENT, HELLO and XREAD/XREADGROUP.
 *
 * Usage: call next(buf, pos) repeatedly, feeding back the returned position, until it returns
 * NEED_MORE, then call it with the next chunk. An EV_END can sit at the same position as the
 * EV_NAME before it, so call again even when EV_NAME is returned at buf.length.
 */
import { type CommandTable, EMPTY_COMMAND_ID, UNKNOWN_COMMAND_ID } from './command-table.js';
import {
  MSG_INVALID_BULK_LENGTH,
  MSG_INVALID_MULTIBULK_LENGTH,
  MSG_TOO_BIG_BULK_COUNT,
  MSG_TOO_BIG_INLINE_REQUEST,
  MSG_TOO_BIG_MBULK_COUNT,
  MSG_UNBALANCED_QUOTES,
  expectedDollarError,
  protocolError,
} from './protocol-error.js';
import type { SidecarError } from '../errors.js';
import { CR, LF, NEED_MORE, RESP_TYPES } from './resp-types.js';
import { HeaderNumber } from './header-number.js';
import { InlineTokenizer, type TokenSink } from './inline-tokenizer.js';
import { ARG_CAPTURE_BYTES, ArgumentClassifier } from './argument-classifier.js';

export { NEED_MORE };
export { REPLY_ON, REPLY_OFF, REPLY_SKIP } from './argument-classifier.js';
/** The command's name (first argument) is complete and classified. */
export const EV_NAME = 1;
/** The whole command is complete. */
export const EV_END = 2;

export interface RequestScannerLimits {
  /** Redis proto-max-bulk-len: a longer bulk is "invalid bulk length". */
  maxBulkBytes: number;
  /** Redis PROTO_INLINE_MAX_SIZE (64 KiB): limit for inline lines and for `*`/`$` header lines. */
  maxInlineBytes: number;
}

/** Redis refuses larger multibulk counts (INT_MAX). */
const MAX_MULTIBULK_COUNT = 2147483647;

// Scanner states.
const S_START = 0; // between commands
const S_COUNT = 1; // after '*': the count line, up to its '\r'
const S_COUNT_LF = 2; // after the count line's '\r': one more byte, unread, ends the line
const S_HDR_FIRST = 3; // the first byte of an argument's header line ('$' expected)
const S_HDR = 4; // the rest of the header line, up to its '\r'
const S_HDR_LF = 5; // after the header's '\r'
const S_CAPTURE = 6; // the first bytes of a payload, copied for classification
const S_SKIP = 7; // the rest of a payload and the two bytes after it, skipped by count
const S_INLINE = 8; // an inline line, up to its '\n'
const S_DEAD = 9; // a line with a NUL before its terminator: it never ends (see above)
const S_FAILED = 10;

export class RequestScanner implements TokenSink {
  /** EV_NAME | EV_END, of the last returned position. */
  event = 0;
  /** Index in the current buf where the current command began, or -1 if it began in an earlier buf. */
  commandStart = -1;
  /** At EV_END: the number of arguments (0 for an empty command). */
  argc = 0;

  private readonly table: CommandTable;
  private readonly maxBulkBytes: number;
  private readonly maxLineBytes: number;
  private readonly maxNameLength: number;
  private readonly nameBuf: Uint8Array;
  private readonly argBuf = new Uint8Array(ARG_CAPTURE_BYTES);
  private readonly number = new HeaderNumber();
  private readonly tokens = new InlineTokenizer(this);
  private readonly args: ArgumentClassifier;

  private state = S_START;
  private failure: SidecarError | null = null;
  /** EV_NAME was returned at the command's last byte: EV_END is due at the same position. */
  private pendingEnd = false;
  /** Set by onBulkLength: an event is due at the position it returned. */
  private due = false;
  private scanned = 0;
  private skipped = 0;

  // The current line.
  private lineBytes = 0;
  private hdrFirst = 0;
  private deadMessage = '';

  // The current multibulk command.
  private argsLeft = 0;
  private argIndex = 0;
  /** EV_NAME was returned at the first argument's header (a name too long to be known). */
  private nameEarly = false;
  private payloadLen = 0;
  private remaining = 0;
  private captureLen = 0;
  private captureGot = 0;

  constructor(table: CommandTable, limits: RequestScannerLimits) {
    this.table = table;
    this.maxBulkBytes = limits.maxBulkBytes;
    this.maxLineBytes = limits.maxInlineBytes;
    this.maxNameLength = table.maxNameLength;
    this.nameBuf = new Uint8Array(Math.max(1, table.maxNameLength));
    this.args = new ArgumentClassifier(table);
  }

  /** Set at EV_NAME, valid until the next command starts; EMPTY_COMMAND_ID for `*0` / a blank line. */
  get commandId(): number {
    return this.args.commandId;
  }

  /** At EV_END: REPLY_ON/OFF/SKIP for a well-formed `CLIENT REPLY x`, else 0. */
  get clientReply(): number {
    return this.args.clientReply;
  }

  /** At EV_END for HELLO: 2 or 3 when given as the first argument, else 0. */
  get helloVersion(): number {
    return this.args.helloVersion;
  }

  /** At EV_END for XREAD/XREADGROUP: true when a BLOCK option precedes a well-formed STREAMS list. */
  get blockArg(): boolean {
    return this.args.blockArg;
  }

  /** No partial command state. */
  get atBoundary(): boolean {
    return this.state === S_START && !this.pendingEnd;
  }

  /** Bytes consumed so far. */
  get bytesScanned(): number {
    return this.scanned;
  }

  /** Of bytesScanned, the payload bytes passed over by count without being read. */
  get bytesSkipped(): number {
    return this.skipped;
  }

  /**
   * Scans buf from pos. Returns the index just past the next event (see `event`), or NEED_MORE when
   * all of buf[pos..] was consumed into internal state without reaching one. Throws
   * SidecarError('ERR_PROTOCOL', 'Protocol error: ...') on malformed input, worded as Redis words
   * it; after a throw the scanner is dead and every later call throws the same error.
   */
  next(buf: Buffer, pos: number): number {
    if (this.failure !== null) throw this.failure;
    if (this.pendingEnd) {
      this.pendingEnd = false;
      this.endCommand();
      return pos;
    }
    const r = this.scan(buf, pos);
    this.scanned += (r === NEED_MORE ? buf.length : r) - pos;
    return r;
  }

  private scan(buf: Buffer, pos: number): number {
    const end = buf.length;
    const num = this.number;
    let p = pos;
    while (p < end) {
      switch (this.state) {
        case S_START: {
          this.startCommand(p);
          if (buf[p] !== RESP_TYPES.ARRAY) {
            this.state = S_INLINE;
            this.lineBytes = 0;
            this.tokens.start();
            continue;
          }
          const q = num.fast(buf, p + 1, end);
          if (q > 0) {
            p = q;
            if (this.onCount(num.fastValue)) return p;
            continue;
          }
          p++;
          this.state = S_COUNT;
          this.lineBytes = 1;
          num.reset();
          continue;
        }

        case S_COUNT:
        case S_HDR: {
          const start = p;
          while (p < end) {
            const c = buf[p]!;
            if (c === CR) break;
            if (c === 0) break;
            num.byte(c);
            p++;
          }
          this.lineBytes += p - start;
          if (p === end) continue;
          if (buf[p] === 0) {
            this.toDeadLine(this.state === S_COUNT ? MSG_TOO_BIG_MBULK_COUNT : MSG_TOO_BIG_BULK_COUNT);
            continue;
          }
          p++; // the '\r'
          this.state = this.state === S_COUNT ? S_COUNT_LF : S_HDR_LF;
          continue;
        }

        case S_COUNT_LF: {
          p++; // Redis skips the byte after '\r' without looking at it
          if (this.onCount(num.value())) return p;
          continue;
        }

        case S_HDR_FIRST: {
          const c = buf[p]!;
          this.hdrFirst = c;
          if (c === RESP_TYPES.BLOB_STRING) {
            const q = num.fast(buf, p + 1, end);
            if (q > 0) {
              p = this.onBulkLength(num.fastValue, buf, q, end);
              if (this.due) return p;
              continue;
            }
          } else if (c === 0) {
            this.lineBytes = 0;
            this.toDeadLine(MSG_TOO_BIG_BULK_COUNT);
            continue;
          }
          p++;
          this.lineBytes = 1;
          num.reset();
          if (c === CR) this.state = S_HDR_LF;
          else this.state = S_HDR; // a byte other than '$' is reported once the line is complete
          continue;
        }

        case S_HDR_LF: {
          p++; // skipped unread, as above
          if (this.hdrFirst !== RESP_TYPES.BLOB_STRING) throw this.fail(expectedDollarError(this.hdrFirst));
          p = this.onBulkLength(num.value(), buf, p, end);
          if (this.due) return p;
          continue;
        }

        case S_CAPTURE: {
          const target = this.argIndex === 0 ? this.nameBuf : this.argBuf;
          let got = this.captureGot;
          const want = this.captureLen;
          while (got < want && p < end) target[got++] = buf[p++]!;
          this.remaining -= got - this.captureGot;
          this.captureGot = got;
          if (got === want) this.state = S_SKIP;
          continue;
        }

        case S_SKIP: {
          const avail = end - p;
          if (avail < this.remaining) {
            this.remaining -= avail;
            this.skipped += avail;
            p = end;
            continue;
          }
          p += this.remaining;
          this.skipped += this.remaining;
          this.remaining = 0;
          if (this.argIndex === 0) {
            if (!this.nameEarly) this.args.classify(this.table.lookup(this.nameBuf, 0, this.payloadLen));
          } else if (this.args.capturing) {
            this.args.arg(this.argIndex, this.payloadLen, this.argBuf);
          }
          if (this.argDone()) return p;
          continue;
        }

        case S_INLINE: {
          const start = p;
          const tokens = this.tokens;
          let c = 0;
          while (p < end) {
            c = buf[p]!;
            if (c === LF || c === 0) break;
            p++;
            // Redis strips one '\r' before the '\n'; feeding it to the tokenizer instead gives the
            // same arguments: it ends a word, is a blank after a closing quote, and inside quotes
            // the line is unbalanced either way.
            if (!tokens.bad) tokens.byte(c);
          }
          this.lineBytes += p - start;
          if (p === end) continue;
          if (c === 0) {
            this.toDeadLine(MSG_TOO_BIG_INLINE_REQUEST);
            continue;
          }
          p++; // the '\n'
          if (!tokens.bad) tokens.endLine();
          if (tokens.bad) throw this.fail(MSG_UNBALANCED_QUOTES);
          if (tokens.count === 0) {
            this.emitEmpty();
            return p;
          }
          this.argc = tokens.count;
          this.event = EV_NAME;
          this.pendingEnd = true;
          this.state = S_START;
          return p;
        }

        case S_DEAD: {
          this.lineBytes += end - p;
          p = end;
          continue;
        }

        default:
          throw this.failure ?? this.fail('Protocol error: scanner in an impossible state');
      }
    }
    this.atChunkEnd();
    return NEED_MORE;
  }

  /** Redis checks line sizes after each read; we check when a chunk is used up. */
  private atChunkEnd(): void {
    const s = this.state;
    if (s === S_START) return;
    this.commandStart = -1;
    if (this.lineBytes <= this.maxLineBytes) return;
    if (s === S_COUNT) throw this.fail(MSG_TOO_BIG_MBULK_COUNT);
    if (s === S_HDR) throw this.fail(MSG_TOO_BIG_BULK_COUNT);
    if (s === S_INLINE) throw this.fail(MSG_TOO_BIG_INLINE_REQUEST);
    if (s === S_DEAD) throw this.fail(this.deadMessage);
  }

  /** The multibulk count line is complete. Returns true when an (empty) command's event is due. */
  private onCount(count: number): boolean {
    if (!(count <= MAX_MULTIBULK_COUNT)) throw this.fail(MSG_INVALID_MULTIBULK_LENGTH);
    if (count <= 0) {
      this.emitEmpty();
      return true;
    }
    this.argc = count;
    this.argsLeft = count;
    this.argIndex = 0;
    this.nameEarly = false;
    this.state = S_HDR_FIRST;
    return false;
  }

  /**
   * An argument's `$len` line is complete at p. Sets up its payload (looking a name up in place
   * when it is all in buf) and returns the new position; `due` says whether an event is due there.
   */
  private onBulkLength(len: number, buf: Buffer, p: number, end: number): number {
    this.due = false;
    if (!(len >= 0 && len <= this.maxBulkBytes)) throw this.fail(MSG_INVALID_BULK_LENGTH);
    this.payloadLen = len;
    this.remaining = len + 2;
    if (this.argIndex === 0) {
      if (len > this.maxNameLength) {
        // Too long to be any name we know: classify now, never read the (maybe huge) payload.
        this.args.classify(UNKNOWN_COMMAND_ID);
        this.nameEarly = true;
        this.state = S_SKIP;
        this.event = EV_NAME;
        this.due = true;
        return p;
      }
      if (end - p >= len + 2) {
        // The name and the two bytes after it are all here: look it up in place.
        this.args.classify(this.table.lookup(buf, p, p + len));
        this.skipped += 2;
        this.due = this.argDone();
        return p + len + 2;
      }
      this.captureLen = len;
    } else if (this.args.capturing) {
      this.captureLen = len < ARG_CAPTURE_BYTES ? len : ARG_CAPTURE_BYTES;
    } else if (end - p >= len + 2) {
      // The whole payload is here: skip it now.
      this.skipped += len + 2;
      this.due = this.argDone();
      return p + len + 2;
    } else {
      this.state = S_SKIP;
      return p;
    }
    this.captureGot = 0;
    this.state = S_CAPTURE;
    return p;
  }

  private startCommand(p: number): void {
    this.commandStart = p;
    this.argc = 0;
    this.args.reset();
  }

  private emitEmpty(): void {
    this.args.commandId = EMPTY_COMMAND_ID;
    this.argc = 0;
    this.event = EV_NAME;
    this.pendingEnd = true;
    this.state = S_START;
  }

  private endCommand(): void {
    this.args.end(this.argc);
    this.event = EV_END;
  }

  /** One multibulk argument is complete. Returns true when an event is due at the current position. */
  private argDone(): boolean {
    this.argIndex++;
    this.argsLeft--;
    const nameDue = this.argIndex === 1 && !this.nameEarly;
    if (this.argsLeft === 0) {
      this.state = S_START;
      if (nameDue) {
        this.event = EV_NAME;
        this.pendingEnd = true;
      } else {
        this.endCommand();
      }
      return true;
    }
    this.state = S_HDR_FIRST;
    if (nameDue) {
      this.event = EV_NAME;
      return true;
    }
    return false;
  }

  // ---- TokenSink: the inline tokenizer's arguments ----

  /** @internal */
  put(index: number, at: number, c: number): void {
    if (index === 0) {
      if (at < this.nameBuf.length) this.nameBuf[at] = c;
    } else if (this.args.capturing && at < ARG_CAPTURE_BYTES) {
      this.argBuf[at] = c;
    }
  }

  /** @internal */
  token(index: number, len: number): void {
    if (index === 0) this.args.classify(len <= this.maxNameLength ? this.table.lookup(this.nameBuf, 0, len) : UNKNOWN_COMMAND_ID);
    else if (this.args.capturing) this.args.arg(index, len, this.argBuf);
  }

  private toDeadLine(message: string): void {
    this.state = S_DEAD;
    this.deadMessage = message;
  }

  private fail(err: string | SidecarError): SidecarError {
    const e = typeof err === 'string' ? protocolError(err) : err;
    this.failure = e;
    this.state = S_FAILED;
    this.pendingEnd = false;
    return e;
  }
}
