/**
 * An inline command line split the way Redis' sdssplitargs splits it, quotes and escapes included,
 * byte by byte across chunks, without building strings: each argument's bytes go to `sink.put`,
 * each argument's end to `sink.token`. `bad` is set exactly where sdssplitargs fails ("unbalanced
 * quotes in request").
 */

export interface TokenSink {
  /** Byte `at` (0-based) of argument `index`. */
  put(index: number, at: number, c: number): void;
  /** Argument `index` is complete, `len` bytes long. */
  token(index: number, len: number): void;
}

// Tokenizer states (sdssplitargs).
const T_BLANK = 0; // between arguments
const T_WORD = 1; // unquoted argument
const T_DQ = 2; // inside "double quotes"
const T_DQ_ESC = 3; // after '\' inside double quotes
const T_DQ_HEX1 = 4; // after "\x"
const T_DQ_HEX2 = 5; // after "\x" and one hex digit
const T_SQ = 6; // inside 'single quotes'
const T_SQ_ESC = 7; // after '\' inside single quotes
const T_CLOSED = 8; // after a closing quote: a space or the end must follow

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

export class InlineTokenizer {
  /** The line cannot be split (unbalanced quotes): Redis refuses it. */
  bad = false;
  /** Arguments completed so far on this line. */
  count = 0;
  private state = T_BLANK;
  private len = 0;
  private hexHigh = 0;

  constructor(private readonly sink: TokenSink) {}

  /** A new line begins. */
  start(): void {
    this.state = T_BLANK;
    this.count = 0;
    this.bad = false;
  }

  /** One byte of the line (never '\n' or NUL). */
  byte(c: number): void {
    switch (this.state) {
      case T_BLANK:
        if (isSpace(c)) return;
        this.len = 0;
        this.state = T_WORD;
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
          this.state = T_DQ_HEX1;
          return;
        }
        this.state = T_DQ;
        this.append(c === 0x6e ? 0x0a : c === 0x72 ? 0x0d : c === 0x74 ? 0x09 : c === 0x62 ? 0x08 : c === 0x61 ? 0x07 : c);
        return;
      case T_DQ_HEX1:
        if (hexValue(c) >= 0) {
          this.hexHigh = c;
          this.state = T_DQ_HEX2;
          return;
        }
        // "\x" not followed by two hex digits is an escaped 'x'
        this.state = T_DQ;
        this.append(0x78);
        this.dqByte(c);
        return;
      case T_DQ_HEX2:
        this.state = T_DQ;
        if (hexValue(c) >= 0) {
          this.append(hexValue(this.hexHigh) * 16 + hexValue(c));
          return;
        }
        this.append(0x78);
        this.append(this.hexHigh);
        this.dqByte(c);
        return;
      case T_SQ:
        this.sqByte(c);
        return;
      case T_SQ_ESC:
        this.state = T_SQ;
        if (c === 0x27) {
          this.append(0x27);
          return;
        }
        this.append(0x5c);
        this.sqByte(c);
        return;
      case T_CLOSED:
        // sdssplitargs: "closing quote must be followed by a space or nothing at all"
        if (isSpace(c)) this.endToken();
        else this.bad = true;
        return;
      default:
        return;
    }
  }

  /** The line's end, where sdssplitargs sees its terminating NUL. */
  endLine(): void {
    const s = this.state;
    if (s === T_WORD || s === T_CLOSED) this.endToken();
    else if (s !== T_BLANK) this.bad = true; // inside quotes: unterminated
  }

  private wordByte(c: number): void {
    if (c === 0x20 || c === 0x0d || c === 0x09) this.endToken();
    else if (c === 0x22) this.state = T_DQ;
    else if (c === 0x27) this.state = T_SQ;
    else this.append(c);
  }

  private dqByte(c: number): void {
    if (c === 0x5c) this.state = T_DQ_ESC;
    else if (c === 0x22) this.state = T_CLOSED;
    else this.append(c);
  }

  private sqByte(c: number): void {
    if (c === 0x5c) this.state = T_SQ_ESC;
    else if (c === 0x27) this.state = T_CLOSED;
    else this.append(c);
  }

  private append(c: number): void {
    this.sink.put(this.count, this.len, c);
    this.len++;
  }

  private endToken(): void {
    const index = this.count;
    this.sink.token(index, this.len);
    this.count = index + 1;
    this.state = T_BLANK;
  }
}
