/**
 * Property tests of both scanners (fast-check, fixed seeds, a few seconds in all):
 * 1. Random valid command / reply streams give the events a simple model predicts, and the same
 *    events however the stream is cut into chunks.
 * 2. Random and mutated byte streams never throw anything but ERR_PROTOCOL, never stall (each call
 *    advances, or consumes the rest of its chunk), and never wait forever: a bounded filler after
 *    the garbage always brings the scanner back to a boundary or to a protocol error.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CommandTable, EMPTY_COMMAND_ID } from '../../src/resp/command-table.js';
import {
  EV_END,
  EV_NAME,
  NEED_MORE,
  REPLY_OFF,
  REPLY_ON,
  REPLY_SKIP,
  RequestScanner,
  type RequestScannerLimits,
} from '../../src/resp/request-scanner.js';
import { FRAME_ATTRIBUTE, FRAME_PUSH, FRAME_REPLY, ReplyScanner } from '../../src/resp/reply-scanner.js';
import { isSidecarError } from '../../src/errors.js';

// `make fuzz` scales the runs up and draws a fresh seed (printed, so a failure can be replayed
// with FUZZ_SEED); `make test` keeps the fixed seed and a few seconds.
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x5ca22e5;
const RUNS = (n: number) => Math.max(1, Math.round(n * Number(process.env.FUZZ_RUNS_SCALE ?? 1)));
if (process.env.FUZZ_SEED !== undefined) console.log(`fuzz: seed ${SEED}, runs x${process.env.FUZZ_RUNS_SCALE ?? 1}`);
const table = new CommandTable(['flushall', 'debug']);
const LIMITS: RequestScannerLimits = { maxBulkBytes: 512 * 1024 * 1024, maxInlineBytes: 64 * 1024 };

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Cuts a buffer into chunks of the given sizes (cycled). */
function cut(input: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  let k = 0;
  while (i < input.length) {
    const n = sizes.length === 0 ? input.length : sizes[k++ % sizes.length]!;
    out.push(input.subarray(i, i + n));
    i += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Requests

interface ReqEvent {
  ev: number;
  at: number;
  id: number;
  argc: number;
  clientReply: number;
  helloVersion: number;
  blockArg: boolean;
}

/** Feeds chunks as the session does; asserts the progress rules on every call. */
function feedRequests(s: RequestScanner, chunks: readonly Buffer[], events: ReqEvent[], offset = 0): number {
  for (const chunk of chunks) {
    let pos = 0;
    let last = -1;
    for (let calls = 0; ; calls++) {
      assert.ok(calls <= 2 * chunk.length + 2, 'too many calls for one chunk: the scanner stalls');
      const at = s.next(chunk, pos);
      if (at === NEED_MORE) break;
      assert.ok(at >= pos && at <= chunk.length, 'a returned position is inside the chunk and not behind');
      if (at === pos) {
        // Only an EV_END right after an EV_NAME may repeat a position.
        assert.equal(s.event, EV_END);
        assert.equal(last, EV_NAME);
      }
      last = s.event;
      events.push({
        ev: s.event,
        at: offset + at,
        id: s.commandId,
        argc: s.argc,
        clientReply: s.clientReply,
        helloVersion: s.helloVersion,
        blockArg: s.blockArg,
      });
      pos = at;
    }
    offset += chunk.length;
  }
  return offset;
}

interface CommandModel {
  bytes: Buffer;
  name: Buffer | null; // null: an empty command
  argc: number;
  nameAt: number; // relative to the command's start
  clientReply: number;
  helloVersion: number;
}

const NAME_WORDS = [
  'ping',
  'PING',
  'Multi',
  'exec',
  'client',
  'CLIENT',
  'hello',
  'subscribe',
  'xread',
  'get',
  'set',
  'flushall',
  'DEBUG',
  'x'.repeat(40),
];
const ARG_WORDS = ['reply', 'REPLY', 'off', 'On', 'skip', 'SKIP', '2', '3', '03', 'block', 'streams', '0', 'k'];

const wordBytes = (words: string[]): fc.Arbitrary<Buffer> => fc.constantFrom(...words).map(latin1);
const anyBytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
const safeToken = fc.stringMatching(/^[a-zA-Z0-9:_.-]{1,10}$/);

function classifyModel(args: Buffer[]): { clientReply: number; helloVersion: number } {
  const lower = args.map((a) => a.toString('latin1').toLowerCase());
  let clientReply = 0;
  if (lower[0] === 'client' && args.length === 3 && lower[1] === 'reply') {
    clientReply = lower[2] === 'on' ? REPLY_ON : lower[2] === 'off' ? REPLY_OFF : lower[2] === 'skip' ? REPLY_SKIP : 0;
  }
  const helloVersion =
    lower[0] === 'hello' && (args[1]?.toString('latin1') === '2' || args[1]?.toString('latin1') === '3') ? Number(lower[1]) : 0;
  return { clientReply, helloVersion };
}

const multibulkCommand: fc.Arbitrary<CommandModel> = fc
  .tuple(fc.oneof(wordBytes(NAME_WORDS), anyBytes), fc.array(fc.oneof(wordBytes(ARG_WORDS), anyBytes), { maxLength: 4 }))
  .map(([name, rest]) => {
    const args = [name, ...rest];
    const parts: Buffer[] = [latin1(`*${args.length}\r\n`)];
    let nameAt = 0;
    for (const a of args) {
      parts.push(latin1(`$${a.length}\r\n`));
      // A first argument longer than any known name is classified at its header, unread.
      if (nameAt === 0 && a.length > table.maxNameLength) nameAt = parts.reduce((n, b) => n + b.length, 0);
      parts.push(a, latin1('\r\n'));
      if (nameAt === 0) nameAt = parts.reduce((n, b) => n + b.length, 0);
    }
    return { bytes: Buffer.concat(parts), name, argc: args.length, nameAt, ...classifyModel(args) };
  });

const inlineToken = fc.oneof(
  fc.oneof(fc.constantFrom(...NAME_WORDS, ...ARG_WORDS), safeToken).map((t) => ({ raw: t, value: t })),
  safeToken.map((t) => ({ raw: `"${t}"`, value: t })),
  safeToken.map((t) => ({ raw: `'${t}'`, value: t })),
);

const inlineCommand: fc.Arbitrary<CommandModel> = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom(' ', '\t', '  ', ' \t'), inlineToken), { minLength: 1, maxLength: 5 }),
    fc.constantFrom('', ' ', '\t'),
    fc.constantFrom('\r\n', '\n'),
  )
  .map(([tokens, trailing, eol]) => {
    const line = tokens.map(([sep, t], i) => (i === 0 ? sep.trimStart() : sep) + t.raw).join('') + trailing + eol;
    const args = tokens.map(([, t]) => latin1(t.value));
    const bytes = latin1(line);
    return { bytes, name: args[0]!, argc: args.length, nameAt: bytes.length, ...classifyModel(args) };
  });

