/**
 * What the session needs to know about a command beyond its name: `CLIENT REPLY ON|OFF|SKIP`,
 * `HELLO 2|3`, and whether XREAD/XREADGROUP blocks. Fed the name's id, then the first bytes
 * (ARG_CAPTURE_BYTES) of each later argument of the few commands that matter; everything else is
 * never captured (`capturing` is false), so GET/SET cost nothing here.
 */
import { Cmd, type CommandTable, UNKNOWN_COMMAND_ID } from './command-table.js';

export const REPLY_ON = 1;
export const REPLY_OFF = 2;
export const REPLY_SKIP = 3;

/** Bytes of each CLIENT/HELLO/XREAD argument kept for classification (longest keyword: STREAMS). */
export const ARG_CAPTURE_BYTES = 16;

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

/** Case-insensitive comparison of a captured argument with a lowercase, letters-only keyword. */
function equalsKeyword(bytes: Uint8Array, len: number, kw: Uint8Array): boolean {
  if (len !== kw.length) return false;
  for (let i = 0; i < len; i++) if ((bytes[i]! | 0x20) !== kw[i]) return false;
  return true;
}

export class ArgumentClassifier {
  /** Set by classify(); UNKNOWN_COMMAND_ID until then. */
  commandId = UNKNOWN_COMMAND_ID;
  /** After end(): REPLY_ON/OFF/SKIP for a well-formed `CLIENT REPLY x`, else 0. */
  clientReply = 0;
  /** After end() for HELLO: 2 or 3 when given as the first argument, else 0. */
  helloVersion = 0;
  /** After end() for XREAD/XREADGROUP: true when a BLOCK option precedes a well-formed STREAMS list. */
  blockArg = false;

  private readonly table: CommandTable;
  private readonly xreadgroupId: number;
  private mode = CAP_NONE;
  private replySub = false;
  private replyValue = 0;
  private xSkip = 0;
  private xDone = false;
  private xBad = false;
  private xBlockAt = -1;
  private xStreamsAt = -1;

  constructor(table: CommandTable) {
    this.table = table;
    this.xreadgroupId = table.idOf('xreadgroup');
  }

  /** Later arguments of this command are to be captured and passed to arg(). */
  get capturing(): boolean {
    return this.mode !== CAP_NONE;
  }

  /** A new command begins. */
  reset(): void {
    this.commandId = UNKNOWN_COMMAND_ID;
    this.clientReply = 0;
    this.helloVersion = 0;
    this.blockArg = false;
    this.mode = CAP_NONE;
  }

  /** The command's name is known. */
  classify(id: number): void {
    this.commandId = id;
    const kind = this.table.kind(id);
    if (kind === Cmd.CLIENT) {
      this.mode = CAP_CLIENT;
      this.replySub = false;
      this.replyValue = 0;
    } else if (kind === Cmd.HELLO) {
      this.mode = CAP_HELLO;
    } else if (kind === Cmd.XREAD) {
      this.mode = id === this.xreadgroupId ? CAP_XREADGROUP : CAP_XREAD;
      this.xSkip = 0;
      this.xDone = false;
      this.xBad = false;
      this.xBlockAt = -1;
      this.xStreamsAt = -1;
    }
  }

  /** Argument `index` (1-based after the name) of `len` bytes, its first bytes in `bytes`. */
  arg(index: number, len: number, bytes: Uint8Array): void {
    switch (this.mode) {
      case CAP_CLIENT:
        if (index === 1) this.replySub = equalsKeyword(bytes, len, KW_REPLY);
        else if (index === 2 && this.replySub) {
          this.replyValue = equalsKeyword(bytes, len, KW_ON)
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
        const group = this.mode === CAP_XREADGROUP;
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

  /** The whole command (argc arguments) is complete: settles clientReply and blockArg. */
  end(argc: number): void {
    if (this.mode === CAP_CLIENT) {
      this.clientReply = argc === 3 && this.replySub ? this.replyValue : 0;
    } else if (this.mode === CAP_XREAD || this.mode === CAP_XREADGROUP) {
      const streamArgs = argc - this.xStreamsAt - 1;
      this.blockArg = this.xBlockAt > 0 && !this.xBad && this.xStreamsAt > this.xBlockAt && streamArgs > 0 && streamArgs % 2 === 0;
    }
  }
}
