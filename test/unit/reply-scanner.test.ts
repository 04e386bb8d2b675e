/**
 * The reply scanner on every RESP2 and RESP3 type. Every case is fed whole, byte by byte, and split
 * at every byte boundary, and must give the same frames (ioredis' decoder tests do the same).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAME_ATTRIBUTE,
  FRAME_PUSH,
  FRAME_REPLY,
  NEED_MORE,
  ReplyScanner,
  type ReplyScannerOptions,
} from '../../src/resp/reply-scanner.js';
import { isSidecarError } from '../../src/errors.js';

interface Frame {
  end: number; // absolute position just past the frame
  kind: number;
}

interface Outcome {
  frames: Frame[];
  error?: string;
  atBoundary: boolean;
}

function feed(chunks: readonly Buffer[], opts?: ReplyScannerOptions): Outcome {
  const s = new ReplyScanner(opts);
  const frames: Frame[] = [];
  let offset = 0;
  try {
    for (const chunk of chunks) {
      let pos = 0;
      for (let guard = 0; ; guard++) {
        assert.ok(guard <= chunk.length + 1, 'next() made no progress');
        const at = s.next(chunk, pos);
        if (at === NEED_MORE) break;
        assert.ok(at > pos && at <= chunk.length, `position ${at} out of (${pos}, ${chunk.length}]`);
        frames.push({ end: offset + at, kind: s.frameKind });
        pos = at;
      }
      offset += chunk.length;
    }
  } catch (err) {
    if (!isSidecarError(err, 'ERR_PROTOCOL')) throw err;
    return { frames, error: err.message, atBoundary: s.atBoundary };
  }
  return { frames, atBoundary: s.atBoundary };
}

function splits(input: Buffer): Array<{ how: string; chunks: Buffer[] }> {
  const out: Array<{ how: string; chunks: Buffer[] }> = [{ how: 'byte by byte', chunks: [...input].map((b) => Buffer.from([b])) }];
  for (let i = 1; i < input.length; i++) out.push({ how: `split at ${i}`, chunks: [input.subarray(0, i), input.subarray(i)] });
  return out;
}

/** Whole, byte by byte and every split give the same frames; the whole feed gives `expected`. */
function check(input: string, expected: Array<[number, number]>, error?: RegExp, opts?: ReplyScannerOptions): void {
  const bytes = Buffer.from(input, 'latin1');
  const whole = feed([bytes], opts);
  if (error === undefined) assert.equal(whole.error, undefined, 'error');
  else assert.match(whole.error ?? '(none)', error);
  assert.deepEqual(
    whole.frames.map((f) => [f.end, f.kind]),
    expected,
  );
  for (const { how, chunks } of splits(bytes)) {
    assert.deepEqual(feed(chunks, opts), whole, how);
  }
}

const R = FRAME_REPLY;
const P = FRAME_PUSH;
const A = FRAME_ATTRIBUTE;

describe('ReplyScanner: RESP2 types', () => {
  const cases: Array<[string, string]> = [
    ['simple string', '+OK\r\n'],
    ['error', '-ERR unknown command\r\n'],
    ['integer', ':-42\r\n'],
    ['bulk string', '$5\r\nhello\r\n'],
    ['empty bulk string', '$0\r\n\r\n'],
    ['binary bulk with CRLF inside', '$7\r\n\r\n+OK\r\n\r\n'],
    ['null bulk', '$-1\r\n'],
    ['null array', '*-1\r\n'],
    ['empty array', '*0\r\n'],
    ['array', '*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n'],
    ['array with nulls', '*3\r\n$-1\r\n*-1\r\n:0\r\n'],
  ];
  for (const [what, input] of cases) {
    test(`a ${what} is one reply`, () => check(input, [[input.length, R]]));
  }
});

