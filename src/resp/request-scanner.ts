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
 * Hot path: no allocation per command; the first argument is looked up in place (or copied into a
 * small preallocated buffer when it straddles chunks); later arguments are skipped by count, except
 * the first 16 bytes of the arguments of CLIENT, HELLO and XREAD/XREADGROUP.
 *
 * Usage: call next(buf, pos) repeatedly, feeding back the returned position, until it returns
 * NEED_MORE, then call it with the next chunk. An EV_END can sit at the same position as the
 * EV_NAME before it, so call again even when EV_NAME is returned at buf.length.
 */
import { Cmd, type CommandTable, EMPTY_COMMAND_ID, UNKNOWN_COMMAND_ID } from './command-table.js';
import {
  MSG_INVALID_BULK_LENGTH,
  MSG_INVALID_MULTIBULK_LENGTH,
  MSG_TOO_BIG_BULK_COUNT,
  MSG_TOO_BIG_INLINE_REQUEST,
  MSG_TOO_BIG_MBULK_COUNT,
  MSG_UNAUTHENTICATED_BULK_LENGTH,
  MSG_UNAUTHENTICATED_MULTIBULK_LENGTH,
  MSG_UNBALANCED_QUOTES,
  expectedDollarError,
  protocolError,
} from './protocol-error.js';
import type { SidecarError } from '../errors.js';

export const NEED_MORE = -1;
/** The command's name (first argument) is complete and classified. */
export const EV_NAME = 1;
/** The whole command is complete. */
export const EV_END = 2;

export const REPLY_ON = 1;
export const REPLY_OFF = 2;
export const REPLY_SKIP = 3;

export interface RequestScannerLimits {
  /** Redis proto-max-bulk-len: a longer bulk is "invalid bulk length". */
  maxBulkBytes: number;
  /** Redis PROTO_INLINE_MAX_SIZE (64 KiB): limit for inline lines and for `*`/`$` header lines. */
  maxInlineBytes: number;
}

/** Redis refuses larger multibulk counts (INT_MAX) ... */
const MAX_MULTIBULK_COUNT = 2147483647;
/** ... and, from a client that still has to authenticate, counts over 10 and bulks over 16 KiB. */
const UNAUTH_MAX_MULTIBULK_COUNT = 10;
const UNAUTH_MAX_BULK_LENGTH = 16384;

/** Bytes of each CLIENT/HELLO/XREAD argument kept for classification (longest keyword: STREAMS). */
const ARG_CAPTURE_BYTES = 16;

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

// string2ll parse states.
const N_START = 0;
const N_SIGN = 1; // after '-'
const N_DIGITS = 2;
const N_ZERO = 3; // a lone "0" so far
const N_BAD = 4;
/** |LLONG_MIN| as digits: a 19-digit magnitude is compared with it to detect 64-bit overflow. */
const LLONG_MIN_DIGITS = Uint8Array.from(Buffer.from('9223372036854775808', 'latin1'));

// Inline tokenizer states (sdssplitargs).
const T_BLANK = 0; // between arguments
const T_WORD = 1; // unquoted argument
const T_DQ = 2; // inside "double quotes"
const T_DQ_ESC = 3; // after '\' inside double quotes
const T_DQ_HEX1 = 4; // after "\x"
const T_DQ_HEX2 = 5; // after "\x" and one hex digit
const T_SQ = 6; // inside 'single quotes'
const T_SQ_ESC = 7; // after '\' inside single quotes
const T_CLOSED = 8; // after a closing quote: a space or the end must follow

// Which arguments after the name are captured.
const CAP_NONE = 0;
const CAP_CLIENT = 1;
const CAP_HELLO = 2;
const CAP_XREAD = 3;
const CAP_XREADGROUP = 4;

const KW_REPLY = keyword('reply');
const KW_ON = keyword('on');
const KW_OFF = keyword('off');
const KW_SKIP = keyword('skip');
const KW_BLOCK = keyword('block');
const KW_COUNT = keyword('count');
const KW_STREAMS = keyword('streams');
const KW_GROUP = keyword('group');
const KW_NOACK = keyword('noack');

function keyword(word: string): Uint8Array {
  return Uint8Array.from(Buffer.from(word, 'latin1'));
}

