/**
 * Telling pub/sub frames from replies in a subscribed session. In RESP2 a message and a
 * (un)subscribe confirmation are arrays like any reply (in RESP3 they are pushes); what tells them
 * apart is the first element, a bulk string Redis and Pika spell the same way. Only the head of the
 * frame is read, never the payload.
 */
import { RESP_TYPES } from '../resp/resp-types.js';

export const PUBSUB_OTHER = 0; // a reply (e.g. PING's ["pong", ""]) or anything else
export const PUBSUB_MESSAGE = 1; // message, pmessage, smessage
export const PUBSUB_SUBSCRIBED = 2; // subscribe, psubscribe, ssubscribe confirmations
export const PUBSUB_UNSUBSCRIBED = 3; // unsubscribe, punsubscribe, sunsubscribe confirmations

/** Enough bytes for `*4\r\n$12\r\npunsubscribe\r\n`. */
export const PUBSUB_HEAD_BYTES = 32;

/** Which subscriptions a confirmation is about, in the bits above the class (SUB_* of accounting.ts). */
export const PUBSUB_KIND_SHIFT = 2;
const CHANNEL = 0 << PUBSUB_KIND_SHIFT;
const PATTERN = 1 << PUBSUB_KIND_SHIFT;
const SHARD = 2 << PUBSUB_KIND_SHIFT;

const WORDS: ReadonlyArray<readonly [string, number]> = [
  ['message', PUBSUB_MESSAGE],
  ['pmessage', PUBSUB_MESSAGE],
  ['smessage', PUBSUB_MESSAGE],
  ['subscribe', PUBSUB_SUBSCRIBED | CHANNEL],
  ['psubscribe', PUBSUB_SUBSCRIBED | PATTERN],
  ['ssubscribe', PUBSUB_SUBSCRIBED | SHARD],
  ['unsubscribe', PUBSUB_UNSUBSCRIBED | CHANNEL],
  ['punsubscribe', PUBSUB_UNSUBSCRIBED | PATTERN],
  ['sunsubscribe', PUBSUB_UNSUBSCRIBED | SHARD],
];
const BY_WORD = new Map(WORDS.map(([w, k]) => [Buffer.from(w).toString('latin1'), k]));

/**
 * Classifies an aggregate frame (`*` or `>`) by the first bytes `head` of it: its first element
 * must be a bulk string naming a pub/sub frame. Anything else, or a head too short to tell, is
 * PUBSUB_OTHER.
 */
export function classifyPubSubHead(head: Buffer): number {
  return classifyPubSub(head) & ((1 << PUBSUB_KIND_SHIFT) - 1);
}

/** Like classifyPubSubHead, with the confirmation's channel kind above PUBSUB_KIND_SHIFT. */
export function classifyPubSub(head: Buffer): number {
  if (head.length < 4 || (head[0] !== RESP_TYPES.ARRAY && head[0] !== RESP_TYPES.PUSH)) return PUBSUB_OTHER;
  const firstLineEnd = head.indexOf('\r\n', 1);
  if (firstLineEnd < 0 || head[firstLineEnd + 2] !== RESP_TYPES.BLOB_STRING) return PUBSUB_OTHER;
  const lenEnd = head.indexOf('\r\n', firstLineEnd + 3);
  if (lenEnd < 0) return PUBSUB_OTHER;
  const len = Number(head.toString('latin1', firstLineEnd + 3, lenEnd));
  if (!Number.isInteger(len) || len < 7 || len > 12 || lenEnd + 2 + len > head.length) return PUBSUB_OTHER;
  return BY_WORD.get(head.toString('latin1', lenEnd + 2, lenEnd + 2 + len)) ?? PUBSUB_OTHER;
}

/** The frame `chunk[start, end)` ends with a subscription count of zero (`:0\r\n`). */
export function endsWithZeroCount(chunk: Buffer, start: number, end: number): boolean {
  return (
    end - 4 >= Math.max(start, 0) &&
    chunk[end - 4] === RESP_TYPES.INTEGER &&
    chunk[end - 3] === 0x30 &&
    chunk[end - 2] === 0x0d &&
    chunk[end - 1] === 0x0a
  );
}

/**
 * The integer `:N\r\n` that ends a confirmation whose last bytes are tail[0, end), or -1. Only
 * the last 22 bytes are read (a 64-bit count fits).
 */
export function trailingCount(tail: Uint8Array, start: number, end: number): number {
  if (end - start < 4 || tail[end - 1] !== 0x0a || tail[end - 2] !== 0x0d) return -1;
  let i = end - 3;
  let value = 0;
  let scale = 1;
  const stop = Math.max(start, end - 22);
  for (; i >= stop; i--) {
    const c = tail[i]!;
    if (c === RESP_TYPES.INTEGER) return i < end - 3 ? value : -1;
    if (c < 0x30 || c > 0x39) return -1;
    value += (c - 0x30) * scale;
    scale *= 10;
  }
  return -1;
}
