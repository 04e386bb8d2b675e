/**
 * LogSummary: the first occurrence of each kind is logged at once, repeats become one summary
 * line per interval with their count, and close() flushes what is pending.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LogSummary } from '../../src/observability/log-summary.js';
import { captureLogs } from '../support/log-capture.js';

function manualInterval() {
  let fn: (() => void) | undefined;
  let armed = 0;
  return {
    setInterval: (f: () => void) => {
      fn = f;
      armed++;
      return { unref: () => undefined };
    },
    clearInterval: () => {
      fn = undefined;
    },
    tick: () => fn?.(),
    get armed() {
      return armed;
    },
  };
}

describe('LogSummary', () => {
  test('logs the first event of a kind, then one summary with the count of the rest', () => {
    const { logger, logs } = captureLogs('info');
    const clock = manualInterval();
    const summary = new LogSummary(logger, { intervalMs: 1000, ...clock });
    for (let i = 0; i < 10_000; i++) summary.event('info', 'denied', { session: i }, 'refused a command');
    assert.equal(logs.length, 1);
    assert.equal(logs[0]!.msg, 'refused a command');
    assert.equal(logs[0]!.session, 0);
    clock.tick();
    assert.equal(logs.length, 2);
    assert.equal(logs[1]!.suppressed, 9_999);
    assert.equal(logs[1]!.session, 9_999, 'the summary carries the last occurrence');
    assert.match(String(logs[1]!.msg), /9999 more since the last summary/);
    // Nothing pending: no further line, and the timer is stopped until the next repeat.
    clock.tick();
    assert.equal(logs.length, 2);
    summary.event('info', 'denied', {}, 'refused a command');
    assert.equal(clock.armed, 2);
  });

  test('kinds are counted apart, and close() flushes them', () => {
    const { logger, logs } = captureLogs('info');
    const summary = new LogSummary(logger, { intervalMs: 1000, ...manualInterval() });
    summary.event('warn', 'a', {}, 'a happened');
    summary.event('warn', 'b', {}, 'b happened');
    summary.event('warn', 'a', {}, 'a happened');
    summary.event('warn', 'a', {}, 'a happened');
    summary.event('warn', 'b', {}, 'b happened');
    assert.equal(logs.length, 2);
    summary.close();
    summary.close();
    const lines = logs.slice(2).map((l) => [l.event, l.suppressed]);
    assert.deepEqual(lines, [
      ['a', 2],
      ['b', 1],
    ]);
    // After close, repeats are only counted by metrics: no line, no timer.
    summary.event('warn', 'a', {}, 'a happened');
    assert.equal(logs.length, 4);
  });
});
