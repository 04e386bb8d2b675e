import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  judgePikaReplica,
  judgeRedisReplica,
  pikaLagBytes,
  redisTargetMoved,
  pikaTargetMoved,
  summarizeVerdicts,
  type PikaProbe,
  type ReplicaResult,
} from '../../src/replication/convergence.js';
import { parsePikaReplication } from '../../src/replication/pika-info.js';
import { parseRedisReplication, type RedisReplicaEntry } from '../../src/replication/redis-info.js';
import { assessReplicas, targetOf } from '../../src/replication/observation.js';
import { pollDelayMs } from '../../src/replication/backoff.js';
import { dialAddress, formatAddress, parseHostPort } from '../../src/replication/addresses.js';
import type { PikaPositions } from '../../src/replication/positions.js';
import { readPikaFixture, withBinlog, withLag } from '../support/fake-pika.js';

function redisEntry(over: Partial<RedisReplicaEntry>): RedisReplicaEntry {
  return { id: 'slave0', ip: '127.0.0.1', port: 7001, address: '127.0.0.1:7001', state: 'online', offset: 100n, lagSeconds: 0, ...over };
}

describe('redis convergence rules', () => {
  test('an online replica whose acknowledged offset reached the target has converged, even below the current offset', () => {
    // The master's own PINGs grow its offset: equality with the current offset is never required.
    const a = judgeRedisReplica('r', redisEntry({ offset: 100n }), 100n, 114n);
    assert.equal(a.result.verdict, 'converged');
    assert.equal(a.result.behindBytes, '0');
    assert.equal(a.lagBytes, 14n);
    assert.equal(a.result.position, '100');
    assert.equal(judgeRedisReplica('r', redisEntry({ offset: 110n }), 100n, 114n).result.verdict, 'converged');
  });

  test('an online replica below the target is behind by the difference', () => {
    const a = judgeRedisReplica('r', redisEntry({ offset: 60n }), 100n, 100n);
    assert.equal(a.result.verdict, 'behind');
    assert.equal(a.result.behindBytes, '40');
    assert.equal(a.state, 'online');
  });

  test('wait_bgsave and send_bulk are a full sync; any other state is not online', () => {
    for (const state of ['wait_bgsave', 'send_bulk']) {
      const a = judgeRedisReplica('r', redisEntry({ state, offset: 0n }), 100n, 100n);
      assert.equal(a.result.verdict, 'full_sync');
      assert.equal(a.state, 'full_sync');
      assert.equal(a.lagBytes, null);
    }
    const odd = judgeRedisReplica('r', redisEntry({ state: 'handshake', offset: 500n }), 100n, 100n);
    assert.equal(odd.result.verdict, 'behind');
    assert.equal(odd.state, 'down');
    assert.match(odd.result.detail ?? '', /state=handshake/);
  });

  test('a replica the master no longer lists is unreachable; an unknown offset is never converged', () => {
    assert.equal(judgeRedisReplica('r', undefined, 100n, 100n).result.verdict, 'unreachable');
    assert.equal(judgeRedisReplica('r', undefined, 100n, 100n).state, 'down');
    assert.equal(judgeRedisReplica('r', redisEntry({ offset: null }), 0n, 0n).result.verdict, 'behind');
  });

  test('an acknowledged offset ahead of the master in the same reply is diverged', () => {
    assert.equal(judgeRedisReplica('r', redisEntry({ offset: 200n }), 100n, 150n).result.verdict, 'diverged');
  });

  test('the target moves only when the offset grows by more than one replication PING between polls', () => {
    assert.equal(redisTargetMoved(100n, 100n), false);
    assert.equal(redisTargetMoved(100n, 114n), false);
    assert.equal(redisTargetMoved(100n, 115n), true);
  });
});

