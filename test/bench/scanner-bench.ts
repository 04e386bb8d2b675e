/**
 * Micro-benchmark of the RESP scanners (not a test). Prints ns per small command / reply and MB/s
 * for big values. Run: npx tsc -p tsconfig.json && node dist/test/bench/scanner-bench.js
 */
import { CommandTable } from '../../src/resp/command-table.js';
import { RequestScanner, NEED_MORE } from '../../src/resp/request-scanner.js';
import { ReplyScanner } from '../../src/resp/reply-scanner.js';

const COMMANDS = 1_000_000;
const CHUNK = 64 * 1024;

function chunksOf(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, Math.min(i + size, data.length)));
  return out;
}

function scanAll(scanner: { next(buf: Buffer, pos: number): number }, chunks: readonly Buffer[]): number {
  let events = 0;
  for (const chunk of chunks) {
    let pos = 0;
    for (;;) {
      const at = scanner.next(chunk, pos);
      if (at === NEED_MORE) break;
      events++;
      pos = at;
    }
  }
  return events;
}

function best(runs: number, fn: () => void): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t0));
  }
  return min;
}

const table = new CommandTable(['flushall', 'debug']);
const limits = { maxBulkBytes: 512 * 1024 * 1024, maxInlineBytes: 64 * 1024 };

// 1M small SET commands, pipelined in 64 KiB chunks (what a socket delivers).
const set = Buffer.from('*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000001\r\n$8\r\nvalue-01\r\n');
const setChunks = chunksOf(Buffer.concat(new Array<Buffer>(COMMANDS).fill(set)), CHUNK);
let events = 0;
const setNs = best(5, () => {
  events = scanAll(new RequestScanner(table, limits), setChunks);
});
if (events !== 2 * COMMANDS) throw new Error(`expected ${2 * COMMANDS} events, got ${events}`);
console.log(`request scanner: ${(setNs / COMMANDS).toFixed(1)} ns/command (1M pipelined SET, ${set.length} B each)`);

const ping = Buffer.from('PING\r\n');
const pingChunks = chunksOf(Buffer.concat(new Array<Buffer>(COMMANDS).fill(ping)), CHUNK);
const pingNs = best(5, () => {
  scanAll(new RequestScanner(table, limits), pingChunks);
});
console.log(`request scanner: ${(pingNs / COMMANDS).toFixed(1)} ns/command (1M inline PING)`);

// Big values: one 64 MiB SET, fed in 64 KiB chunks.
const big = 64 * 1024 * 1024;
const bigCmd = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${big}\r\n`), Buffer.alloc(big, 0x61), Buffer.from('\r\n')]);
const bigChunks = chunksOf(bigCmd, CHUNK);
const bigNs = best(5, () => {
  scanAll(new RequestScanner(table, limits), bigChunks);
});
console.log(
  `request scanner: ${(bigCmd.length / (bigNs / 1e9) / 1e6).toFixed(0)} MB/s (64 MiB value in 64 KiB chunks, ${(bigNs / 1e6).toFixed(2)} ms)`,
);

// Replies: 1M "+OK" and 1M small bulks.
const ok = Buffer.from('+OK\r\n');
const okChunks = chunksOf(Buffer.concat(new Array<Buffer>(COMMANDS).fill(ok)), CHUNK);
const okNs = best(5, () => {
  scanAll(new ReplyScanner(), okChunks);
});
console.log(`reply scanner:   ${(okNs / COMMANDS).toFixed(1)} ns/reply (1M +OK)`);

const bulk = Buffer.from('$8\r\nvalue-01\r\n');
const bulkChunks = chunksOf(Buffer.concat(new Array<Buffer>(COMMANDS).fill(bulk)), CHUNK);
const bulkNs = best(5, () => {
  scanAll(new ReplyScanner(), bulkChunks);
});
console.log(`reply scanner:   ${(bulkNs / COMMANDS).toFixed(1)} ns/reply (1M 8-byte bulk)`);

const bigReply = Buffer.concat([Buffer.from(`$${big}\r\n`), Buffer.alloc(big, 0x61), Buffer.from('\r\n')]);
const bigReplyChunks = chunksOf(bigReply, CHUNK);
const bigReplyNs = best(5, () => {
  scanAll(new ReplyScanner(), bigReplyChunks);
});
console.log(`reply scanner:   ${(bigReply.length / (bigReplyNs / 1e9) / 1e6).toFixed(0)} MB/s (64 MiB bulk in 64 KiB chunks)`);

// Reference: one plain JS loop reading every byte of the same chunks once (no framing at all).
let crs = 0;
const floorNs = best(5, () => {
  crs = 0;
  for (const c of setChunks) for (let i = 0; i < c.length; i++) if (c[i] === 0x0d) crs++;
});
if (crs !== 7 * COMMANDS) throw new Error(`expected ${7 * COMMANDS} CRs, got ${crs}`);
console.log(`reference:       ${(floorNs / COMMANDS).toFixed(1)} ns/command for a JS loop that reads every byte of the SET stream once`);