const emptyCommand: fc.Arbitrary<CommandModel> = fc
  .oneof(
    fc.constantFrom('*0\r\n', '*-1\r\n', '\r\n', '\n', '  \t\r\n'),
    fc.integer({ min: 1, max: 2 ** 40 }).map((n) => `*-${n}\r\n`),
  )
  .map((s) => ({ bytes: latin1(s), name: null, argc: 0, nameAt: s.length, clientReply: 0, helloVersion: 0 }));

const commandStream = fc.array(fc.oneof({ weight: 3, arbitrary: multibulkCommand }, inlineCommand, emptyCommand), {
  minLength: 1,
  maxLength: 12,
});

const chunkSizes = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 });

function expectedEvents(cmds: readonly CommandModel[]): Array<Pick<ReqEvent, 'ev' | 'at' | 'id' | 'argc'>> {
  const out: Array<Pick<ReqEvent, 'ev' | 'at' | 'id' | 'argc'>> = [];
  let start = 0;
  for (const c of cmds) {
    const id = c.name === null ? EMPTY_COMMAND_ID : table.idOf(c.name.toString('latin1'));
    out.push({ ev: EV_NAME, at: start + c.nameAt, id, argc: c.argc });
    out.push({ ev: EV_END, at: start + c.bytes.length, id, argc: c.argc });
    start += c.bytes.length;
  }
  return out;
}

