/**
 * The numbers of `*<count>` and `$<len>` header lines, read as Redis' string2ll reads them: no
 * '+', no leading zeros, no "-0", 64-bit overflow is invalid. Fed byte by byte across chunks
 * (`byte`), with a fast path for a whole short line in one buffer (`fast`).
 */

// string2ll parse states.
const N_START = 0;
const N_SIGN = 1; // after '-'
const N_DIGITS = 2;
const N_ZERO = 3; // a lone "0" so far
const N_BAD = 4;
/** |LLONG_MIN| as digits: a 19-digit magnitude is compared with it to detect 64-bit overflow. */
const LLONG_MIN_DIGITS = Uint8Array.from(Buffer.from('9223372036854775808', 'latin1'));

export class HeaderNumber {
  /** Set by fast(): the value of the line it read. */
  fastValue = 0;
  private state = N_START;
  private neg = false;
  private val = 0;
  private digits = 0;
  private cmp = 0;

  reset(): void {
    this.state = N_START;
    this.neg = false;
    this.val = 0;
    this.digits = 0;
    this.cmp = 0;
  }

  /** One byte of the line before its '\r'. */
  byte(c: number): void {
    const state = this.state;
    if (state === N_DIGITS) {
      if (c >= 0x30 && c <= 0x39) this.digit(c);
      else this.state = N_BAD;
    } else if (state === N_START || state === N_SIGN) {
      if (c >= 0x31 && c <= 0x39) {
        this.state = N_DIGITS;
        this.digit(c);
      } else if (state === N_START && c === 0x30) {
        this.state = N_ZERO; // "0" alone is valid; "0" followed by anything is not
      } else if (state === N_START && c === 0x2d) {
        this.neg = true;
        this.state = N_SIGN;
      } else {
        this.state = N_BAD;
      }
    } else {
      this.state = N_BAD;
    }
  }

  private digit(c: number): void {
    const i = this.digits;
    if (i < 19 && this.cmp === 0) {
      const limit = LLONG_MIN_DIGITS[i]!;
      this.cmp = c < limit ? -1 : c > limit ? 1 : 0;
    }
    this.val = this.val * 10 + (c - 0x30);
    this.digits = i + 1;
  }

  /** The line's number as string2ll reads it, or NaN when string2ll refuses it. */
  value(): number {
    if (this.state === N_ZERO) return 0;
    if (this.state !== N_DIGITS) return NaN;
    const d = this.digits;
    if (d > 19 || (d === 19 && (this.neg ? this.cmp > 0 : this.cmp >= 0))) return NaN;
    return this.neg ? -this.val : this.val;
  }

  /**
   * Fast path for a whole header number: [1-9][0-9]{0,14} then '\r' and one more byte, all in buf.
   * Returns the position after the line (value in fastValue), or -1 to take the byte-by-byte path
   * (a line that straddles the chunk, "0", a sign, or anything unusual: at most 17 bytes re-read).
   */
  fast(buf: Buffer, p: number, end: number): number {
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
}