describe('pika convergence rules', () => {
  const masterText = readPikaFixture('v4.0.1-captured-master.txt');
  const replicaText = readPikaFixture('v4.0.1-captured-replica.txt');
  const master = parsePikaReplication(masterText);
  const target = master.positions!;
  const entry = master.replicas[0]!;
  const ok = (text: string): PikaProbe => ({ ok: true, info: parsePikaReplication(text) });
  const judge = (probe: PikaProbe | undefined, opts: { masterNow?: PikaPositions; entry?: typeof entry | undefined } = {}) =>
    judgePikaReplica({
      address: entry.address,
      entry: 'entry' in opts ? opts.entry : entry,
      probe,
      target,
      masterNow: opts.masterNow ?? target,
    });

  test('link up, no full sync and every db equal to the target is converged', () => {
    const a = judge(ok(replicaText));
    assert.equal(a.result.verdict, 'converged');
    assert.equal(a.result.position, 'db0=0:1254');
    assert.equal(a.state, 'online');
    assert.equal(a.lagBytes, 0n);
  });

  test('behind in the same binlog file reports the bytes; behind by a file reports an unknown count', () => {
    const same = judge(ok(withBinlog(replicaText, 'db0', 0, 1000)));
    assert.equal(same.result.verdict, 'behind');
    assert.equal(same.result.behindBytes, '254');
    assert.equal(same.lagBytes, 254n);
    const files = parsePikaReplication(withBinlog(masterText, 'db0', 3, 10)).positions!;
    const across = judgePikaReplica({
      address: 'a',
      entry,
      probe: ok(withBinlog(replicaText, 'db0', 2, 9000)),
      target: files,
      masterNow: files,
    });
    assert.equal(across.result.verdict, 'behind');
    assert.equal(across.result.behindBytes, null);
    assert.match(across.result.detail ?? '', /another binlog file/);
  });

  test('a db the target has and the replica lacks keeps it behind; extra replica dbs are ignored', () => {
    const missing = judge(ok(replicaText.replace(/db0:binlog_offset=[^\r]*\r\n/, 'db1:binlog_offset=0 1254,safety_purge=none\r\n')));
    assert.equal(missing.result.verdict, 'behind');
    assert.match(missing.result.detail ?? '', /db0 missing/);
    const extra = judge(ok(replicaText.replace('slave_repl_offset', 'db1:binlog_offset=7 7,safety_purge=none\r\nslave_repl_offset')));
    assert.equal(extra.result.verdict, 'converged');
  });

  test('ahead of the master is diverged; between the recorded target and a master that moved on is converged', () => {
    assert.equal(judge(ok(withBinlog(replicaText, 'db0', 0, 1300))).result.verdict, 'diverged');
    const movedOn = parsePikaReplication(withBinlog(masterText, 'db0', 0, 1400)).positions!;
    assert.equal(judge(ok(withBinlog(replicaText, 'db0', 0, 1300)), { masterNow: movedOn }).result.verdict, 'converged');
    assert.equal(judge(ok(withBinlog(replicaText, 'db0', 0, 1500)), { masterNow: movedOn }).result.verdict, 'diverged');
  });

  test('a master-side full sync, a replica-side full sync and a link that is down each block convergence', () => {
    const syncing = parsePikaReplication(withLag(masterText, 'slave0', '(db0:full syncing)')).replicas[0];
    assert.equal(judge(ok(replicaText), { entry: syncing }).result.verdict, 'full_sync');
    const notSyncing = parsePikaReplication(withLag(masterText, 'slave0', '(db0:not syncing)')).replicas[0];
    assert.equal(judge(ok(replicaText), { entry: notSyncing }).result.verdict, 'full_sync');
    assert.equal(judge(ok(readPikaFixture('v4.0.1-slave-full-sync.txt'))).result.verdict, 'full_sync');
    const down = judge(ok(replicaText.replace('master_link_status:up', 'master_link_status:down')));
    assert.equal(down.result.verdict, 'behind');
    assert.equal(down.state, 'down');
  });

  test('a replica whose own INFO cannot be read, or that the master stopped listing, is unreachable', () => {
    const a = judge({ ok: false, error: 'ERR_BACKEND_UNREACHABLE: connection refused' });
    assert.equal(a.result.verdict, 'unreachable');
    assert.match(a.result.detail ?? '', /connection refused/);
    assert.equal(a.state, 'down');
    assert.equal(a.lagBytes, 0n, "the master's byte lag stands in for the metric");
    assert.equal(judge(ok(replicaText), { entry: undefined }).result.verdict, 'unreachable');
    assert.equal(judge(undefined).result.verdict, 'unreachable');
  });

  test('a replica that reports role master (detached) is not converged', () => {
    const a = judge(ok(readPikaFixture('v4.0.1-captured-master.txt')));
    assert.equal(a.result.verdict, 'behind');
    assert.match(a.result.detail ?? '', /role master/);
  });

  test('the lag metric falls back to the master-reported lag and is unknown when that is wrapped', () => {
    const wrapped = parsePikaReplication(withLag(masterText, 'slave0', '(db0:18446744073709551615)')).replicas[0];
    assert.equal(pikaLagBytes(wrapped, null, target), null);
    const sent = parsePikaReplication(withLag(masterText, 'slave0', '(db0:77)')).replicas[0];
    assert.equal(pikaLagBytes(sent, null, target), 77n);
  });

  test('any db position change is a moving target', () => {
    assert.equal(pikaTargetMoved(target, parsePikaReplication(masterText).positions!), false);
    assert.equal(pikaTargetMoved(target, parsePikaReplication(withBinlog(masterText, 'db0', 0, 1255)).positions!), true);
  });
});