describe('RequestScanner properties', () => {
  test('valid command streams give the modelled events, however they are chunked', () => {
    fc.assert(
      fc.property(commandStream, chunkSizes, (cmds, sizes) => {
        const input = Buffer.concat(cmds.map((c) => c.bytes));
        const whole: ReqEvent[] = [];
        feedRequests(new RequestScanner(table, LIMITS), [input], whole);
        assert.deepEqual(
          whole.map(({ ev, at, id, argc }) => ({ ev, at, id, argc: ev === EV_END ? argc : 0 })),
          expectedEvents(cmds).map((e) => ({ ...e, argc: e.ev === EV_END ? e.argc : 0 })),
        );
        cmds.forEach((c, i) => {
          const end = whole[2 * i + 1]!;
          assert.equal(end.clientReply, c.clientReply, 'clientReply');
          assert.equal(end.helloVersion, c.helloVersion, 'helloVersion');
        });
        const chunked: ReqEvent[] = [];
        const s = new RequestScanner(table, LIMITS);
        feedRequests(s, cut(input, sizes), chunked);
        assert.deepEqual(chunked, whole);
        assert.equal(s.atBoundary, true);
        assert.equal(s.bytesScanned, input.length);
      }),
      { seed: SEED, numRuns: RUNS(400) },
    );
  });

  const SMALL: RequestScannerLimits = { maxBulkBytes: 256, maxInlineBytes: 256 };
  /** From any state, this many bytes of CRLF reach a boundary or a protocol error (payload + line limits). */
  const FILLER = latin1('\r\n'.repeat(SMALL.maxBulkBytes + SMALL.maxInlineBytes + 64));
  const REQUEST_BYTES = latin1('*$:\r\n\r\n\0 \t"\'\\x0123456789-+aPING');

  const requestGarbage = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    fc.array(fc.constantFrom(...REQUEST_BYTES), { maxLength: 64 }).map((a) => Buffer.from(a)),
    fc
      .tuple(
        commandStream,
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...REQUEST_BYTES), fc.constantFrom(0, 1, 2)), { minLength: 1, maxLength: 4 }),
      )
      .map(([cmds, mutations]) => mutate(Buffer.concat(cmds.map((c) => c.bytes)), mutations)),
  );

  test('garbage only ever throws ERR_PROTOCOL, never stalls, and a filler then a PING always resolves', () => {
    fc.assert(
      fc.property(requestGarbage, chunkSizes, (garbage, sizes) => {
        const s = new RequestScanner(table, SMALL);
        const events: ReqEvent[] = [];
        try {
          let at = feedRequests(s, cut(garbage, sizes), events);
          const before = events.length;
          at = feedRequests(s, cut(FILLER, [64]), events, at);
          assert.equal(s.atBoundary, true, 'the filler brings the scanner back to a boundary');
          assert.ok(events.length > before, 'the filler gives events');
          const ping = latin1('*1\r\n$4\r\nPING\r\n');
          feedRequests(s, [ping], events, at);
          assert.deepEqual(
            events.slice(-2).map((e) => [e.ev, e.at, table.name(e.id)]),
            [
              [EV_NAME, at + ping.length, 'ping'],
              [EV_END, at + ping.length, 'ping'],
            ],
          );
        } catch (err) {
          if (!isSidecarError(err, 'ERR_PROTOCOL')) throw err;
          assert.match(err.message, /^Protocol error: /);
        }
      }),
      { seed: SEED, numRuns: RUNS(600) },
    );
  });
});

function mutate(input: Buffer, mutations: ReadonlyArray<readonly [number, number, number]>): Buffer {
  let b = Buffer.from(input);
  for (const [where, byte, op] of mutations) {
    const i = b.length === 0 ? 0 : where % (b.length + 1);
    const ins = Buffer.from([byte]);
    if (op === 0) b = Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
    else if (op === 1) b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    else if (i < b.length) b[i] = byte;
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Replies

interface Frame {
  bytes: Buffer;
  kind: number;
}

const lineText = fc.stringMatching(/^[ -~]{0,16}$/);
const blob = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));

const scalar: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(fc.constantFrom('+', '-', ':', ','), lineText).map(([t, s]) => latin1(`${t}${s}\r\n`)),
  fc.constantFrom('_\r\n', '#t\r\n', '#f\r\n', '$-1\r\n', '*-1\r\n', '(12345678901234567890123\r\n', ',inf\r\n').map(latin1),
  fc.tuple(fc.constantFrom('$', '!', '='), blob).map(([t, b]) => Buffer.concat([latin1(`${t}${b.length}\r\n`), b, latin1('\r\n')])),
);

