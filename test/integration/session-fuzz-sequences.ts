/**
 * Random command sequences over the vocabulary that changes a session's protocol state, for the
 * differential fuzzer (session-fuzz.test.ts): each item has the bytes the sidecar gets and the bytes
 * a direct client sends instead (a refused command becomes an unknown one, which fails alike).
 *
 * Left out on purpose: MONITOR (its lines carry timestamps and other clients' commands), SYNC, and
 * mode changes queued inside MULTI (CLIENT REPLY OFF inside EXEC truncates the EXEC reply even on a
 * direct connection: the stream is not RESP any more). The model reports those as `uncertain`.
 */
import { resp } from '../../harness/raw-client.js';
import { prng } from '../support/prng.js';

export { prng };

export interface Item {
  /** What the fuzzer client sends through the sidecar. */
  sidecar: Buffer;
  /** What it sends to redis-server directly. */
  direct: Buffer;
  label: string;
}

const same = (label: string, bytes: Buffer): Item => ({ sidecar: bytes, direct: bytes, label });
export const cmd = (...args: string[]): Item => same(args.join(' '), resp(...args));
export const inline = (line: string): Item => same(`inline ${JSON.stringify(line)}`, Buffer.from(`${line}\r\n`));
/** A denied command through the sidecar; an unknown one (which fails alike) directly. */
export const refused = (): Item => ({ sidecar: resp('SHUTDOWN'), direct: resp('NOSUCHCMD'), label: 'SHUTDOWN (refused)' });

const NESTED = "return {1, {2, {3, 'x'}}, redis.status_reply('ok'), redis.error_reply('inner')}";
const RECURSIVE = 'local a = {}; local b = {a}; a[1] = b; return a';

/** Generates one sequence of `length` items (the generator tracks MULTI naively, see the header). */
export function sequence(rand: () => number, length: number): Item[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const out: Item[] = [];
  let inMulti = false;
  for (let i = 0; i < length; i++) {
    const r = rand();
    let item: Item;
    if (r < 0.12) {
      item = pick([cmd('MULTI'), cmd('EXEC'), cmd('DISCARD'), cmd('WATCH', 'fz:k'), cmd('UNWATCH')]);
    } else if (r < 0.3 && !inMulti) {
      item = pick([
        cmd('SUBSCRIBE', 'ch1'),
        cmd('SUBSCRIBE', 'ch1', 'ch2'),
        cmd('SUBSCRIBE', 'ch1', 'ch1'),
        cmd('SUBSCRIBE'),
        cmd('UNSUBSCRIBE'),
        cmd('UNSUBSCRIBE', 'ch1'),
        cmd('UNSUBSCRIBE', 'ch2', 'nope'),
        cmd('PSUBSCRIBE', 'p*'),
        cmd('PUNSUBSCRIBE'),
        cmd('PUNSUBSCRIBE', 'p*'),
        cmd('SSUBSCRIBE', 's1'),
        cmd('SUNSUBSCRIBE'),
        cmd('SUNSUBSCRIBE', 's1'),
        cmd('PUBLISH', 'ch1', 'hello'),
      ]);
    } else if (r < 0.42 && !inMulti) {
      item = pick([
        cmd('CLIENT', 'REPLY', 'ON'),
        cmd('CLIENT', 'REPLY', 'OFF'),
        cmd('CLIENT', 'REPLY', 'SKIP'),
        cmd('HELLO', '2'),
        cmd('HELLO', '3'),
        cmd('CLIENT', 'REPLY', 'BAD'),
      ]);
    } else if (r < 0.47) {
      item = cmd('RESET');
    } else if (r < 0.55) {
      item = pick([cmd('PING'), cmd('PING', 'arg'), cmd('ECHO', 'e')]);
    } else if (r < 0.6) {
      item = pick([cmd('BLPOP', 'fz:list', '0.01'), cmd('LPUSH', 'fz:list', 'x'), cmd('BRPOP', 'fz:list', 'fz:other', '0.01')]);
    } else if (r < 0.66) {
      item = pick([cmd('EVAL', NESTED, '0'), cmd('EVAL', "return redis.error_reply('boom')", '0'), cmd('EVAL', RECURSIVE, '0')]);
    } else if (r < 0.76) {
      item = pick([
        refused(),
        { sidecar: Buffer.from('SHUTDOWN NOSAVE\r\n'), direct: Buffer.from('NOSUCHCMD NOSAVE\r\n'), label: 'inline SHUTDOWN (refused)' },
      ]);
    } else if (r < 0.8) {
      item = pick([cmd('FOO'), cmd('GET')]); // unknown; wrong arity: queue-time errors inside MULTI
    } else if (r < 0.86) {
      item = pick([inline('PING'), inline('ECHO inline'), inline(''), same('*0', Buffer.from('*0\r\n'))]);
    } else {
      item = pick([cmd('INCRBY', 'fz:marker', '1000000'), cmd('SET', 'fz:k', 'v'), cmd('GET', 'fz:k')]);
    }
    if (/^(MULTI)$/.test(item.label)) inMulti = true;
    if (/^(EXEC|DISCARD|RESET)$/.test(item.label)) inMulti = false;
    out.push(item);
  }
  // QUIT after RESET: under CLIENT REPLY OFF redis-server closes after QUIT only if some reply was
  // pending in the same read (it depends on how TCP cut the stream), so it is never sent silenced.
  if (rand() < 0.05) out.push(cmd('RESET'), cmd('QUIT'));
  return out;
}

/** Random cut points in `bytes` (0 to 4 of them). */
export function splits(rand: () => number, bytes: Buffer): Buffer[] {
  const n = Math.floor(rand() * 5);
  const cuts = [...new Set(Array.from({ length: n }, () => 1 + Math.floor(rand() * Math.max(1, bytes.length - 1))))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of cuts) {
    if (c <= from || c >= bytes.length) continue;
    parts.push(bytes.subarray(from, c));
    from = c;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

/** Differences that are not the sidecar's doing: refusal texts, unknown-command texts, client ids. */
export function normalise(b: Buffer): string {
  return b
    .toString('latin1')
    .replace(/-ERR command '[^']*' is denied by pika-sidecar[^\r]*\r\n/g, '-REFUSED\r\n')
    .replace(/-ERR unknown command '[^']*', with args beginning with:[^\r]*\r\n/g, '-REFUSED\r\n')
    .replace(/\$2\r\nid\r\n:\d+\r\n/g, '$2\r\nid\r\n:ID\r\n');
}

export function describeSequence(items: readonly Item[]): string {
  return items.map((i) => i.label).join(' | ');
}
