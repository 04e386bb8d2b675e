/**
 * The few command names the session's accounting cares about, and the operator's deny list.
 *
 * `lookup()` runs once per command on the hot path: it dispatches on the name's length and first
 * letter, then compares bytes case-insensitively against the one or two candidates in that bucket.
 * No strings, no allocation. Everything else (GET, SET, ...) is `OTHER` and costs one array read.
 */
import { SidecarError } from '../errors.js';

/** Categories the session's accounting needs. */
export const Cmd = {
  OTHER: 0,
  EMPTY: 1,
  MULTI: 2,
  EXEC: 3,
  DISCARD: 4,
  SUBSCRIBE: 5,
  UNSUBSCRIBE: 6,
  MONITOR: 7,
  SYNC: 8,
  REPLICAOF: 9,
  QUIT: 10,
  RESET: 11,
  HELLO: 12,
  CLIENT: 13,
  AUTH: 14,
  BLOCKING: 15,
  XREAD: 16,
  PING: 17,
  SHUTDOWN: 18,
  WATCH: 19,
  UNWATCH: 20,
} as const;
export type CmdKind = (typeof Cmd)[keyof typeof Cmd];

/** Id of every name the table does not know (kind OTHER, never denied, name ''). */
export const UNKNOWN_COMMAND_ID = 0;
/** Id of the empty command: `*0`, `*-1` or a blank inline line (kind EMPTY, name ''). */
export const EMPTY_COMMAND_ID = 1;

/** Known names by kind. Every name gets its own id, so messages can name the exact command. */
const KNOWN_NAMES: ReadonlyArray<readonly [string, CmdKind]> = [
  ['multi', Cmd.MULTI],
  ['exec', Cmd.EXEC],
  ['discard', Cmd.DISCARD],
  ['subscribe', Cmd.SUBSCRIBE],
  ['psubscribe', Cmd.SUBSCRIBE],
  ['ssubscribe', Cmd.SUBSCRIBE],
  ['unsubscribe', Cmd.UNSUBSCRIBE],
  ['punsubscribe', Cmd.UNSUBSCRIBE],
  ['sunsubscribe', Cmd.UNSUBSCRIBE],
  ['monitor', Cmd.MONITOR],
  ['sync', Cmd.SYNC],
  ['psync', Cmd.SYNC],
  ['replicaof', Cmd.REPLICAOF],
  ['slaveof', Cmd.REPLICAOF],
  ['quit', Cmd.QUIT],
  ['reset', Cmd.RESET],
  ['hello', Cmd.HELLO],
  ['client', Cmd.CLIENT],
  ['auth', Cmd.AUTH],
  ['blpop', Cmd.BLOCKING],
  ['brpop', Cmd.BLOCKING],
  ['brpoplpush', Cmd.BLOCKING],
  ['blmove', Cmd.BLOCKING],
  ['blmpop', Cmd.BLOCKING],
  ['bzpopmin', Cmd.BLOCKING],
  ['bzpopmax', Cmd.BLOCKING],
  ['bzmpop', Cmd.BLOCKING],
  ['wait', Cmd.BLOCKING],
  ['waitaof', Cmd.BLOCKING],
  ['xread', Cmd.XREAD],
  ['xreadgroup', Cmd.XREAD],
  ['ping', Cmd.PING],
  ['shutdown', Cmd.SHUTDOWN],
  ['watch', Cmd.WATCH],
  ['unwatch', Cmd.UNWATCH],
];

/** Buckets are indexed by length * 32 + (first byte & 31): 'A' and 'a' share a bucket. */
const BUCKET_STRIDE = 32;

export class CommandTable {
  /** Longest known or denied name, in bytes: a longer first argument is OTHER without a look. */
  readonly maxNameLength: number;
  private readonly names: string[] = ['', ''];
  private readonly kinds: Uint8Array;
  private readonly denied: Uint8Array;
  /** Lowercase name bytes of every id, back to back; id i spans [offsets[i], offsets[i + 1]). */
  private readonly nameBytes: Uint8Array;
  private readonly offsets: Int32Array;
  private readonly buckets: Array<Int32Array | undefined>;
  private readonly idsByName = new Map<string, number>();