function isSpace(c: number): boolean {
  // C isspace(): space, \t, \n, \v, \f, \r
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

export class RequestScanner {
  /** EV_NAME | EV_END, of the last returned position. */
  event = 0;
  /** Set at EV_NAME, valid until the next command starts; EMPTY_COMMAND_ID for `*0` / a blank line. */
  commandId = UNKNOWN_COMMAND_ID;
  /** Index in the current buf where the current command began, or -1 if it began in an earlier buf. */
  commandStart = -1;
  /** At EV_END: the number of arguments (0 for an empty command). */
  argc = 0;
  /** At EV_END: REPLY_ON/OFF/SKIP for a well-formed `CLIENT REPLY x`, else 0. */
  clientReply = 0;
  /** At EV_END for HELLO: 2 or 3 when given as the first argument, else 0. */
  helloVersion = 0;
  /** At EV_END for XREAD/XREADGROUP: true when a BLOCK option precedes a well-formed STREAMS list. */
  blockArg = false;
  /**
   * Set while the backend requires AUTH and this client has not authenticated yet: Redis then
   * refuses multibulk counts over 10 and bulk lengths over 16384 ("unauthenticated ..."). The
   * scanner cannot know this by itself; leave it false when the session does not track it.
   */
  unauthenticated = false;

  private readonly table: CommandTable;
  private readonly maxBulkBytes: number;
  private readonly maxLineBytes: number;
  private readonly maxNameLength: number;
  private readonly xreadgroupId: number;
  private readonly nameBuf: Uint8Array;
  private readonly argBuf = new Uint8Array(ARG_CAPTURE_BYTES);

  private state = S_START;
  private failure: SidecarError | null = null;
  /** EV_NAME was returned at the command's last byte: EV_END is due at the same position. */
  private pendingEnd = false;
  /** Set by onBulkLength: an event is due at the position it returned. */
  private due = false;
  private fastValue = 0;
  private scanned = 0;
  private skipped = 0;

  // The current line.
  private lineBytes = 0;
  private hdrFirst = 0;
  private deadMessage = '';
  private numState = N_START;
  private numNeg = false;
  private numVal = 0;
  private numDigits = 0;
  private numCmp = 0;

  // The current multibulk command.
  private argsLeft = 0;
  private argIndex = 0;
  /** EV_NAME was returned at the first argument's header (a name too long to be known). */
  private nameEarly = false;
  private payloadLen = 0;
  private remaining = 0;
  private captureLen = 0;
  private captureGot = 0;

  // The current inline command.
  private tokState = T_BLANK;
  private tokLen = 0;
  private tokIndex = 0;
  private tokBad = false;
  private hexHigh = 0;

  // Classification of the current command's arguments.
  private captureMode = CAP_NONE;
  private clientReplySub = false;
  private clientReplyValue = 0;
  private xSkip = 0;
  private xDone = false;
  private xBad = false;
  private xBlockAt = -1;
  private xStreamsAt = -1;

  constructor(table: CommandTable, limits: RequestScannerLimits) {
    this.table = table;
    this.maxBulkBytes = limits.maxBulkBytes;
    this.maxLineBytes = limits.maxInlineBytes;
    this.maxNameLength = table.maxNameLength;
    this.xreadgroupId = table.idOf('xreadgroup');
    this.nameBuf = new Uint8Array(Math.max(1, table.maxNameLength));
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
    let p = pos;
    while (p < end) {
      switch (this.state) {
        case S_START: {
          this.startCommand(p);
          if (buf[p] !== 0x2a) {
            this.state = S_INLINE;
            this.lineBytes = 0;
            this.tokState = T_BLANK;
            this.tokIndex = 0;
            this.tokBad = false;
            continue;
          }
          const q = this.fastNumber(buf, p + 1, end);
          if (q > 0) {
            p = q;
            if (this.onCount(this.fastValue)) return p;
            continue;
          }
          p++;
          this.state = S_COUNT;
          this.lineBytes = 1;
          this.resetNumber();
          continue;
        }

        case S_COUNT:
        case S_HDR: {
          const start = p;
          while (p < end) {
            const c = buf[p]!;
            if (c === 0x0d) break;
            if (c === 0) break;
            this.numberByte(c);
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
          if (this.onCount(this.numberValue())) return p;
          continue;
        }

        case S_HDR_FIRST: {
          const c = buf[p]!;
          this.hdrFirst = c;
          if (c === 0x24) {
            const q = this.fastNumber(buf, p + 1, end);
            if (q > 0) {
              p = this.onBulkLength(this.fastValue, buf, q, end);
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
          this.resetNumber();
          if (c === 0x0d) this.state = S_HDR_LF;
          else this.state = S_HDR; // a byte other than '$' is reported once the line is complete
          continue;
        }

        case S_HDR_LF: {
          p++; // skipped unread, as above
          if (this.hdrFirst !== 0x24) throw this.fail(expectedDollarError(this.hdrFirst));
          p = this.onBulkLength(this.numberValue(), buf, p, end);
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
            if (!this.nameEarly) this.classify(this.table.lookup(this.nameBuf, 0, this.payloadLen));
          } else if (this.captureMode !== CAP_NONE) {
            this.classifyArg(this.argIndex, this.payloadLen, this.argBuf);
          }
          if (this.argDone()) return p;
          continue;
        }

        case S_INLINE: {
          const start = p;
          let c = 0;
          while (p < end) {
            c = buf[p]!;
            if (c === 0x0a || c === 0) break;
            p++;
            // Redis strips one '\r' before the '\n'; feeding it to the tokenizer instead gives the
            // same arguments: it ends a word, is a blank after a closing quote, and inside quotes
            // the line is unbalanced either way.
            if (!this.tokBad) this.tokenByte(c);
          }
          this.lineBytes += p - start;
          if (p === end) continue;
          if (c === 0) {
            this.toDeadLine(MSG_TOO_BIG_INLINE_REQUEST);
            continue;
          }
          p++; // the '\n'
          this.endLine();
          if (this.tokBad) throw this.fail(MSG_UNBALANCED_QUOTES);
          if (this.tokIndex === 0) {
            this.emitEmpty();
            return p;
          }
          this.argc = this.tokIndex;
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

  /**
   * Fast path for a whole header number: [1-9][0-9]{0,14} then '\r' and one more byte, all in buf.
   * Returns the position after the line (value in fastValue), or -1 to take the byte-by-byte path
   * (a line that straddles the chunk, "0", a sign, or anything unusual: at most 17 bytes re-read).
   */
  private fastNumber(buf: Buffer, p: number, end: number): number {
    if (p >= end) return -1;
    let c = buf[p]!;
    if (c < 0x31 || c > 0x39) return -1;
    let v = c - 0x30;
    const stop = Math.min(end, p + 15);
    let i = p + 1;
    for (; i < stop; i++) {
      c = buf[i]!;
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
    }
    if (i + 1 >= end || buf[i] !== 0x0d) return -1;
    this.fastValue = v;
    return i + 2;
  }

  /** The multibulk count line is complete. Returns true when an (empty) command's event is due. */
  private onCount(count: number): boolean {
    if (!(count <= MAX_MULTIBULK_COUNT)) throw this.fail(MSG_INVALID_MULTIBULK_LENGTH);
    if (count > UNAUTH_MAX_MULTIBULK_COUNT && this.unauthenticated) throw this.fail(MSG_UNAUTHENTICATED_MULTIBULK_LENGTH);
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
    if (len > UNAUTH_MAX_BULK_LENGTH && this.unauthenticated) throw this.fail(MSG_UNAUTHENTICATED_BULK_LENGTH);
    this.payloadLen = len;
    this.remaining = len + 2;
    if (this.argIndex === 0) {
      if (len > this.maxNameLength) {
        // Too long to be any name we know: classify now, never read the (maybe huge) payload.
        this.classify(UNKNOWN_COMMAND_ID);
        this.nameEarly = true;
        this.state = S_SKIP;
        this.event = EV_NAME;
        this.due = true;
        return p;
      }
      if (end - p >= len + 2) {
        // The name and the two bytes after it are all here: look it up in place.
        this.classify(this.table.lookup(buf, p, p + len));
        this.skipped += 2;
        this.due = this.argDone();
        return p + len + 2;
      }
      this.captureLen = len;
    } else if (this.captureMode !== CAP_NONE) {
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
    this.commandId = UNKNOWN_COMMAND_ID;
    this.argc = 0;
    this.clientReply = 0;
    this.helloVersion = 0;
    this.blockArg = false;
    this.captureMode = CAP_NONE;
  }

  private emitEmpty(): void {
    this.commandId = EMPTY_COMMAND_ID;
    this.argc = 0;
    this.event = EV_NAME;
    this.pendingEnd = true;
    this.state = S_START;
  }

  private endCommand(): void {
    if (this.captureMode === CAP_CLIENT) {
      this.clientReply = this.argc === 3 && this.clientReplySub ? this.clientReplyValue : 0;
    } else if (this.captureMode === CAP_XREAD || this.captureMode === CAP_XREADGROUP) {
      const streamArgs = this.argc - this.xStreamsAt - 1;
      this.blockArg =
        this.xBlockAt > 0 && !this.xBad && this.xStreamsAt > this.xBlockAt && streamArgs > 0 && streamArgs % 2 === 0;
    }
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

  private classify(id: number): void {
    this.commandId = id;
    const kind = this.table.kind(id);
    if (kind === Cmd.CLIENT) {
      this.captureMode = CAP_CLIENT;
      this.clientReplySub = false;
      this.clientReplyValue = 0;
    } else if (kind === Cmd.HELLO) {
      this.captureMode = CAP_HELLO;
    } else if (kind === Cmd.XREAD) {
      this.captureMode = id === this.xreadgroupId ? CAP_XREADGROUP : CAP_XREAD;
      this.xSkip = 0;
      this.xDone = false;
      this.xBad = false;
      this.xBlockAt = -1;
      this.xStreamsAt = -1;
    }
  }

  /** An argument after the name of CLIENT, HELLO or XREAD(GROUP); its first bytes are in `bytes`. */
  private classifyArg(index: number, len: number, bytes: Uint8Array): void {
    switch (this.captureMode) {
      case CAP_CLIENT:
        if (index === 1) this.clientReplySub = equalsKeyword(bytes, len, KW_REPLY);
        else if (index === 2 && this.clientReplySub) {
          this.clientReplyValue = equalsKeyword(bytes, len, KW_ON)
            ? REPLY_ON
            : equalsKeyword(bytes, len, KW_OFF)
              ? REPLY_OFF
              : equalsKeyword(bytes, len, KW_SKIP)
                ? REPLY_SKIP
                : 0;
        }
        return;
      case CAP_HELLO:
        if (index === 1 && len === 1 && (bytes[0] === 0x32 || bytes[0] === 0x33)) this.helloVersion = bytes[0] - 0x30;
        return;
      case CAP_XREAD:
      case CAP_XREADGROUP: {
        // The option loop of xreadCommand(): BLOCK/COUNT take one value, GROUP two, STREAMS ends it.
        if (this.xDone) return;
        if (this.xSkip > 0) {
          this.xSkip--;
          return;
        }
        const group = this.captureMode === CAP_XREADGROUP;
        if (equalsKeyword(bytes, len, KW_BLOCK)) {
          this.xBlockAt = index;
          this.xSkip = 1;
        } else if (equalsKeyword(bytes, len, KW_COUNT)) {
          this.xSkip = 1;
        } else if (equalsKeyword(bytes, len, KW_STREAMS)) {
          this.xStreamsAt = index;
          this.xDone = true;
        } else if (group && equalsKeyword(bytes, len, KW_GROUP)) {
          this.xSkip = 2;
        } else if (!(group && equalsKeyword(bytes, len, KW_NOACK))) {
          this.xBad = true; // Redis answers a syntax error at once: nothing blocks
          this.xDone = true;
        }
        return;
      }
      default:
        return;
    }
  }

  // ---- header line numbers (string2ll) ----

  private resetNumber(): void {
    this.numState = N_START;
    this.numNeg = false;
    this.numVal = 0;
    this.numDigits = 0;
    this.numCmp = 0;
  }

  private numberByte(c: number): void {
    const state = this.numState;
    if (state === N_DIGITS) {
      if (c >= 0x30 && c <= 0x39) this.numberDigit(c);
      else this.numState = N_BAD;
    } else if (state === N_START || state === N_SIGN) {
      if (c >= 0x31 && c <= 0x39) {
        this.numState = N_DIGITS;
        this.numberDigit(c);
      } else if (state === N_START && c === 0x30) {
        this.numState = N_ZERO; // "0" alone is valid; "0" followed by anything is not
      } else if (state === N_START && c === 0x2d) {
        this.numNeg = true;
        this.numState = N_SIGN;
      } else {
        this.numState = N_BAD;
      }
    } else {
      this.numState = N_BAD;
    }
  }

  private numberDigit(c: number): void {
    const i = this.numDigits;
    if (i < 19 && this.numCmp === 0) {
      const limit = LLONG_MIN_DIGITS[i]!;
      this.numCmp = c < limit ? -1 : c > limit ? 1 : 0;
    }
    this.numVal = this.numVal * 10 + (c - 0x30);
    this.numDigits = i + 1;
  }

  /** The line's number as string2ll reads it, or NaN when string2ll refuses it. */
  private numberValue(): number {
    if (this.numState === N_ZERO) return 0;
    if (this.numState !== N_DIGITS) return NaN;
    const d = this.numDigits;
    if (d > 19 || (d === 19 && (this.numNeg ? this.numCmp > 0 : this.numCmp >= 0))) return NaN;
    return this.numNeg ? -this.numVal : this.numVal;
  }

  private toDeadLine(message: string): void {
    this.state = S_DEAD;
    this.deadMessage = message;
  }

  // ---- inline lines (sdssplitargs) ----

  /** One byte of the line (never '\n' or NUL). */
  private tokenByte(c: number): void {
    switch (this.tokState) {
      case T_BLANK:
        if (isSpace(c)) return;
        this.tokLen = 0;
        this.tokState = T_WORD;
        this.wordByte(c);
        return;
      case T_WORD:
        this.wordByte(c);
        return;
      case T_DQ:
        this.dqByte(c);
        return;
      case T_DQ_ESC:
        if (c === 0x78) {
          this.tokState = T_DQ_HEX1;
          return;
        }
        this.tokState = T_DQ;
        this.tokAppend(c === 0x6e ? 0x0a : c === 0x72 ? 0x0d : c === 0x74 ? 0x09 : c === 0x62 ? 0x08 : c === 0x61 ? 0x07 : c);
        return;
      case T_DQ_HEX1:
        if (hexValue(c) >= 0) {
          this.hexHigh = c;
          this.tokState = T_DQ_HEX2;
          return;
        }
        // "\x" not followed by two hex digits is an escaped 'x'
        this.tokState = T_DQ;
        this.tokAppend(0x78);
        this.dqByte(c);
        return;
      case T_DQ_HEX2:
        this.tokState = T_DQ;
        if (hexValue(c) >= 0) {
          this.tokAppend(hexValue(this.hexHigh) * 16 + hexValue(c));
          return;
        }
        this.tokAppend(0x78);
        this.tokAppend(this.hexHigh);
        this.dqByte(c);
        return;
      case T_SQ:
        this.sqByte(c);
        return;
      case T_SQ_ESC:
        this.tokState = T_SQ;
        if (c === 0x27) {
          this.tokAppend(0x27);
          return;
        }
        this.tokAppend(0x5c);
        this.sqByte(c);
        return;
      case T_CLOSED:
        // sdssplitargs: "closing quote must be followed by a space or nothing at all"
        if (isSpace(c)) this.endToken();
        else this.tokBad = true;
        return;
      default:
        return;
    }
  }

  private wordByte(c: number): void {
    if (c === 0x20 || c === 0x0d || c === 0x09) this.endToken();
    else if (c === 0x22) this.tokState = T_DQ;
    else if (c === 0x27) this.tokState = T_SQ;
    else this.tokAppend(c);
  }

  private dqByte(c: number): void {
    if (c === 0x5c) this.tokState = T_DQ_ESC;
    else if (c === 0x22) this.tokState = T_CLOSED;
    else this.tokAppend(c);
  }

  private sqByte(c: number): void {
    if (c === 0x5c) this.tokState = T_SQ_ESC;
    else if (c === 0x27) this.tokState = T_CLOSED;
    else this.tokAppend(c);
  }

  private tokAppend(c: number): void {
    const n = this.tokLen;
    if (this.tokIndex === 0) {
      if (n < this.nameBuf.length) this.nameBuf[n] = c;
    } else if (this.captureMode !== CAP_NONE && n < ARG_CAPTURE_BYTES) {
      this.argBuf[n] = c;
    }
    this.tokLen = n + 1;
  }

  private endToken(): void {
    const index = this.tokIndex;
    const len = this.tokLen;
    if (index === 0) {
      this.classify(len <= this.maxNameLength ? this.table.lookup(this.nameBuf, 0, len) : UNKNOWN_COMMAND_ID);
    } else if (this.captureMode !== CAP_NONE) {
      this.classifyArg(index, len, this.argBuf);
    }
    this.tokIndex = index + 1;
    this.tokState = T_BLANK;
  }

  /** The line's end, where sdssplitargs sees its terminating NUL. */
  private endLine(): void {
    const s = this.tokState;
    if (s === T_WORD || s === T_CLOSED) this.endToken();
    else if (s !== T_BLANK) this.tokBad = true; // inside quotes: unterminated
  }

  private fail(err: string | SidecarError): SidecarError {
    const e = typeof err === 'string' ? protocolError(err) : err;
    this.failure = e;
    this.state = S_FAILED;
    this.pendingEnd = false;
    return e;
  }
}

/** Case-insensitive comparison of a captured argument with a lowercase, letters-only keyword. */
function equalsKeyword(bytes: Uint8Array, len: number, kw: Uint8Array): boolean {
  if (len !== kw.length) return false;
  for (let i = 0; i < len; i++) if ((bytes[i]! | 0x20) !== kw[i]) return false;
  return true;
}