const { value: replyValue } = fc.letrec<{ value: Buffer; element: Buffer }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    scalar,
    fc
      .tuple(fc.constantFrom('*', '~', '>'), fc.array(tie('element'), { maxLength: 4 }))
      .map(([t, xs]) => Buffer.concat([latin1(`${t}${xs.length}\r\n`), ...xs])),
    fc
      .array(fc.tuple(tie('element'), tie('element')), { maxLength: 3 })
      .map((pairs) => Buffer.concat([latin1(`%${pairs.length}\r\n`), ...pairs.flat()])),
  ),
  // An element may be preceded by an attribute, which is not an element itself.
  element: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    tie('value'),
    fc
      .tuple(fc.array(fc.tuple(scalar, scalar), { maxLength: 2 }), tie('value'))
      .map(([pairs, v]) => Buffer.concat([latin1(`|${pairs.length}\r\n`), ...pairs.flat(), v])),
  ),
}));

const frame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 4, arbitrary: replyValue.map((bytes) => ({ bytes, kind: bytes[0] === 0x3e ? FRAME_PUSH : FRAME_REPLY })) },
  fc.array(fc.tuple(scalar, replyValue), { maxLength: 2 }).map((pairs) => ({
    bytes: Buffer.concat([latin1(`|${pairs.length}\r\n`), ...pairs.flat()]),
    kind: FRAME_ATTRIBUTE,
  })),
);

function feedReplies(s: ReplyScanner, chunks: readonly Buffer[], out: Array<[number, number]>): void {
  let offset = 0;
  for (const chunk of chunks) {
    let pos = 0;
    for (let calls = 0; ; calls++) {
      assert.ok(calls <= chunk.length + 1, 'too many calls for one chunk: the scanner stalls');
      const at = s.next(chunk, pos);
      if (at === NEED_MORE) break;
      assert.ok(at > pos && at <= chunk.length, 'each frame ends after the position it started from');
      out.push([offset + at, s.frameKind]);
      pos = at;
    }
    offset += chunk.length;
  }
}

describe('ReplyScanner properties', () => {
  test('valid reply streams give the modelled frames, however they are chunked', () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 10 }), chunkSizes, (frames, sizes) => {
        const input = Buffer.concat(frames.map((f) => f.bytes));
        let end = 0;
        const expected = frames.map((f) => [(end += f.bytes.length), f.kind] as [number, number]);
        const whole: Array<[number, number]> = [];
        const s = new ReplyScanner();
        feedReplies(s, [input], whole);
        assert.deepEqual(whole, expected);
        assert.equal(s.atBoundary, true);
        const chunked: Array<[number, number]> = [];
        feedReplies(new ReplyScanner(), cut(input, sizes), chunked);
        assert.deepEqual(chunked, whole);
      }),
      { seed: SEED, numRuns: RUNS(400) },
    );
  });

  const REPLY_BYTES = latin1('+-:$*%~>|_,#(!=\r\n0123456789-?ab');
  const replyGarbage = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    fc.array(fc.constantFrom(...REPLY_BYTES), { maxLength: 64 }).map((a) => Buffer.from(a)),
    fc
      .tuple(
        fc.array(frame, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...REPLY_BYTES), fc.constantFrom(0, 1, 2)), { minLength: 1, maxLength: 4 }),
      )
      .map(([frames, mutations]) => mutate(Buffer.concat(frames.map((f) => f.bytes)), mutations)),
  );
  const MAX_BULK = 256;
  /** CRLFs: from any state, a protocol error within the payload limit, the line limit and a few bytes. */
  const FILLER = latin1('\r\n'.repeat(MAX_BULK + 64));

  test('garbage only ever throws ERR_PROTOCOL, never stalls, and is refused within a bounded filler', () => {
    fc.assert(
      fc.property(replyGarbage, chunkSizes, (garbage, sizes) => {
        const s = new ReplyScanner({ maxBulkBytes: MAX_BULK, maxLineBytes: 256 });
        const frames: Array<[number, number]> = [];
        try {
          feedReplies(s, cut(garbage, sizes), frames);
          feedReplies(s, cut(FILLER, [64]), frames);
        } catch (err) {
          if (!isSidecarError(err, 'ERR_PROTOCOL')) throw err;
          assert.match(err.message, /^Protocol error: /);
          return;
        }
        assert.fail('a CRLF filler is never a valid reply: the scanner must have refused it');
      }),
      { seed: SEED, numRuns: RUNS(600) },
    );
  });
});
