/**
 * The session model (src/proxy/accounting.ts) as a table: commands forwarded, frames arriving,
 * and what is owed after each step. The expected frames are those redis-server 7.0.15 sends (the
 * differential fuzzer in test/integration/session-fuzz.test.ts checks the same against the server).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SessionAccounting,
  FRAME_NOT_OWED,
  FRAME_OWED,
  FRAME_REFUSAL,
  SUB_CHANNEL,
  SUB_PATTERN,
  SUB_SHARD,
  type CommandArgs,
} from '../../src/proxy/accounting.js';
import { Cmd, type CmdKind } from '../../src/resp/command-table.js';
import { PUBSUB_MESSAGE, PUBSUB_OTHER, PUBSUB_SUBSCRIBED, PUBSUB_UNSUBSCRIBED } from '../../src/proxy/pubsub-frames.js';
import { FRAME_ATTRIBUTE, FRAME_PUSH, FRAME_REPLY } from '../../src/resp/reply-scanner.js';
import { RESP_TYPES } from '../../src/resp/resp-types.js';

const REPLY = FRAME_REPLY;
const PUSH = FRAME_PUSH;
const ATTR = FRAME_ATTRIBUTE;
const PLUS = RESP_TYPES.SIMPLE_STRING;
const MINUS = RESP_TYPES.ERROR;
const STAR = RESP_TYPES.ARRAY;
const GT = RESP_TYPES.PUSH;

type Step =
  | ['plain', number?]
  | ['cmd', CmdKind, Partial<CommandArgs>?]
  | ['refused']
  | ['reply', number?] // a reply frame (first byte; '+' by default)
  | ['push']
  | ['attr']
  | ['conf', 'sub' | 'unsub', number, number, number?] // confirmation: kind (SUB_*), count, frame kind
  | ['message', number?];

interface Row {
  name: string;
  steps: Step[];
  /** Verdicts of the frame steps, in order. */
  verdicts?: number[];
  owed: number;
  check?: (m: SessionAccounting) => void;
}

const ON = { clientReply: 1, argc: 3 };
const OFF = { clientReply: 2, argc: 3 };
const SKIP = { clientReply: 3, argc: 3 };
const O = FRAME_OWED;
const N = FRAME_NOT_OWED;

