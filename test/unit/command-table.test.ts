import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Cmd, CommandTable, EMPTY_COMMAND_ID, UNKNOWN_COMMAND_ID } from '../../src/resp/command-table.js';
import { isSidecarError } from '../../src/errors.js';

function lookup(table: CommandTable, name: string): number {
  const buf = Buffer.from(`xx${name}yy`, 'latin1'); // an offset slice, as the scanner passes it
  return table.lookup(buf, 2, 2 + name.length);
}

const KINDS: Array<[string, number]> = [
  ['multi', Cmd.MULTI],
  ['exec', Cmd.EXEC],
  ['discard', Cmd.DISCARD],
  ['subscribe', Cmd.SUBSCRIBE],
  ['psubscribe', Cmd.SUBSCRIBE],
  ['ssubscribe', Cmd.SUBSCRIBE],
  ['unsubscribe', Cmd.UNSUBSCRIBE],
  ['punsubscribe', Cmd.UNSUBSCRIBE],
  ['sunsubscribe', Cmd.UNSUBSCRIBE],
  ['monitor', Cmd.MONITOR],
  ['sync', Cmd.SYNC],
  ['psync', Cmd.SYNC],
  ['replicaof', Cmd.REPLICAOF],
  ['slaveof', Cmd.REPLICAOF],
  ['quit', Cmd.QUIT],
  ['reset', Cmd.RESET],
  ['hello', Cmd.HELLO],
  ['client', Cmd.CLIENT],
  ['auth', Cmd.AUTH],
  ['blpop', Cmd.BLOCKING],
  ['brpop', Cmd.BLOCKING],
  ['brpoplpush', Cmd.BLOCKING],
  ['blmove', Cmd.BLOCKING],
  ['blmpop', Cmd.BLOCKING],
  ['bzpopmin', Cmd.BLOCKING],
  ['bzpopmax', Cmd.BLOCKING],
  ['bzmpop', Cmd.BLOCKING],
  ['wait', Cmd.BLOCKING],
  ['waitaof', Cmd.BLOCKING],
  ['xread', Cmd.XREAD],
  ['xreadgroup', Cmd.XREAD],
  ['ping', Cmd.PING],
  ['shutdown', Cmd.SHUTDOWN],
  ['watch', Cmd.WATCH],
  ['unwatch', Cmd.UNWATCH],
];

describe('CommandTable', () => {
  const table = new CommandTable([]);

  test('every known name maps to its kind, has its own id, and reports its lowercase name', () => {
    const ids = new Set<number>();
    for (const [name, kind] of KINDS) {
      const id = lookup(table, name);
      assert.notEqual(id, UNKNOWN_COMMAND_ID, name);
      assert.equal(table.kind(id), kind, name);
      assert.equal(table.name(id), name);
      assert.equal(table.idOf(name), id);
      ids.add(id);
    }
    assert.equal(ids.size, KINDS.length);
  });

  test('lookup ignores ASCII case in every position', () => {
    for (const [name, kind] of KINDS) {
      const upper = name.toUpperCase();
      const mixed = [...name].map((ch, i) => (i % 2 === 0 ? ch.toUpperCase() : ch)).join('');
      assert.equal(table.kind(lookup(table, upper)), kind, upper);
      assert.equal(table.kind(lookup(table, mixed)), kind, mixed);
    }
  });

  test('only letters fold: a byte 0x20 below a non-letter does not match it', () => {
    assert.equal(lookup(table, 'PiNg'), table.idOf('ping'));
    const t = new CommandTable(['a-b', 'x1']);
    assert.notEqual(lookup(t, 'A-B'), UNKNOWN_COMMAND_ID);
    assert.equal(lookup(t, 'a\x0db'), UNKNOWN_COMMAND_ID); // 0x0d | 0x20 === '-'
    assert.equal(lookup(t, 'x\x11'), UNKNOWN_COMMAND_ID); // 0x11 | 0x20 === '1'
    assert.equal(lookup(t, 'X1'), t.idOf('x1'));
  });

  test('unknown names, prefixes, extensions and the empty name are OTHER, not denied, and unnamed', () => {
    for (const name of ['get', 'set', 'pin', 'pingg', 'multix', 'mult', 'clien', 'xreadgrou', '']) {
      const id = lookup(table, name);
      assert.equal(id, UNKNOWN_COMMAND_ID, name);
      assert.equal(table.kind(id), Cmd.OTHER);
      assert.equal(table.isDenied(id), false);
      assert.equal(table.name(id), '');
    }
  });

  test('a name longer than the longest known one is OTHER at once', () => {
    assert.equal(table.maxNameLength, 'punsubscribe'.length);
    assert.equal(lookup(table, 'punsubscribee'), UNKNOWN_COMMAND_ID);
    assert.equal(lookup(table, 'x'.repeat(1000)), UNKNOWN_COMMAND_ID);
  });

  test('the empty command has its own id, kind EMPTY and no name', () => {
    assert.equal(table.kind(EMPTY_COMMAND_ID), Cmd.EMPTY);
    assert.equal(table.name(EMPTY_COMMAND_ID), '');
    assert.equal(table.isDenied(EMPTY_COMMAND_ID), false);
  });

  test('denied names may be known or arbitrary, in any case, and only they are denied', () => {
    const t = new CommandTable(['SHUTDOWN', 'flushall', 'debug', 'config', 'a-very-long-denied-command-name']);
    for (const name of ['shutdown', 'FLUSHALL', 'Debug', 'config', 'A-VERY-LONG-DENIED-COMMAND-NAME']) {
      const id = lookup(t, name);
      assert.notEqual(id, UNKNOWN_COMMAND_ID, name);
      assert.equal(t.isDenied(id), true, name);
      assert.equal(t.name(id), name.toLowerCase());
    }
    assert.equal(t.kind(lookup(t, 'shutdown')), Cmd.SHUTDOWN);
    assert.equal(t.kind(lookup(t, 'flushall')), Cmd.OTHER);
    assert.equal(t.isDenied(lookup(t, 'ping')), false);
    assert.equal(t.isDenied(lookup(t, 'flushdb')), false);
    assert.equal(t.maxNameLength, 'a-very-long-denied-command-name'.length);
  });

  test('a repeated denied name is one entry', () => {
    const t = new CommandTable(['debug', 'DEBUG', 'debug']);
    const id = lookup(t, 'debug');
    assert.equal(t.isDenied(id), true);
    assert.equal(t.idOf('debug'), id);
  });

  test('an empty or non-printable denied name is a configuration error', () => {
    for (const bad of ['', 'flush all', 'caf\u00e9', 'tab\t']) {
      assert.throws(
        () => new CommandTable([bad]),
        (err: unknown) => isSidecarError(err, 'ERR_CONFIG'),
        JSON.stringify(bad),
      );
    }
  });

  test('ids out of range read as OTHER, not denied, unnamed', () => {
    assert.equal(table.kind(10_000), Cmd.OTHER);
    assert.equal(table.isDenied(10_000), false);
    assert.equal(table.name(10_000), '');
  });
});
