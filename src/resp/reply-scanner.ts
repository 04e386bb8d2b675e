/**
 * Finds the end of each top-level reply in the backend's byte stream, RESP2 and RESP3, without
 * decoding values and without looking at a byte twice.
 *
 *   backend bytes ──▶ next(buf, pos) ──▶ position after a top-level frame, with frameKind:
 *                                        FRAME_REPLY, FRAME_PUSH ('>') or FRAME_ATTRIBUTE ('|')
 *
 * - Line types `+ - : _ , # (` end at CRLF. Length-prefixed `$ ! =` payloads are skipped by count;
 *   their CRLF is checked. Aggregates `* ~ >` hold n elements, `% |` hold 2n; `$-1` and `*-1` are
 *   RESP2 nulls. An attribute inside an aggregate is not one of its elements; at the top level it
 *   is a frame of its own (FRAME_ATTRIBUTE) that precedes a reply.
 * - Garbage is never "need more": an unknown type byte, a malformed length, a missing LF after CR,
 *   or a line longer than maxLineBytes throws ERR_PROTOCOL at once.
 * - No nesting limit: the backend is judged by its own protocol, and a server can nest as deep as
 *   a Lua table goes (a recursive table gives hundreds of `*1`). The open aggregates are a stack
 *   in typed arrays that double when full; nothing recurses.
 *   RESP3 streamed types (`$?`, `*?`) are not sent by Redis and are refused the same way.
 *
 * Usage: call next(buf, pos) repeatedly, feeding back the returned position, until NEED_MORE.
 */
import type { SidecarError } from '../errors.js';
import { protocolError } from './protocol-error.js';
import { NEED_MORE, RESP_TYPES as T } from './resp-types.js';

export { NEED_MORE };

export const FRAME_REPLY = 0;
export const FRAME_PUSH = 1;
export const FRAME_ATTRIBUTE = 2;

export interface ReplyScannerOptions {
  /** A line (simple string, error, number...) longer than this is a protocol error (default 64 KiB). */
  maxLineBytes?: number;
  /** A bulk/blob/verbatim longer than this is a protocol error (default 2^53 - 1: no limit). */
  maxBulkBytes?: number;
}

// Scanner states.
const R_TYPE = 0; // the type byte of the next value
const R_LINE = 1; // a line value, up to its '\r'
const R_LINE_LF = 2; // the '\n' after a line's '\r'
const R_LEN = 3; // a length/count line, up to its '\r'
const R_LEN_LF = 4;
const R_PAYLOAD = 5; // a payload, skipped by count
const R_PAYLOAD_CR = 6; // the '\r' after a payload
const R_PAYLOAD_LF = 7;
const R_FAILED = 8;

// What a length line announces.
const L_BULK = 0; // $ ! =
const L_AGGREGATE = 1; // * ~ >
const L_PAIRS = 2; // % (2n elements)
const L_ATTRIBUTE = 3; // | (2n elements, not itself an element)

/** Lengths beyond 15 digits cannot be exact doubles, and no real reply comes near them. */
const MAX_LENGTH_DIGITS = 15;

function describe(c: number): string {
  const hex = `0x${c.toString(16).padStart(2, '0')}`;
  return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}' (${hex})` : hex;
}

export class ReplyScanner {
  /** Of the frame just completed: FRAME_PUSH for '>', FRAME_ATTRIBUTE for '|', else FRAME_REPLY. */
  frameKind = FRAME_REPLY;

  private readonly maxLineBytes: number;
  private readonly maxBulkBytes: number;
  /** Elements still expected by each open aggregate, innermost last (grows by doubling). */
  private left = new Float64Array(16);
  /** 1 where the open aggregate is an attribute. */
  private isAttribute = new Uint8Array(16);
  private depth = 0;

  private state = R_TYPE;
  private failure: SidecarError | null = null;
  private lineBytes = 0;
  private lenKind = L_BULK;
  private lenType = 0;
  private lenNeg = false;
  private lenDigits = 0;
  private lenVal = 0;
  private remaining = 0;
  private scanned = 0;

  constructor(opts: ReplyScannerOptions = {}) {
    this.maxLineBytes = opts.maxLineBytes ?? 64 * 1024;
    this.maxBulkBytes = opts.maxBulkBytes ?? Number.MAX_SAFE_INTEGER;
  }

  /** Between top-level frames. */
  get atBoundary(): boolean {
    return this.state === R_TYPE && this.depth === 0;
  }

  /** Bytes consumed so far. */
  get bytesScanned(): number {
    return this.scanned;
  }

  /**
   * Returns the index just past the next complete top-level frame, or NEED_MORE when buf[pos..] was
   * consumed into state. Throws SidecarError('ERR_PROTOCOL') on malformed input; after a throw the
   * scanner is dead and every later call throws the same error.
   */
  next(buf: Buffer, pos: number): number {
    if (this.failure !== null) throw this.failure;
    const r = this.scan(buf, pos);
    this.scanned += (r === NEED_MORE ? buf.length : r) - pos;
    return r;
  }