describe('ReplyScanner: RESP3 types', () => {
  const cases: Array<[string, string]> = [
    ['null', '_\r\n'],
    ['double', ',3.14\r\n'],
    ['infinite double', ',-inf\r\n'],
    ['boolean', '#t\r\n'],
    ['big number', '(3492890328409238509324850943850943825024385\r\n'],
    ['blob error', '!21\r\nSYNTAX invalid syntax\r\n'],
    ['verbatim string', '=15\r\ntxt:Some string\r\n'],
    ['map', '%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n'],
    ['empty map', '%0\r\n'],
    ['set', '~3\r\n+a\r\n+b\r\n+c\r\n'],
    ['nested aggregate', '*2\r\n%1\r\n+k\r\n~2\r\n:1\r\n*1\r\n$1\r\nx\r\n*0\r\n'],
  ];
  for (const [what, input] of cases) {
    test(`a ${what} is one reply`, () => check(input, [[input.length, R]]));
  }

  test('a push frame is reported as a push, not a reply', () => {
    const push = '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n';
    check(push + '+OK\r\n', [
      [push.length, P],
      [push.length + 5, R],
    ]);
  });

  test('a top-level attribute is its own frame, and the reply after it is a reply', () => {
    const attr = '|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n';
    const reply = '*2\r\n:2039123\r\n:9543892\r\n';
    check(attr + reply, [
      [attr.length, A],
      [attr.length + reply.length, R],
    ]);
  });

  test('an attribute inside an aggregate is not one of its elements', () => {
    // the array has two elements; the attribute before the first does not count
    const input = '*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n';
    check(input + ':3\r\n', [
      [input.length, R],
      [input.length + 4, R],
    ]);
    check('*1\r\n|0\r\n:1\r\n', [[12, R]]); // an empty nested attribute counts as nothing too
    check('|0\r\n:1\r\n', [
      [4, A],
      [8, R],
    ]);
  });

  test('a push nested in an array is just an element', () => {
    check('*1\r\n>1\r\n+a\r\n', [[12, R]]);
  });
});

describe('ReplyScanner: sequences and state', () => {
  test('many pipelined replies are found one by one', () => {
    const replies = ['+OK\r\n', ':1\r\n', '$-1\r\n', '*2\r\n$1\r\na\r\n$1\r\nb\r\n', '-ERR x\r\n', '_\r\n'];
    let at = 0;
    check(
      replies.join(''),
      replies.map((r) => [(at += r.length), R]),
    );
  });

  test('atBoundary is true only between top-level frames', () => {
    const s = new ReplyScanner();
    assert.equal(s.atBoundary, true);
    assert.equal(s.next(Buffer.from('*2\r\n:1\r\n'), 0), NEED_MORE);
    assert.equal(s.atBoundary, false);
    assert.equal(s.next(Buffer.from(':2\r\n+O'), 0), 4);
    assert.equal(s.atBoundary, true);
    assert.equal(s.next(Buffer.from(':2\r\n+O'), 4), NEED_MORE);
    assert.equal(s.atBoundary, false);
    assert.equal(s.next(Buffer.from('K\r\n'), 0), 3);
    assert.equal(s.atBoundary, true);
    assert.equal(s.bytesScanned, 8 + 6 + 3);
  });

  test('a 64 MiB bulk fed in 64 KiB chunks completes once, at its end', () => {
    const size = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x2a);
    const s = new ReplyScanner();
    const started = process.hrtime.bigint();
    assert.equal(s.next(Buffer.from(`$${size}\r\n`), 0), NEED_MORE);
    for (let i = 0; i < size / chunk.length; i++) assert.equal(s.next(chunk, 0), NEED_MORE);
    const tail = Buffer.from('\r\n+OK\r\n');
    assert.equal(s.next(tail, 0), 2);
    assert.equal(s.next(tail, 2), 7);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(ms < 2000, `took ${ms} ms`); // about a millisecond
  });

  test('nesting has no limit: 100,000 levels are one frame, and the scanner keeps going', () => {
    const depth = 100_000;
    const bytes = Buffer.from('*1\r\n'.repeat(depth) + ':1\r\n+OK\r\n');
    const whole = feed([bytes]);
    assert.equal(whole.error, undefined);
    assert.deepEqual(
      whole.frames.map((f) => [f.end, f.kind]),
      [
        [depth * 4 + 4, R],
        [depth * 4 + 9, R],
      ],
    );
    const cut = 4096;
    assert.deepEqual(
      feed([bytes.subarray(0, cut), bytes.subarray(cut)]).frames.map((f) => f.end),
      [depth * 4 + 4, depth * 4 + 9],
    );
  });
});

