import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyPubSubHead,
  endsWithZeroCount,
  PUBSUB_MESSAGE,
  PUBSUB_OTHER,
  PUBSUB_SUBSCRIBED,
  PUBSUB_UNSUBSCRIBED,
} from '../../src/proxy/pubsub-frames.js';

const b = (s: string) => Buffer.from(s, 'latin1');

test('pub/sub frames are classified by their first element, in RESP2 arrays and RESP3 pushes', () => {
  assert.equal(classifyPubSubHead(b('*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n')), PUBSUB_MESSAGE);
  assert.equal(classifyPubSubHead(b('*4\r\n$8\r\npmessage\r\n')), PUBSUB_MESSAGE);
  assert.equal(classifyPubSubHead(b('>3\r\n$8\r\nsmessage\r\n')), PUBSUB_MESSAGE);
  assert.equal(classifyPubSubHead(b('*3\r\n$9\r\nsubscribe\r\n')), PUBSUB_SUBSCRIBED);
  assert.equal(classifyPubSubHead(b('>3\r\n$10\r\npsubscribe\r\n')), PUBSUB_SUBSCRIBED);
  assert.equal(classifyPubSubHead(b('*3\r\n$12\r\npunsubscribe\r\n')), PUBSUB_UNSUBSCRIBED);
  assert.equal(classifyPubSubHead(b('*3\r\n$11\r\nunsubscribe\r\n')), PUBSUB_UNSUBSCRIBED);
});

test('replies and heads too short to tell are not pub/sub frames', () => {
  assert.equal(classifyPubSubHead(b('*2\r\n$4\r\npong\r\n$0\r\n\r\n')), PUBSUB_OTHER, "PING's reply in subscribed mode");
  assert.equal(classifyPubSubHead(b('-ERR only (P|S)SUBSCRIBE ...\r\n')), PUBSUB_OTHER);
  assert.equal(classifyPubSubHead(b('*3\r\n$7\r\nmessag')), PUBSUB_OTHER, 'cut inside the word');
  assert.equal(classifyPubSubHead(b('*3\r\n$7\r\nMESSAGE\r\n')), PUBSUB_OTHER, 'the backend spells them in lowercase');
  assert.equal(classifyPubSubHead(b('*3\r\n:7\r\n')), PUBSUB_OTHER);
  assert.equal(classifyPubSubHead(b('')), PUBSUB_OTHER);
});

test('a zero subscription count is read from the frame end, only when the whole tail is in the chunk', () => {
  const f = b('*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n');
  assert.equal(endsWithZeroCount(f, 0, f.length), true);
  const ten = b('*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:10\r\n');
  assert.equal(endsWithZeroCount(ten, 0, ten.length), false);
  assert.equal(endsWithZeroCount(b('0\r\n'), -1, 3), false, 'a tail cut by the chunk start is not read as zero');
});
