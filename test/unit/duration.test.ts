import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_DURATION_MS,
  formatDuration,
  formatSize,
  parseDuration,
  parseSize,
  tryParseDuration,
  tryParseSize,
} from '../../src/config/duration.js';
import { isSidecarError } from '../../src/errors.js';

describe('durations', () => {
  test('units and integer milliseconds give milliseconds', () => {
    const cases: Array<[unknown, number]> = [
      ['500ms', 500],
      ['2s', 2000],
      ['1m', 60_000],
      ['1h', 3_600_000],
      ['1500', 1500],
      [1500, 1500],
      ['0', 0],
      [0, 0],
      ['0s', 0],
      [' 2s ', 2000],
    ];
    for (const [input, ms] of cases) assert.equal(tryParseDuration(input), ms, JSON.stringify(input));
  });

  test('a fraction is accepted only when it makes whole milliseconds', () => {
    assert.equal(tryParseDuration('1.5s'), 1500);
    assert.equal(tryParseDuration('1.1s'), 1100); // no 1100.0000000000002
    assert.equal(tryParseDuration('0.25m'), 15_000);
    assert.equal(tryParseDuration('0.5ms'), undefined);
    assert.equal(tryParseDuration('1.0005s'), undefined);
  });

  test('a bare number must be integer milliseconds, since its unit would be a guess', () => {
    assert.equal(tryParseDuration('1.5'), undefined);
    assert.equal(tryParseDuration(1.5), undefined);
  });

  test('words, signs, spaces inside, unknown or uppercase units and other types are refused', () => {
    for (const input of [
      '10 seconds',
      '2 s',
      '-1s',
      '-5',
      '+5',
      '2S',
      '1d',
      '1us',
      's',
      '',
      'ms',
      '1e3',
      '0x10',
      '1,5s',
      null,
      undefined,
      true,
      [],
      {},
      -1,
      NaN,
      Infinity,
    ]) {
      assert.equal(tryParseDuration(input), undefined, JSON.stringify(input));
    }
  });

  test('durations longer than a Node.js timer can hold are refused', () => {
    assert.equal(tryParseDuration(MAX_DURATION_MS), MAX_DURATION_MS);
    assert.equal(tryParseDuration(MAX_DURATION_MS + 1), undefined);
    assert.equal(tryParseDuration('25d'), undefined);
    assert.equal(tryParseDuration('596h'), 596 * 3_600_000);
    assert.equal(tryParseDuration('597h'), undefined);
  });

  test('parseDuration throws ERR_CONFIG naming the input and the grammar', () => {
    assert.equal(parseDuration('2s'), 2000);
    assert.throws(
      () => parseDuration('10 seconds'),
      (err: unknown) => isSidecarError(err, 'ERR_CONFIG') && err.message.includes('"10 seconds"') && err.message.includes('500ms, 2s, 1m'),
    );
  });

  test('formatDuration picks the largest exact unit', () => {
    assert.equal(formatDuration(0), '0ms');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(1500), '1500ms');
    assert.equal(formatDuration(2000), '2s');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(7_200_000), '2h');
  });

  test('formatting then parsing gives the same milliseconds', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: MAX_DURATION_MS }), (ms) => tryParseDuration(formatDuration(ms)) === ms));
  });
});

describe('sizes', () => {
  test('integer bytes and binary units give bytes, case-insensitively', () => {
    const cases: Array<[unknown, number]> = [
      [65536, 65536],
      ['65536', 65536],
      ['0', 0],
      ['10b', 10],
      ['64kb', 65536],
      ['64KB', 65536],
      ['64kib', 65536],
      ['512mb', 512 * 1024 ** 2],
      ['512MiB', 512 * 1024 ** 2],
      ['1gb', 1024 ** 3],
      ['1.5kb', 1536],
    ];
    for (const [input, bytes] of cases) assert.equal(tryParseSize(input), bytes, JSON.stringify(input));
  });

  test("Redis' decimal k/m/g, fractions of a byte, words and other types are refused", () => {
    for (const input of ['1k', '1m', '1g', '1.5', '0.1kb', '1 mb', '-1kb', '1tb', 'mb', '', 'lots', 1.5, -1, null, true, []]) {
      assert.equal(tryParseSize(input), undefined, JSON.stringify(input));
    }
  });

  test('parseSize throws ERR_CONFIG naming the input', () => {
    assert.equal(parseSize('64kb'), 65536);
    assert.throws(
      () => parseSize('1k'),
      (err: unknown) => isSidecarError(err, 'ERR_CONFIG') && err.message.includes('"1k"'),
    );
  });

  test('formatSize picks the largest exact binary unit, and parses back', () => {
    assert.equal(formatSize(512 * 1024 ** 2), '512mb');
    assert.equal(formatSize(65536), '64kb');
    assert.equal(formatSize(1000), '1000b');
    assert.equal(formatSize(0), '0b');
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => tryParseSize(formatSize(n)) === n));
  });
});