describe('ReplyScanner: protocol errors', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown type byte', '?\r\n', /unknown reply type byte '\?'/],
    ['unknown type byte after a good frame', '+OK\r\nhello\r\n', /unknown reply type byte 'h'/],
    ['bare CRLF', '\r\n', /unknown reply type byte 0x0d/],
    ['NUL type byte', '\0', /unknown reply type byte 0x00/],
    ['bulk length with letters', '$abc\r\n', /bad length/],
    ['empty bulk length', '$\r\n', /no digits/],
    ['bulk length -2', '$-2\r\n', /bad length -2/],
    ['array count -2', '*-2\r\n', /bad length -2/],
    ['map count -1', '%-1\r\n', /bad length -1/],
    ['blob error length -1', '!-1\r\n', /bad length -1/],
    ['negative length with more digits', '$-12\r\n', /only -1/],
    ['streamed bulk', '$?\r\n;4\r\nHell\r\n;0\r\n', /bad length/],
    ['streamed array', '*?\r\n:1\r\n.\r\n', /bad length/],
    ['length with too many digits', '$1234567890123456\r\n', /too many digits/],
    ['CR without LF in a line', '+OK\rX', /expected LF after CR/],
    ['CR without LF after a length', '$1\rX', /expected LF after CR/],
    ['payload without its CRLF', '$3\r\nabcd\r\n', /expected CRLF after a 3-byte payload/],
    ['payload with CR but no LF', '$3\r\nabc\rX', /expected LF after CR/],
    ['garbage inside an aggregate', '*2\r\n:1\r\nX', /unknown reply type byte 'X'/],
  ];
  for (const [what, input, message] of cases) {
    test(`${what} is a protocol error`, () => {
      const bytes = Buffer.from(input, 'latin1');
      const whole = feed([bytes]);
      assert.match(whole.error ?? '(no error)', message);
      assert.match(whole.error!, /^Protocol error: /);
      for (const { how, chunks } of splits(bytes)) assert.equal(feed(chunks).error, whole.error, how);
    });
  }

  test('a line longer than 64 KiB without CRLF is a protocol error, not a wait', () => {
    assert.equal(feed([Buffer.from('+' + 'a'.repeat(64 * 1024))]).error, undefined);
    assert.match(feed([Buffer.from('-' + 'a'.repeat(64 * 1024 + 1))]).error ?? '', /longer than 65536 bytes/);
    const chunks = [Buffer.from('+'), ...Array.from({ length: 65 }, () => Buffer.alloc(1024, 0x61))];
    assert.match(feed(chunks).error ?? '', /longer than 65536 bytes/);
    assert.equal(feed([Buffer.from('+' + 'a'.repeat(100) + '\r\n')], { maxLineBytes: 100 }).error, undefined);
  });

  test('a bulk over maxBulkBytes is a protocol error', () => {
    assert.equal(feed([Buffer.from('$100\r\n')], { maxBulkBytes: 100 }).error, undefined);
    assert.match(feed([Buffer.from('$101\r\n')], { maxBulkBytes: 100 }).error ?? '', /over the 100-byte limit/);
  });

  test('after a protocol error the scanner stays dead and throws the same error', () => {
    const s = new ReplyScanner();
    assert.throws(() => s.next(Buffer.from('X'), 0), /unknown reply type/);
    assert.throws(() => s.next(Buffer.from('+OK\r\n'), 0), /unknown reply type/);
  });
});