  /** `deniedNames`: lowercase (any case accepted) names the sidecar refuses; known or arbitrary. */
  constructor(deniedNames: readonly string[]) {
    const kinds: number[] = [Cmd.OTHER, Cmd.EMPTY];
    const deniedSet = new Set<string>();
    for (const raw of deniedNames) {
      const name = raw.toLowerCase();
      if (!/^[\x21-\x7e]+$/.test(name)) {
        throw new SidecarError('ERR_CONFIG', `denied command name ${JSON.stringify(raw)} must be non-empty printable ASCII without spaces`);
      }
      deniedSet.add(name);
    }
    for (const [name, kind] of KNOWN_NAMES) this.add(name, kind, kinds);
    for (const name of deniedSet) if (!this.idsByName.has(name)) this.add(name, Cmd.OTHER, kinds);

    const count = this.names.length;
    this.kinds = Uint8Array.from(kinds);
    this.denied = new Uint8Array(count);
    for (const name of deniedSet) this.denied[this.idsByName.get(name)!] = 1;

    const encoded = this.names.map((n) => Buffer.from(n, 'latin1'));
    this.offsets = new Int32Array(count + 1);
    let total = 0;
    let longest = 0;
    for (let id = 0; id < count; id++) {
      this.offsets[id] = total;
      total += encoded[id]!.length;
      longest = Math.max(longest, encoded[id]!.length);
    }
    this.offsets[count] = total;
    this.nameBytes = new Uint8Array(total);
    for (let id = 0; id < count; id++) this.nameBytes.set(encoded[id]!, this.offsets[id]!);
    this.maxNameLength = longest;

    const lists: number[][] = [];
    for (let id = EMPTY_COMMAND_ID + 1; id < count; id++) {
      const bytes = encoded[id]!;
      const key = bytes.length * BUCKET_STRIDE + (bytes[0]! & 31);
      (lists[key] ??= []).push(id);
    }
    this.buckets = new Array<Int32Array | undefined>((longest + 1) * BUCKET_STRIDE);
    lists.forEach((ids, key) => {
      this.buckets[key] = Int32Array.from(ids);
    });
  }

  /** Case-insensitive lookup of buf[start, end) without allocation. Unknown → 0 (OTHER, not denied). */
  lookup(buf: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (len <= 0 || len > this.maxNameLength) return UNKNOWN_COMMAND_ID;
    const bucket = this.buckets[len * BUCKET_STRIDE + (buf[start]! & 31)];
    if (bucket === undefined) return UNKNOWN_COMMAND_ID;
    const names = this.nameBytes;
    for (let k = 0; k < bucket.length; k++) {
      const id = bucket[k]!;
      let q = this.offsets[id]!;
      let i = start;
      for (; i < end; i++, q++) {
        const c = buf[i]!;
        const n = names[q]!;
        // Only ASCII letters fold (like strcasecmp): 'A' matches 'a', '@' never matches '`'.
        if (c !== n && ((c | 0x20) !== n || n < 0x61 || n > 0x7a)) break;
      }
      if (i === end) return id;
    }
    return UNKNOWN_COMMAND_ID;
  }

  kind(id: number): CmdKind {
    return (this.kinds[id] ?? Cmd.OTHER) as CmdKind;
  }

  isDenied(id: number): boolean {
    return this.denied[id] === 1;
  }

  /** Lowercase name ('' for unknown and empty). */
  name(id: number): string {
    return this.names[id] ?? '';
  }

  /** Id of a lowercase name, or UNKNOWN_COMMAND_ID. Not for the hot path (it takes a string). */
  idOf(name: string): number {
    return this.idsByName.get(name.toLowerCase()) ?? UNKNOWN_COMMAND_ID;
  }

  private add(name: string, kind: CmdKind, kinds: number[]): void {
    this.idsByName.set(name, this.names.length);
    this.names.push(name);
    kinds.push(kind);
  }
}
