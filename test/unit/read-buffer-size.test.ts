/** How a socket's reused read buffer grows and shrinks (src/backend/read-buffer.ts nextSize). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  nextSize,
  READ_BUFFER_BYTES as SMALL,
  READ_BUFFER_MAX_BYTES as MAX,
  READ_BUFFER_SHRINK_BELOW,
} from '../../src/backend/read-buffer.js';

test('a read that fills the buffer grows it to the maximum', () => {
  assert.equal(nextSize(SMALL, SMALL), MAX);
  assert.equal(nextSize(MAX, MAX), MAX);
});

test('a small buffer stays small whatever it reads below full', () => {
  for (const n of [1, READ_BUFFER_SHRINK_BELOW - 1, READ_BUFFER_SHRINK_BELOW, SMALL - 1])
    assert.equal(nextSize(SMALL, n), SMALL, `read ${n}`);
});

test('a grown buffer shrinks back after a small read, and keeps its size between the two bounds', () => {
  assert.equal(nextSize(MAX, 1), SMALL);
  assert.equal(nextSize(MAX, READ_BUFFER_SHRINK_BELOW - 1), SMALL);
  assert.equal(nextSize(MAX, READ_BUFFER_SHRINK_BELOW), MAX);
  assert.equal(nextSize(MAX, SMALL), MAX);
  assert.equal(nextSize(MAX, MAX - 1), MAX);
});

test('the bounds are ordered: shrinking cannot trigger on a read that would grow', () => {
  assert.ok(READ_BUFFER_SHRINK_BELOW < SMALL && SMALL < MAX);
});