const rows: Row[] = [
  { name: 'a plain command owes one reply until it arrives', steps: [['plain'], ['plain'], ['reply']], verdicts: [O], owed: 1 },
  {
    name: 'CLIENT REPLY OFF silences the commands after it, the refusal stand-in included',
    steps: [['cmd', Cmd.CLIENT, OFF], ['plain', 3], ['refused']],
    owed: 0,
  },
  { name: 'CLIENT REPLY ON always answers +OK', steps: [['cmd', Cmd.CLIENT, OFF], ['cmd', Cmd.CLIENT, ON], ['plain']], owed: 2 },
  { name: 'CLIENT REPLY SKIP silences exactly the next command', steps: [['cmd', Cmd.CLIENT, SKIP], ['plain'], ['plain']], owed: 1 },
  {
    name: 'an empty command (*0, a blank line) uses up a SKIP',
    steps: [['cmd', Cmd.CLIENT, SKIP], ['cmd', Cmd.EMPTY], ['plain']],
    owed: 1,
  },
  {
    name: 'SKIP after SKIP skips the next again',
    steps: [['cmd', Cmd.CLIENT, SKIP], ['cmd', Cmd.CLIENT, SKIP], ['plain'], ['plain']],
    owed: 1,
  },
  {
    name: 'SKIP under OFF does nothing; ON then answers',
    steps: [['cmd', Cmd.CLIENT, OFF], ['cmd', Cmd.CLIENT, SKIP], ['cmd', Cmd.CLIENT, ON], ['plain']],
    owed: 2,
  },
  { name: 'a bad CLIENT REPLY argument is one error reply', steps: [['cmd', Cmd.CLIENT, { clientReply: 0, argc: 3 }]], owed: 1 },
  {
    name: 'SUBSCRIBE a b owes two confirmations, even under CLIENT REPLY OFF',
    steps: [
      ['cmd', Cmd.CLIENT, OFF],
      ['cmd', Cmd.SUBSCRIBE, { argc: 3 }],
      ['conf', 'sub', SUB_CHANNEL, 1],
    ],
    verdicts: [O],
    owed: 1,
    check: (m) => assert.equal(m.channels, 1),
  },
  {
    name: 'SUBSCRIBE with no channel is one (error) reply',
    steps: [
      ['cmd', Cmd.SUBSCRIBE, { argc: 1 }],
      ['reply', MINUS],
    ],
    verdicts: [O],
    owed: 0,
  },
  {
    name: 'UNSUBSCRIBE while not subscribed owes one confirmation, not the reply of the EVAL after it',
    steps: [['cmd', Cmd.UNSUBSCRIBE, { argc: 1 }], ['plain'], ['conf', 'unsub', SUB_CHANNEL, 0]],
    verdicts: [O],
    owed: 1,
  },
  {
    name: 'UNSUBSCRIBE with no channel owes one confirmation per subscribed channel, counted from confirmations',
    steps: [
      ['cmd', Cmd.SUBSCRIBE, { argc: 3 }],
      ['cmd', Cmd.SUBSCRIBE, { argc: 2, subKind: SUB_PATTERN }],
      ['conf', 'sub', SUB_CHANNEL, 1],
      ['conf', 'sub', SUB_CHANNEL, 2],
      ['conf', 'sub', SUB_PATTERN, 3],
      ['cmd', Cmd.UNSUBSCRIBE, { argc: 1 }],
      ['conf', 'unsub', SUB_CHANNEL, 2],
    ],
    verdicts: [O, O, O, O],
    owed: 1,
    check: (m) => assert.deepEqual([m.channels, m.patterns], [1, 1]),
  },
  {
    name: 'subscribing to the same channel twice counts it once',
    steps: [
      ['cmd', Cmd.SUBSCRIBE, { argc: 3 }],
      ['conf', 'sub', SUB_CHANNEL, 1],
      ['conf', 'sub', SUB_CHANNEL, 1],
      ['cmd', Cmd.UNSUBSCRIBE, { argc: 1 }],
      ['conf', 'unsub', SUB_CHANNEL, 0],
    ],
    owed: 0,
    check: (m) => assert.equal(m.subscribed, false),
  },
  {
    name: 'shard subscriptions have their own count',
    steps: [
      ['cmd', Cmd.SUBSCRIBE, { argc: 2, subKind: SUB_SHARD }],
      ['conf', 'sub', SUB_SHARD, 1],
      ['cmd', Cmd.UNSUBSCRIBE, { argc: 1 }],
      ['conf', 'unsub', SUB_CHANNEL, 0],
    ],
    owed: 0,
    check: (m) => assert.equal(m.subscribed, true),
  },
  {
    name: 'RESP2 subscribed: a message is not a reply, a PING reply is',
    steps: [['cmd', Cmd.SUBSCRIBE, { argc: 2 }], ['conf', 'sub', SUB_CHANNEL, 1], ['plain'], ['message'], ['reply', STAR]],
    verdicts: [O, N, O],
    owed: 0,
  },
  {
    name: 'RESP2 subscribed: CLIENT REPLY OFF is refused (one error) and changes nothing',
    steps: [['cmd', Cmd.SUBSCRIBE, { argc: 2 }], ['conf', 'sub', SUB_CHANNEL, 1], ['cmd', Cmd.CLIENT, OFF], ['reply', MINUS], ['plain']],
    owed: 1,
    check: (m) => assert.equal(m.replyOff, false),
  },
  {
    name: 'RESP3: a push is never a reply; an array that looks like a message is',
    steps: [
      ['cmd', Cmd.HELLO, { helloVersion: 3, argc: 2 }],
      ['reply', 0x25],
      ['cmd', Cmd.SUBSCRIBE, { argc: 2 }],
      ['conf', 'sub', SUB_CHANNEL, 1, PUSH],
      ['plain'],
      ['message', PUSH],
      ['message', REPLY],
    ],
    verdicts: [O, O, N, O],
    owed: 0,
  },
  {
    name: 'a HELLO answered with an error leaves RESP2',
    steps: [
      ['cmd', Cmd.HELLO, { helloVersion: 3, argc: 2 }],
      ['reply', MINUS],
    ],
    owed: 0,
    check: (m) => assert.equal(m.resp3, false),
  },
  { name: 'attributes are not replies', steps: [['plain'], ['attr'], ['reply']], verdicts: [N, O], owed: 0 },
  {
    name: 'inside MULTI each command is one reply and EXEC one more',
    steps: [['cmd', Cmd.MULTI], ['plain', 2], ['cmd', Cmd.EXEC], ['reply'], ['reply'], ['reply'], ['reply', STAR]],
    owed: 0,
    check: (m) => assert.equal(m.inMulti, false),
  },
  {
    name: "a refusal inside MULTI is the stand-in's error, replaced by the refusal",
    steps: [['cmd', Cmd.MULTI], ['reply'], ['refused'], ['reply', MINUS], ['cmd', Cmd.EXEC], ['reply', MINUS]],
    verdicts: [O, FRAME_REFUSAL, O],
    owed: 0,
  },
  {
    name: 'CLIENT REPLY queued in MULTI makes the model uncertain after EXEC',
    steps: [['cmd', Cmd.MULTI], ['reply'], ['cmd', Cmd.CLIENT, OFF], ['reply'], ['cmd', Cmd.EXEC], ['reply', STAR]],
    owed: 0,
    check: (m) => assert.equal(m.uncertain, true),
  },
  {
    name: 'RESET clears every mode and answers even under OFF',
    steps: [
      ['cmd', Cmd.CLIENT, OFF],
      ['cmd', Cmd.MULTI],
      ['cmd', Cmd.RESET],
    ],
    owed: 1,
    check: (m) => assert.deepEqual([m.replyOff, m.inMulti], [false, false]),
  },
  {
    name: 'RESET right after SKIP is skipped',
    steps: [
      ['cmd', Cmd.CLIENT, SKIP],
      ['cmd', Cmd.RESET],
    ],
    owed: 0,
  },
  {
    name: 'a blocking command at the head is blocked until its reply',
    steps: [['cmd', Cmd.BLOCKING]],
    owed: 1,
    check: (m) => assert.equal(m.blocked, true),
  },
  {
    name: 'a frame with nothing owed is not a reply, and the model says it lost track',
    steps: [['reply']],
    verdicts: [N],
    owed: 0,
    check: (m) => assert.equal(m.uncertain, true),
  },
];