describe('the overall verdict', () => {
  const r = (verdict: ReplicaResult['verdict']): ReplicaResult => ({ address: verdict, verdict, behindBytes: null, position: null });

  test('converged needs every replica converged; diverged only when every open replica diverged', () => {
    assert.equal(summarizeVerdicts([]), 'converged');
    assert.equal(summarizeVerdicts([r('converged'), r('converged')]), 'converged');
    assert.equal(summarizeVerdicts([r('converged'), r('diverged')]), 'diverged');
    assert.equal(summarizeVerdicts([r('diverged'), r('behind')]), 'waiting');
    for (const v of ['behind', 'unreachable', 'full_sync'] as const) assert.equal(summarizeVerdicts([r('converged'), r(v)]), 'waiting');
  });

  test('a replica counted by connected_slaves whose line is missing is never converged', () => {
    const obs = {
      dialect: 'redis' as const,
      info: parseRedisReplication(
        'role:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port=1,state=online,offset=10,lag=0\r\nmaster_repl_offset:10\r\n',
      ),
    };
    const out = assessReplicas(obs, targetOf(obs)!);
    assert.deepEqual(
      out.map((a) => [a.result.address, a.result.verdict]),
      [
        ['127.0.0.1:1', 'converged'],
        ['slave1', 'behind'],
      ],
    );
  });

  test('a replica listed earlier in the wait and gone now is unreachable', () => {
    const obs = {
      dialect: 'redis' as const,
      info: parseRedisReplication('role:master\r\nconnected_slaves:0\r\nmaster_repl_offset:10\r\n'),
    };
    const out = assessReplicas(obs, targetOf(obs)!, ['127.0.0.1:9']);
    assert.deepEqual(
      out.map((a) => [a.result.address, a.result.verdict, a.state]),
      [['127.0.0.1:9', 'unreachable', 'down']],
    );
  });
});

describe('poll backoff', () => {
  test('grows from the minimum to the maximum and stays within them whatever the jitter', () => {
    for (const rnd of [0, 0.5, 1]) {
      let prev = 0;
      for (let attempt = 0; attempt < 20; attempt++) {
        const d = pollDelayMs(attempt, 20, 500, () => rnd);
        assert.ok(d >= 20 && d <= 500, `${d} in bounds`);
        if (rnd === 1) assert.ok(d >= prev, 'monotonic without jitter');
        prev = d;
      }
    }
    assert.equal(
      pollDelayMs(100, 20, 500, () => 1),
      500,
    );
    assert.equal(
      pollDelayMs(100, 20, 500, () => 0),
      250,
      'equal jitter: at least half the capped delay',
    );
    assert.notEqual(
      pollDelayMs(5, 20, 500, () => 0.1),
      pollDelayMs(5, 20, 500, () => 0.9),
      'jitter changes the delay',
    );
  });

  test('degenerate bounds do not break it', () => {
    assert.equal(
      pollDelayMs(3, 100, 50, () => 0.5),
      50,
      'the maximum wins over a larger minimum',
    );
    assert.equal(
      pollDelayMs(-1, 0, 0, () => 0.5),
      0,
    );
  });
});

describe('replica addresses', () => {
  test('IPv6 hosts are bracketed and parsed back', () => {
    assert.equal(formatAddress('::1', 6379), '[::1]:6379');
    assert.equal(formatAddress('127.0.0.1', null), '127.0.0.1:?');
    assert.deepEqual(parseHostPort('[::1]:6379'), { host: '::1', port: 6379 });
    assert.deepEqual(parseHostPort('pika-1.pika:9221'), { host: 'pika-1.pika', port: 9221 });
    for (const bad of ['::1:6379', 'host', 'host:0', 'host:70000', '']) assert.equal(parseHostPort(bad), null, bad);
  });

  test('an override replaces the announced address to dial; others are dialled as announced', () => {
    const overrides = { '10.0.0.2:9221': '127.0.0.1:7001', '[::2]:9221': '[::1]:7002', '10.0.0.9:1': 'not an address' };
    assert.deepEqual(dialAddress('10.0.0.2:9221', overrides), { host: '127.0.0.1', port: 7001, overridden: true });
    assert.deepEqual(dialAddress('[::2]:9221', overrides), { host: '::1', port: 7002, overridden: true });
    assert.deepEqual(dialAddress('127.0.0.1:7003', overrides), { host: '127.0.0.1', port: 7003, overridden: false });
    assert.equal(dialAddress('10.0.0.9:1', overrides), null, 'a broken override is not silently ignored');
    assert.equal(dialAddress('slave0', {}), null);
  });
});