  private scan(buf: Buffer, pos: number): number {
    const end = buf.length;
    let p = pos;
    while (p < end) {
      switch (this.state) {
        case R_TYPE: {
          const c = buf[p]!;
          if (this.depth === 0) this.frameKind = c === T.PUSH ? FRAME_PUSH : c === T.ATTRIBUTE ? FRAME_ATTRIBUTE : FRAME_REPLY;
          p++;
          switch (c) {
            case T.SIMPLE_STRING:
            case T.ERROR:
            case T.INTEGER:
            case T.NULL:
            case T.DOUBLE:
            case T.BOOLEAN:
            case T.BIG_NUMBER:
              this.state = R_LINE;
              this.lineBytes = 0;
              continue;
            case T.BLOB_STRING:
            case T.BLOB_ERROR:
            case T.VERBATIM_STRING:
              this.startLength(L_BULK, c);
              continue;
            case T.ARRAY:
            case T.SET:
            case T.PUSH:
              this.startLength(L_AGGREGATE, c);
              continue;
            case T.MAP:
              this.startLength(L_PAIRS, c);
              continue;
            case T.ATTRIBUTE:
              this.startLength(L_ATTRIBUTE, c);
              continue;
            default:
              throw this.fail(`unknown reply type byte ${describe(c)}`);
          }
        }

        case R_LINE: {
          const start = p;
          while (p < end && buf[p] !== 0x0d) p++;
          this.lineBytes += p - start;
          if (this.lineBytes > this.maxLineBytes) {
            throw this.fail(`reply line longer than ${this.maxLineBytes} bytes without CRLF`);
          }
          if (p === end) continue;
          p++;
          this.state = R_LINE_LF;
          continue;
        }

        case R_LINE_LF:
        case R_LEN_LF:
        case R_PAYLOAD_LF: {
          const c = buf[p++]!;
          if (c !== 0x0a) throw this.fail(`expected LF after CR, got ${describe(c)}`);
          if (this.state === R_LEN_LF) {
            if (this.openLength()) continue;
          }
          if (this.valueDone()) return p;
          continue;
        }

        case R_LEN: {
          while (p < end) {
            const c = buf[p++]!;
            if (c >= 0x30 && c <= 0x39) {
              if (this.lenNeg && this.lenDigits > 0) throw this.fail('bad length: only -1 may be negative');
              if (++this.lenDigits > MAX_LENGTH_DIGITS) throw this.fail('bad length: too many digits');
              this.lenVal = this.lenVal * 10 + (c - 0x30);
            } else if (c === 0x0d) {
              if (this.lenDigits === 0) throw this.fail(`bad length after '${String.fromCharCode(this.lenType)}': no digits`);
              this.state = R_LEN_LF;
              break;
            } else if (c === 0x2d && !this.lenNeg && this.lenDigits === 0) {
              this.lenNeg = true;
            } else {
              throw this.fail(`bad length after '${String.fromCharCode(this.lenType)}': unexpected ${describe(c)}`);
            }
          }
          continue;
        }

        case R_PAYLOAD: {
          const avail = end - p;
          if (avail < this.remaining) {
            this.remaining -= avail;
            p = end;
            continue;
          }
          p += this.remaining;
          this.remaining = 0;
          this.state = R_PAYLOAD_CR;
          continue;
        }

        case R_PAYLOAD_CR: {
          const c = buf[p++]!;
          if (c !== 0x0d) throw this.fail(`expected CRLF after a ${this.lenVal}-byte payload, got ${describe(c)}`);
          this.state = R_PAYLOAD_LF;
          continue;
        }

        default:
          throw this.failure ?? this.fail('reply scanner in an impossible state');
      }
    }
    return NEED_MORE;
  }

  private startLength(kind: number, type: number): void {
    this.state = R_LEN;
    this.lenKind = kind;
    this.lenType = type;
    this.lenNeg = false;
    this.lenDigits = 0;
    this.lenVal = 0;
  }

  /**
   * A length line is complete. Starts the payload or opens the aggregate and returns true, or
   * returns false when the value is already complete (a null, or an empty aggregate).
   */
  private openLength(): boolean {
    const n = this.lenVal;
    if (this.lenNeg) {
      // Only RESP2's null bulk ($-1) and null array (*-1) are negative.
      if (n !== 1 || (this.lenType !== T.BLOB_STRING && this.lenType !== T.ARRAY)) {
        throw this.fail(`bad length -${n} after '${String.fromCharCode(this.lenType)}'`);
      }
      return false;
    }
    const kind = this.lenKind;
    if (kind === L_BULK) {
      if (n > this.maxBulkBytes) throw this.fail(`bulk length ${n} over the ${this.maxBulkBytes}-byte limit`);
      this.remaining = n;
      this.state = R_PAYLOAD;
      return true;
    }
    if (n === 0) {
      if (kind === L_ATTRIBUTE) {
        // An empty attribute is not an element of anything: only a top-level one is a frame.
        this.state = R_TYPE;
        return this.depth > 0;
      }
      return false;
    }
    if (this.depth === this.left.length) this.growStack();
    this.left[this.depth] = kind === L_AGGREGATE ? n : 2 * n;
    this.isAttribute[this.depth] = kind === L_ATTRIBUTE ? 1 : 0;
    this.depth++;
    this.state = R_TYPE;
    return true;
  }

  /** A value is complete. Returns true when that completes a top-level frame. */
  private valueDone(): boolean {
    this.state = R_TYPE;
    for (;;) {
      const d = this.depth;
      if (d === 0) return true;
      if (--this.left[d - 1]! > 0) return false;
      this.depth = d - 1;
      // A finished attribute is not an element of its parent: the parent's count stays.
      if (this.isAttribute[d - 1] === 1) return d - 1 === 0;
    }
  }

  /** Nesting deeper than ever before: twice the room (rare; the stack is never shrunk). */
  private growStack(): void {
    const left = new Float64Array(this.left.length * 2);
    left.set(this.left);
    const isAttribute = new Uint8Array(this.isAttribute.length * 2);
    isAttribute.set(this.isAttribute);
    this.left = left;
    this.isAttribute = isAttribute;
  }

  /** Depth of the open aggregates (for tests). */
  get nesting(): number {
    return this.depth;
  }

  private fail(message: string): SidecarError {
    const e = protocolError(`Protocol error: ${message}`);
    this.failure = e;
    this.state = R_FAILED;
    return e;
  }
}