function run(row: Row): { m: SessionAccounting; verdicts: number[] } {
  const m = new SessionAccounting();
  const verdicts: number[] = [];
  const base: CommandArgs = { argc: 1, clientReply: 0, helloVersion: 0, subKind: SUB_CHANNEL, blockArg: false };
  for (const step of row.steps) {
    switch (step[0]) {
      case 'plain':
        for (let i = 0; i < (step[1] ?? 1); i++) m.forwardedPlain();
        break;
      case 'cmd':
        m.forwarded(step[1], { ...base, ...step[2] });
        break;
      case 'refused':
        m.refused('refusal');
        break;
      case 'reply':
        verdicts.push(m.frame({ kind: REPLY, firstByte: step[1] ?? PLUS, pubsub: PUBSUB_OTHER, subKind: 0, count: 0 }));
        break;
      case 'push':
        verdicts.push(m.frame({ kind: PUSH, firstByte: GT, pubsub: PUBSUB_OTHER, subKind: 0, count: 0 }));
        break;
      case 'attr':
        verdicts.push(m.frame({ kind: ATTR, firstByte: 0x7c, pubsub: PUBSUB_OTHER, subKind: 0, count: 0 }));
        break;
      case 'conf': {
        const kind = step[4] ?? REPLY;
        verdicts.push(
          m.frame({
            kind,
            firstByte: kind === PUSH ? GT : STAR,
            pubsub: step[1] === 'sub' ? PUBSUB_SUBSCRIBED : PUBSUB_UNSUBSCRIBED,
            subKind: step[2],
            count: step[3],
          }),
        );
        break;
      }
      case 'message': {
        const kind = step[1] ?? REPLY;
        verdicts.push(m.frame({ kind, firstByte: kind === PUSH ? GT : STAR, pubsub: PUBSUB_MESSAGE, subKind: 0, count: 0 }));
        break;
      }
    }
  }
  return { m, verdicts };
}

describe('SessionAccounting', () => {
  for (const row of rows) {
    test(row.name, () => {
      const { m, verdicts } = run(row);
      if (row.verdicts) assert.deepEqual(verdicts.slice(0, row.verdicts.length), row.verdicts);
      assert.equal(m.owed, row.owed, 'owed');
      row.check?.(m);
    });
  }

  test('a long pipeline of plain commands is one run: no allocation per command, and grows past the ring', () => {
    const m = new SessionAccounting();
    for (let i = 0; i < 100_000; i++) m.forwardedPlain();
    for (let i = 0; i < 40; i++) m.forwarded(Cmd.MULTI, { argc: 1, clientReply: 0, helloVersion: 0, subKind: 0, blockArg: false });
    assert.equal(m.owed, 100_040);
    for (let i = 0; i < 100_040; i++) m.frame({ kind: REPLY, firstByte: PLUS, pubsub: PUBSUB_OTHER, subKind: 0, count: 0 });
    assert.equal(m.owed, 0);
    assert.equal(m.idle, true);
  });

  test('owedReplies counts only commands that will get a frame', () => {
    const m = new SessionAccounting();
    m.forwardedPlain(); // waits at the head
    m.forwarded(Cmd.CLIENT, { argc: 3, clientReply: 2, helloVersion: 0, subKind: 0, blockArg: false });
    m.forwardedPlain();
    m.forwardedPlain();
    assert.equal(m.owed, 4, 'an upper bound until the head is answered');
    assert.equal(m.owedReplies(), 1, 'only the first command gets a reply');
  });
});
