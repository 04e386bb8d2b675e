/**
 * The request scanner against Redis 7's framing. Every case is fed whole, byte by byte, and split at
 * every byte boundary, and must give the same events (ioredis' decoder tests do the same). Expected
 * values come from redis-server 7.0.15's behaviour (see the comments of src/resp/request-scanner.ts).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Cmd, CommandTable, EMPTY_COMMAND_ID } from '../../src/resp/command-table.js';
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
import { isSidecarError } from '../../src/errors.js';

const table = new CommandTable(['flushall', 'debug', 'shutdown']);
const LIMITS: RequestScannerLimits = { maxBulkBytes: 512 * 1024 * 1024, maxInlineBytes: 64 * 1024 };

function scanner(limits: RequestScannerLimits = LIMITS): RequestScanner {
  return new RequestScanner(table, limits);
}

interface Event {
  ev: number;
  at: number; // absolute position in the stream
  start: number; // absolute start of the command, or -1 when reported as "began in an earlier buf"
  chunkOffset: number; // absolute offset of the buf the event was returned in
  id: number;
  argc: number;
  clientReply: number;
  helloVersion: number;
  blockArg: boolean;
}

interface Outcome {
  events: Event[];
  error?: string;
}

/** Feeds chunks in order, calling next() until NEED_MORE on each, as the session does. */
function feed(s: RequestScanner, chunks: readonly Buffer[]): Outcome {
  const events: Event[] = [];
  let offset = 0;
  try {
    for (const chunk of chunks) {
      let pos = 0;
      for (let guard = 0; ; guard++) {
        assert.ok(guard <= 2 * chunk.length + 2, 'next() made no progress');
        const at = s.next(chunk, pos);
        if (at === NEED_MORE) break;
        assert.ok(at >= pos && at <= chunk.length, `position ${at} out of [${pos}, ${chunk.length}]`);
        if (at === pos) assert.equal(s.event, EV_END, 'only an EV_END may repeat the previous position');
        events.push({
          ev: s.event,
          at: offset + at,
          start: s.commandStart >= 0 ? offset + s.commandStart : -1,
          chunkOffset: offset,
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
  } catch (err) {
    if (!isSidecarError(err, 'ERR_PROTOCOL')) throw err;
    return { events, error: err.message };
  }
  return { events };
}

function splits(input: Buffer): Array<{ how: string; chunks: Buffer[] }> {
  const out = [{ how: 'whole', chunks: [input] }];
  out.push({ how: 'byte by byte', chunks: [...input].map((b) => Buffer.from([b])) });
  for (let i = 1; i < input.length; i++) {
    out.push({ how: `split at ${i}`, chunks: [input.subarray(0, i), input.subarray(i)] });
  }
  return out;
}

/** Same events and error whatever the chunking; commandStart is -1 exactly when the command began before the chunk. */
function assertSameAsWhole(whole: Outcome, other: Outcome, how: string): void {
  assert.equal(other.error, whole.error, `${how}: error`);
  assert.equal(other.events.length, whole.events.length, `${how}: number of events`);
  whole.events.forEach((w, i) => {
    const o = other.events[i]!;
    const { start: ws, chunkOffset: _wc, ...wRest } = w;
    const { start: os, chunkOffset: oc, ...oRest } = o;
    assert.deepEqual(oRest, wRest, `${how}: event ${i}`);
    if (os === -1) assert.ok(ws < oc, `${how}: event ${i} says the command began in an earlier buf, but it began at ${ws}`);
    else assert.equal(os, ws, `${how}: event ${i} commandStart`);
  });
}

interface Expected {
  name?: string; // table name ('' for unknown and empty)
  kind?: number;
  argc?: number;
  start?: number;
  nameAt?: number;
  endAt?: number;
  clientReply?: number;
  helloVersion?: number;
  blockArg?: boolean;
}

/** Pairs EV_NAME/EV_END into commands, asserting their order. */
function commands(out: Outcome): Array<Required<Expected> & { id: number }> {
  const cmds: Array<Required<Expected> & { id: number }> = [];
  for (let i = 0; i < out.events.length; i += 2) {
    const n = out.events[i]!;
    const e = out.events[i + 1];
    assert.equal(n.ev, EV_NAME, `event ${i} is EV_NAME`);
    assert.ok(e !== undefined, `EV_END after event ${i}`);
    assert.equal(e.ev, EV_END, `event ${i + 1} is EV_END`);
    assert.equal(e.id, n.id, 'commandId is stable from EV_NAME to EV_END');
    cmds.push({
      id: n.id,
      name: table.name(n.id),
      kind: table.kind(n.id),
      argc: e.argc,
      start: n.start,
      nameAt: n.at,
      endAt: e.at,
      clientReply: e.clientReply,
      helloVersion: e.helloVersion,
      blockArg: e.blockArg,
    });
  }
  return cmds;
}

/** Runs a case in every chunking and checks the whole-feed result against the expectation. */
function check(input: string | Buffer, expected: Expected[], error?: string, limits?: RequestScannerLimits): Outcome {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const whole = feed(scanner(limits), [bytes]);
  assert.equal(whole.error, error, 'error');
  const cmds = commands(whole.events.length % 2 === 1 ? { events: whole.events.slice(0, -1) } : whole);
  assert.equal(cmds.length, expected.length, `number of commands: ${JSON.stringify(cmds.map((c) => c.name))}`);
  expected.forEach((exp, i) => {
    const got = cmds[i]!;
    for (const key of Object.keys(exp) as Array<keyof Expected>) {
      assert.deepEqual(got[key], exp[key], `command ${i} ${key}`);
    }
  });
  for (const { how, chunks } of splits(bytes).slice(1)) assertSameAsWhole(whole, feed(scanner(limits), chunks), how);
  return whole;
}

function set(key: string, value: string): string {
  return `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
}

function array(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('');
}

describe('RequestScanner: RESP arrays', () => {
  test('a SET is one command: EV_NAME right after the name, EV_END at its last byte', () => {
    const input = set('k', 'v');
    check(input, [{ name: '', kind: Cmd.OTHER, argc: 3, start: 0, nameAt: 13, endAt: input.length }]);
  });

  test('a command that is only its name gives EV_NAME and EV_END at the same position', () => {
    check('*1\r\n$4\r\nPING\r\n', [{ name: 'ping', argc: 1, nameAt: 14, endAt: 14 }]);
  });

  test('empty and binary arguments are framed by length, whatever bytes they hold', () => {
    const value = '\r\n*1\r\n$4\r\nPING\r\n\0\n';
    check(array('SET', '', value) + array('ECHO', ''), [{ argc: 3, endAt: array('SET', '', value).length }, { argc: 2 }]);
  });

  test('a pipeline of many commands in one buffer gives one EV_NAME/EV_END pair each, in order', () => {
    const parts = [set('a', '1'), array('MULTI'), set('b', '2'), array('EXEC'), array('GET', 'a'), 'PING\r\n'];
    let at = 0;
    const expected: Expected[] = parts.map((p) => {
      const e = { start: at, endAt: at + p.length };
      at += p.length;
      return e;
    });
    const out = check(parts.join(''), expected);
    assert.deepEqual(
      commands(out).map((c) => c.name),
      ['', 'multi', '', 'exec', '', 'ping'],
    );
  });

  test('a thousand pipelined commands are all found when fed whole and in 7-byte pieces', () => {
    const one = set('key:1', 'value');
    const input = Buffer.from(one.repeat(1000), 'latin1');
    const whole = feed(scanner(), [input]);
    assert.equal(whole.events.length, 2000);
    const pieces: Buffer[] = [];
    for (let i = 0; i < input.length; i += 7) pieces.push(input.subarray(i, i + 7));
    assertSameAsWhole(whole, feed(scanner(), pieces), '7-byte pieces');
  });

  test("the byte after a header line's CR is skipped unread, as Redis does", () => {
    // "*1\rX" is a count of 1 for redis-server 7.0.15, which then answers the PING
    check('*1\rX$4\r\nPING\r\n', [{ name: 'ping', argc: 1, endAt: 14 }]);
    check('*1\r\n$4\rXPING\r\n', [{ name: 'ping', argc: 1, endAt: 14 }]);
  });

  test('the two bytes after a bulk payload are skipped unread, as Redis does', () => {
    check('*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n', [
      { name: 'ping', endAt: 14 },
      { name: 'ping', start: 14, endAt: 28 },
    ]);
  });
});

describe('RequestScanner: inline commands', () => {
  test('a line ending in CRLF is one command', () => {
    check('PING\r\n', [{ name: 'ping', argc: 1, start: 0, nameAt: 6, endAt: 6 }]);
  });

  test('a bare LF ends a line too', () => {
    check('PING\nPING\r\n', [
      { name: 'ping', endAt: 5 },
      { name: 'ping', endAt: 11, start: 5 },
    ]);
  });

  test('arguments split on spaces and tabs, and a CR inside the line separates too', () => {
    check('  SET\tkey   value \r\n', [{ argc: 3 }]);
    check('ECHO a\rb\r\n', [{ argc: 3 }]); // redis-server: wrong number of arguments for 'echo'
    check('ECHO a\r\r\n', [{ argc: 2 }]); // only the CR right before LF is stripped
  });

  test('vertical tab and form feed are blanks between arguments but bytes inside one', () => {
    check('\x0bECHO a\x0bb\r\n', [{ name: '', argc: 2 }]);
    check('\x0cPING\x0c\r\n', [{ name: '', argc: 1 }]); // "ping\f" is not "ping"
  });

  test('quoted arguments follow sdssplitargs: escapes, hex, single quotes, empty strings', () => {
    check('"PING"\r\n', [{ name: 'ping', argc: 1 }]);
    check('"\\x50\\x49NG"\r\n', [{ name: 'ping', argc: 1 }]);
    check("'pi''ng'\r\n", [], 'Protocol error: unbalanced quotes in request');
    check('ECHO "a\\"b" \'c\\\'d\' "" \'\'\r\n', [{ argc: 5 }]);
    check('ECHO "a\rb"\r\n', [{ argc: 2 }]); // a CR inside quotes is a byte of the argument
    check('ECHO "\\x4"\r\n', [{ argc: 2 }]); // "\x4" is not hex: an escaped x, then 4
    check('ECHO a"b c"\r\n', [{ argc: 2 }]); // a quote may open inside a word
  });

  test('a line that splits into no arguments is an EMPTY command, with no reply expected', () => {
    check('\r\n\n   \r\n\t\n""\r\n', [
      { name: '', kind: Cmd.EMPTY, argc: 0, endAt: 2 },
      { kind: Cmd.EMPTY, endAt: 3 },
      { kind: Cmd.EMPTY, endAt: 8 },
      { kind: Cmd.EMPTY, endAt: 10 },
      { kind: Cmd.OTHER, argc: 1, endAt: 14 }, // "" is one (empty) argument
    ]);
  });

  test('inline and array commands interleave freely', () => {
    check('PING\r\n*1\r\n$4\r\nPING\r\nPING\n', [
      { start: 0, endAt: 6 },
      { start: 6, endAt: 20 },
      { start: 20, endAt: 25 },
    ]);
  });
});

describe('RequestScanner: empty commands', () => {
  test('*0 and negative counts are consumed as EMPTY commands', () => {
    const out = check('*0\r\n*-1\r\n*-5\r\n*-9223372036854775808\r\nPING\r\n', [
      { kind: Cmd.EMPTY, argc: 0, start: 0, nameAt: 4, endAt: 4 },
      { kind: Cmd.EMPTY, start: 4, endAt: 9 },
      { kind: Cmd.EMPTY, start: 9, endAt: 14 },
      { kind: Cmd.EMPTY, start: 14, endAt: 37 },
      { name: 'ping', start: 37 },
    ]);
    assert.equal(commands(out)[0]!.id, EMPTY_COMMAND_ID);
  });
});

describe('RequestScanner: classification', () => {
  test('names are matched case-insensitively, in arrays and inline', () => {
    check(array('pInG') + array('MuLtI') + 'eXeC\r\n' + array('SUBSCRIBE', 'ch'), [
      { name: 'ping', kind: Cmd.PING },
      { name: 'multi', kind: Cmd.MULTI },
      { name: 'exec', kind: Cmd.EXEC },
      { name: 'subscribe', kind: Cmd.SUBSCRIBE, argc: 2 },
    ]);
  });

  test('unknown names are OTHER, and names longer than any known are OTHER before their payload is read', () => {
    const long = 'X'.repeat(40);
    const input = array('GET', 'k') + array(long, 'a') + `${long} a\r\n`;
    check(input, [
      { name: '', kind: Cmd.OTHER, argc: 2 },
      // EV_NAME right after the "$40\r\n" header, before the 40-byte payload
      { name: '', kind: Cmd.OTHER, argc: 2, nameAt: array('GET', 'k').length + 4 + 5 },
      { name: '', kind: Cmd.OTHER, argc: 2 },
    ]);
  });

  test('denied names are classified with their own ids, known ones keeping their kind', () => {
    const out = check(array('FLUSHALL') + 'debug sleep 0\r\n' + array('shutdown', 'NOSAVE') + array('flushdb'), [
      { name: 'flushall', kind: Cmd.OTHER },
      { name: 'debug', argc: 3 },
      { name: 'shutdown', kind: Cmd.SHUTDOWN },
      { name: '' },
    ]);
    assert.deepEqual(
      commands(out).map((c) => table.isDenied(c.id)),
      [true, true, true, false],
    );
  });

  test('CLIENT REPLY OFF/ON/SKIP is recognised in any case, in arrays and inline', () => {
    check(array('CLIENT', 'REPLY', 'OFF') + array('client', 'reply', 'on') + 'Client Reply Skip\r\n' + 'CLIENT "reply" \'off\'\r\n', [
      { kind: Cmd.CLIENT, argc: 3, clientReply: REPLY_OFF },
      { kind: Cmd.CLIENT, clientReply: REPLY_ON },
      { kind: Cmd.CLIENT, clientReply: REPLY_SKIP },
      { kind: Cmd.CLIENT, clientReply: REPLY_OFF },
    ]);
  });

  test('CLIENT REPLY with the wrong argument count or value, and other CLIENT commands, are not REPLY changes', () => {
    // redis-server 7.0.15 answers an error to "CLIENT REPLY OFF x": the reply mode does not change
    check(
      array('CLIENT', 'REPLY', 'OFF', 'x') +
        array('CLIENT', 'REPLY') +
        array('CLIENT', 'REPLY', 'OF') +
        array('CLIENT', 'SETNAME', 'off') +
        array('CLIENT', 'REPLYX', 'off') +
        array('PING', 'REPLY', 'OFF'),
      [{ clientReply: 0, argc: 4 }, { clientReply: 0 }, { clientReply: 0 }, { clientReply: 0 }, { clientReply: 0 }, { clientReply: 0 }],
    );
  });

  test('HELLO 2 and HELLO 3 report the protocol version; anything else reports 0', () => {
    check(array('HELLO', '3') + 'hello 2 AUTH u p\r\n' + array('HELLO') + array('HELLO', '03') + array('HELLO', '4') + array('PING', '3'), [
      { kind: Cmd.HELLO, helloVersion: 3 },
      { kind: Cmd.HELLO, helloVersion: 2, argc: 5 },
      { helloVersion: 0 },
      { helloVersion: 0 },
      { helloVersion: 0 },
      { helloVersion: 0 },
    ]);
  });

  test('XREAD and XREADGROUP report BLOCK when it is an option before a well-formed STREAMS list', () => {
    check(
      array('XREAD', 'BLOCK', '0', 'STREAMS', 's', '$') +
        'xread count 1 block 100 streams a b 0 0\r\n' +
        array('XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', '10', 'NOACK', 'STREAMS', 's', '>') +
        array('XREAD', 'COUNT', '1', 'STREAMS', 's', '0') +
        array('XREAD', 'STREAMS', 'block', '0') + // a key named "block"
        array('XREADGROUP', 'GROUP', 'block', 'c', 'STREAMS', 's', '>') + // a group named "block"
        array('XREAD', 'BLOCK', '0', 'STREAMS', 's') + // unbalanced streams: an error, not a block
        array('XREAD', 'BLOCK', '0', 'NOACK', 'STREAMS', 's', '0') + // NOACK is XREADGROUP's only
        array('XREAD', 'BLOCK') +
        array('BLPOP', 'BLOCK', '0'),
      [
        { kind: Cmd.XREAD, blockArg: true },
        { kind: Cmd.XREAD, blockArg: true },
        { kind: Cmd.XREAD, name: 'xreadgroup', blockArg: true },
        { blockArg: false },
        { blockArg: false },
        { blockArg: false },
        { blockArg: false },
        { blockArg: false },
        { blockArg: false },
        { kind: Cmd.BLOCKING, blockArg: false },
      ],
    );
  });

  test('a name split across chunks is still classified', () => {
    const input = Buffer.from(array('SUBSCRIBE', 'news'), 'latin1');
    for (let i = 1; i < input.length; i++) {
      const out = feed(scanner(), [input.subarray(0, i), input.subarray(i)]);
      assert.equal(table.name(out.events[0]!.id), 'subscribe', `split at ${i}`);
    }
  });
});

describe('RequestScanner: positions', () => {
  test('commandStart is the index in the current buf, or -1 when the command began in an earlier one', () => {
    const s = scanner();
    const a = Buffer.from('PING\r\n*2\r\n$4\r\nEC', 'latin1');
    const b = Buffer.from('HO\r\n$1\r\nx\r\nPING\r\n', 'latin1');
    assert.equal(s.next(a, 0), 6);
    assert.equal(s.commandStart, 0);
    assert.equal(s.next(a, 6), 6);
    assert.equal(s.event, EV_END);
    assert.equal(s.next(a, 6), NEED_MORE);
    assert.equal(s.commandStart, -1);
    assert.equal(s.atBoundary, false);
    assert.equal(s.next(b, 0), 4);
    assert.equal(s.event, EV_NAME);
    assert.equal(s.commandStart, -1);
    assert.equal(table.name(s.commandId), '');
    assert.equal(s.next(b, 4), 11);
    assert.equal(s.event, EV_END);
    assert.equal(s.commandStart, -1);
    assert.equal(s.atBoundary, true);
    assert.equal(s.next(b, 11), 17);
    assert.equal(s.commandStart, 11);
    assert.equal(s.next(b, 17), 17);
    assert.equal(s.event, EV_END);
    assert.equal(s.next(b, 17), NEED_MORE);
    assert.equal(s.atBoundary, true);
    assert.equal(s.bytesScanned, a.length + b.length);
  });

  test('EV_END of a one-argument command is collected by calling again at the same position', () => {
    const s = scanner();
    const buf = Buffer.from('*1\r\n$4\r\nPING\r\n', 'latin1');
    assert.equal(s.next(buf, 0), buf.length);
    assert.equal(s.event, EV_NAME);
    assert.equal(s.atBoundary, false);
    assert.equal(s.next(buf, buf.length), buf.length);
    assert.equal(s.event, EV_END);
    assert.equal(s.argc, 1);
    assert.equal(s.atBoundary, true);
    assert.equal(s.next(buf, buf.length), NEED_MORE);
  });
});

describe('RequestScanner: protocol errors, worded as redis-server 7.0.15 words them', () => {
  const cases: Array<[string, string]> = [
    ['*abc\r\n', 'Protocol error: invalid multibulk length'],
    ['*\r\n', 'Protocol error: invalid multibulk length'],
    ['*01\r\n', 'Protocol error: invalid multibulk length'],
    ['*+1\r\n', 'Protocol error: invalid multibulk length'],
    ['*-0\r\n', 'Protocol error: invalid multibulk length'],
    ['*-\r\n', 'Protocol error: invalid multibulk length'],
    ['*1 \r\n', 'Protocol error: invalid multibulk length'],
    ['*2147483648\r\n', 'Protocol error: invalid multibulk length'],
    ['*9223372036854775807\r\n', 'Protocol error: invalid multibulk length'],
    ['*99999999999999999999\r\n', 'Protocol error: invalid multibulk length'],
    ['*-9223372036854775809\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\nX4\r\nPING\r\n', "Protocol error: expected '$', got 'X'"],
    ['*1\r\n\r\n', "Protocol error: expected '$', got ' '"],
    ['*1\r\n\n\r\n', "Protocol error: expected '$', got ' '"],
    ['*2\r\n$4\r\nECHO\r\n:1\r\n', "Protocol error: expected '$', got ':'"],
    ['*1\r\n$-1\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$04\r\nPING\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$4x\r\nPING\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$600000000\r\n', 'Protocol error: invalid bulk length'],
    ['ECHO "abc\r\n', 'Protocol error: unbalanced quotes in request'],
    ["ECHO 'abc\r\n", 'Protocol error: unbalanced quotes in request'],
    ['ECHO "a"b\r\n', 'Protocol error: unbalanced quotes in request'],
    ['ECHO a"b c"d\r\n', 'Protocol error: unbalanced quotes in request'],
    ['ECHO "a\\\r\n', 'Protocol error: unbalanced quotes in request'],
    ['ECHO "\\x4\r\n', 'Protocol error: unbalanced quotes in request'],
    ["ECHO 'a\\'\r\n", 'Protocol error: unbalanced quotes in request'],
  ];
  for (const [input, message] of cases) {
    test(`${JSON.stringify(input)} is refused with "${message}"`, () => {
      check(input, [], message);
    });
  }

  test('commands before the malformed one are still reported', () => {
    check('PING\r\n*1\r\n$-2\r\n', [{ name: 'ping' }], 'Protocol error: invalid bulk length');
  });

  test('after a protocol error the scanner stays dead and throws the same error', () => {
    const s = scanner();
    assert.throws(() => s.next(Buffer.from('*x\r\n'), 0), /invalid multibulk length/);
    assert.throws(() => s.next(Buffer.from('PING\r\n'), 0), /invalid multibulk length/);
  });

  test('an incomplete but valid-so-far header waits instead of failing', () => {
    // redis-server waits for the CR before judging the '$'; and for the byte after the CR
    for (const input of ['*1\r\nX4', '*1\r\n$4\r', '*2\r', '*abc', 'ECHO "abc']) {
      const out = feed(scanner(), [Buffer.from(input, 'latin1')]);
      assert.deepEqual(out, { events: [] }, input);
    }
  });

  test("counts over 10 and bulks over 16384 pass (the unauthenticated limits are the backend's to apply)", () => {
    assert.equal(feed(scanner(), [Buffer.from('*11\r\n' + '$1\r\nx\r\n'.repeat(11))]).error, undefined);
    assert.equal(feed(scanner(), [Buffer.from(array('SET', 'k', 'x'.repeat(16385)), 'latin1')]).error, undefined);
  });
});

describe('RequestScanner: limits', () => {
  const small: RequestScannerLimits = { maxBulkBytes: 100, maxInlineBytes: 64 * 1024 };

  test('maxBulkBytes is the largest bulk accepted', () => {
    check(array('SET', 'k', 'v'.repeat(100)), [{ argc: 3 }], undefined, small);
    check(array('SET', 'k', 'v'.repeat(101)), [], 'Protocol error: invalid bulk length', small);
  });

  test('an inline line over maxInlineBytes with no LF is "too big inline request"', () => {
    assert.equal(feed(scanner(), [Buffer.alloc(64 * 1024, 0x41)]).error, undefined);
    for (const chunks of [[Buffer.alloc(64 * 1024 + 1, 0x41)], [Buffer.alloc(64 * 1024, 0x41), Buffer.from('A')]]) {
      assert.equal(feed(scanner(), chunks).error, 'Protocol error: too big inline request');
    }
  });

  test('a count line over 64 KiB with no CR is "too big mbulk count string"', () => {
    const line = Buffer.from('*' + '1'.repeat(64 * 1024 - 1), 'latin1');
    assert.equal(feed(scanner(), [line]).error, undefined);
    assert.equal(feed(scanner(), [line, Buffer.from('1')]).error, 'Protocol error: too big mbulk count string');
  });

  test('a bulk length line over 64 KiB with no CR is "too big bulk count string", even without a $', () => {
    const head = Buffer.from('*2\r\n$4\r\nECHO\r\n', 'latin1');
    assert.equal(
      feed(scanner(), [head, Buffer.from('$' + '1'.repeat(64 * 1024), 'latin1')]).error,
      'Protocol error: too big bulk count string',
    );
    assert.equal(feed(scanner(), [head, Buffer.alloc(70_000, 0x58)]).error, 'Protocol error: too big bulk count string');
  });

  test('limits are judged when a chunk is used up, as Redis judges them after a read', () => {
    // redis-server 7.0.15 answers a 70000-byte inline ECHO sent in one write: the LF was in the buffer
    const line = Buffer.from(`ECHO ${'a'.repeat(70_000)}\r\n`, 'latin1');
    const whole = feed(scanner(), [line]);
    assert.equal(whole.error, undefined);
    assert.equal(whole.events.length, 2);
    // ... and refuses it when more than 64 KiB arrived with no LF yet
    assert.equal(feed(scanner(), [line.subarray(0, 65_537), line.subarray(65_537)]).error, 'Protocol error: too big inline request');
  });

  test('a NUL byte before the terminator makes the line endless, as strchr() does in Redis', () => {
    // redis-server 7.0.15 never answers "PING\0\r\n" and refuses it once 64 KiB are buffered
    const out = feed(scanner(), [Buffer.from('PING\0\r\nPING\r\n*1\r\n$4\r\nPING\r\n', 'latin1')]);
    assert.deepEqual(out, { events: [] });
    const filler = Buffer.alloc(64 * 1024, 0x0a);
    assert.equal(feed(scanner(), [Buffer.from('PING\0\r\n'), filler]).error, 'Protocol error: too big inline request');
    assert.equal(feed(scanner(), [Buffer.from('*1\0\r\n'), filler]).error, 'Protocol error: too big mbulk count string');
    assert.equal(feed(scanner(), [Buffer.from('*1\r\n$4\0\r\n'), filler]).error, 'Protocol error: too big bulk count string');
    assert.equal(feed(scanner(), [Buffer.from('*1\r\n\0'), filler]).error, 'Protocol error: too big bulk count string');
    // a NUL inside a bulk payload is just a byte
    check(array('ECHO', 'a\0b'), [{ argc: 2 }]);
  });
});

describe('RequestScanner: big values', () => {
  const MiB = 1024 * 1024;

  /** A Buffer whose indexed reads are counted: the scanner must not read bulk payload bytes. */
  function counted(buf: Buffer, counter: { reads: number }): Buffer {
    return new Proxy(buf, {
      get(target, prop) {
        if (typeof prop === 'string' && prop.length > 0 && prop.charCodeAt(0) >= 0x30 && prop.charCodeAt(0) <= 0x39) counter.reads++;
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  function bigValueChunks(prefix: string, size: number, counter: { reads: number }, suffix = '*1\r\n$4\r\nPING\r\n'): Buffer[] {
    const chunk = Buffer.alloc(64 * 1024, 0x2a); // '*' everywhere: any byte read would look like framing
    const chunks: Buffer[] = [Buffer.from(`${prefix}$${size}\r\n`, 'latin1')];
    for (let left = size; left > 0; left -= chunk.length) chunks.push(counted(chunk.subarray(0, Math.min(left, chunk.length)), counter));
    chunks.push(Buffer.from(`\r\n${suffix}`, 'latin1'));
    return chunks;
  }

  test('a 64 MiB value fed in 64 KiB chunks is skipped by count: none of its bytes is read', () => {
    const counter = { reads: 0 };
    const s = scanner();
    const started = process.hrtime.bigint();
    const out = feed(s, bigValueChunks('*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n', 64 * MiB, counter));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(out.error, undefined);
    assert.equal(counter.reads, 0);
    assert.equal(out.events.length, 4);
    assert.equal(out.events[1]!.argc, 3);
    assert.equal(table.name(out.events[2]!.id), 'ping');
    assert.ok(s.bytesSkipped >= 64 * MiB, `bytesSkipped ${s.bytesSkipped}`);
    assert.ok(ms < 2000, `took ${ms} ms`); // about a millisecond: 1024 chunks, a few operations each
  });

  test('a huge first argument is classified OTHER at its header and never read', () => {
    const counter = { reads: 0 };
    const s = scanner();
    const out = feed(s, bigValueChunks('*2\r\n', 8 * MiB, counter, '$1\r\nx\r\n'));
    assert.equal(out.events.length, 2);
    assert.equal(out.error, undefined);
    assert.equal(counter.reads, 0);
    assert.equal(out.events[0]!.ev, EV_NAME);
    assert.equal(out.events[0]!.at, '*2\r\n$8388608\r\n'.length);
    assert.equal(out.events[0]!.id, 0);
  });

  test('arguments of CLIENT are captured only up to 16 bytes', () => {
    const counter = { reads: 0 };
    const out = feed(scanner(), bigValueChunks('*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n', 4 * MiB, counter));
    assert.equal(out.error, undefined);
    assert.ok(counter.reads <= 16, `${counter.reads} reads`);
    assert.equal(out.events[1]!.clientReply, 0);
  });
});
