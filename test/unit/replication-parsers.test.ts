import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parsePikaReplication, parsePikaLag, pikaFullSyncInProgress, type PikaReplicationInfo } from '../../src/replication/pika-info.js';
import { parseRedisReplication } from '../../src/replication/redis-info.js';
import { dialectFromInfoServer, dialectFromReplication, resolveDialect } from '../../src/replication/dialect.js';
import { judgePikaReplica } from '../../src/replication/convergence.js';
import {
  PIKA_LAG_WRAP_THRESHOLD,
  U64_MAX,
  binlogDistance,
  compareBinlog,
  formatPikaPositions,
  parseU64,
} from '../../src/replication/positions.js';
import { pikaFixturesDir, readPikaFixture, pikaServerInfo } from '../support/fake-pika.js';

// ——— the facts of shared/fixtures/pika-info/README.md, one row per file ———

interface Fact {
  file: string;
  role: 'master' | 'replica';
  /** role: slave — the master it follows. */
  upstream?: string;
  dbs: Record<string, [bigint, bigint]>;
  replicas: Array<[string, Record<string, bigint | 'full syncing'>]>;
  /** role: slave — master_link_status; and repl_connect_status per db where the server prints it. */
  link?: 'up' | 'down';
  connectStatus?: Record<string, string>;
  fullSync: boolean;
  dbReplState?: Record<string, string>;
  caughtUpWith?: string;
}

const FACTS: Fact[] = [
  {
    file: 'v3.3.5-master.txt',
    role: 'master',
    dbs: { db0: [143n, 9122210n] },
    replicas: [
      ['10.200.14.148:9222', { db0: 0n }],
      ['10.200.14.148:9221', { db0: 0n }],
    ],
    fullSync: false,
  },
  {
    file: 'v3.3.5-slave.txt',
    role: 'replica',
    upstream: '10.200.14.148:9223',
    dbs: { db0: [0n, 87377376n] },
    replicas: [],
    link: 'up',
    fullSync: false,
  },
  {
    file: 'v3.5.1-master.txt',
    role: 'master',
    dbs: { db0: [0n, 284n] },
    replicas: [['10.224.129.104:9971', { db0: 0n }]],
    fullSync: false,
  },
  {
    file: 'v3.5.1-slave.txt',
    role: 'replica',
    upstream: '10.224.129.40:9971',
    dbs: { db0: [0n, 284n] },
    replicas: [],
    link: 'up',
    fullSync: false,
    caughtUpWith: 'v3.5.1-master.txt',
  },
  {
    file: 'v3.5.3-master.txt',
    role: 'master',
    dbs: { db0: [2n, 384n] },
    replicas: [['10.224.129.104:9971', { db0: 0n }]],
    fullSync: false,
  },
  {
    file: 'v3.5.3-slave-full-sync.txt',
    role: 'replica',
    upstream: '10.224.129.104:9971',
    dbs: { db0: [0n, 0n], db1: [0n, 0n] },
    replicas: [],
    link: 'down',
    fullSync: true,
    dbReplState: { db0: 'WaitDBSync', db1: 'NoConnect' },
  },
  {
    file: 'v4.0.1-master-two-slaves.txt',
    role: 'master',
    dbs: { db0: [2n, 384n] },
    replicas: [
      ['10.0.0.2:9221', { db0: 0n }],
      ['10.0.0.3:9221', { db0: 'full syncing' }],
    ],
    fullSync: true,
  },
  { file: 'v4.0.1-standalone.txt', role: 'master', dbs: { db0: [0n, 0n] }, replicas: [], fullSync: false },
  {
    file: 'v4.0.1-slave-caught-up.txt',
    role: 'replica',
    upstream: '10.0.0.1:9221',
    dbs: { db0: [2n, 384n], db1: [0n, 0n] },
    replicas: [],
    link: 'up',
    connectStatus: { db0: 'connected', db1: 'connected' },
    fullSync: false,
  },
  {
    file: 'v4.0.1-slave-full-sync.txt',
    role: 'replica',
    upstream: '10.0.0.1:9221',
    dbs: { db0: [0n, 0n] },
    replicas: [],
    link: 'down',
    connectStatus: { db0: 'syncing_full' },
    fullSync: true,
  },
  {
    file: 'v4.0.1-captured-master.txt',
    role: 'master',
    dbs: { db0: [0n, 1254n] },
    replicas: [['127.0.0.1:24321', { db0: 0n }]],
    fullSync: false,
  },
  {
    file: 'v4.0.1-captured-replica.txt',
    role: 'replica',
    upstream: '127.0.0.1:24221',
    dbs: { db0: [0n, 1254n] },
    replicas: [],
    link: 'up',
    connectStatus: { db0: 'connected' },
    fullSync: false,
    caughtUpWith: 'v4.0.1-captured-master.txt',
  },
  {
    file: 'v3.5.0-captured-master.txt',
    role: 'master',
    dbs: { db0: [0n, 1245n] },
    replicas: [['127.0.0.1:24321', { db0: 0n }]],
    fullSync: false,
  },
  {
    file: 'v3.5.0-captured-replica.txt',
    role: 'replica',
    upstream: '127.0.0.1:24221',
    dbs: { db0: [0n, 1245n] },
    replicas: [],
    link: 'up',
    fullSync: false,
    caughtUpWith: 'v3.5.0-captured-master.txt',
  },
];

function pika(file: string): PikaReplicationInfo {
  return parsePikaReplication(readPikaFixture(file));
}

/** Judges a replica's own INFO against a master's INFO, as the watcher does. */
function judgePair(masterText: string, replicaText: string, entryIndex = 0) {
  const master = parsePikaReplication(masterText);
  const replica = parsePikaReplication(replicaText);
  assert.ok(master.positions, 'master position');
  const entry = master.replicas[entryIndex];
  return judgePikaReplica({
    address: entry?.address ?? 'r',
    entry,
    probe: { ok: true, info: replica },
    target: master.positions,
    masterNow: master.positions,
  }).result;
}

describe('pika INFO replication fixtures', () => {
  test('every fixture file in the directory has its facts asserted here, and every README row names a file', () => {
    const files = readdirSync(pikaFixturesDir())
      .filter((f) => f.endsWith('.txt'))
      .sort();
    assert.deepEqual(files, FACTS.map((f) => f.file).sort());
    const readme = readFileSync(join(pikaFixturesDir(), 'README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| (v[\w.-]+\.txt) \|/gm)].map((m) => m[1]);
    assert.deepEqual(rows.sort(), files);
  });

  for (const fact of FACTS) {
    test(`${fact.file} yields the README's role, positions, replicas, link and full-sync facts`, () => {
      const info = pika(fact.file);
      assert.equal(info.dialect, 'pika');
      assert.equal(info.role, fact.role);

      assert.ok(info.positions, 'positions readable');
      assert.deepEqual(Object.fromEntries([...info.positions].map(([db, p]) => [db, [p.filenum, p.offset]])), fact.dbs);

      assert.deepEqual(
        info.replicas.map((r) => [
          r.address,
          Object.fromEntries(
            [...r.lags].map(([db, l]) => [db, l.kind === 'bytes' ? l.bytes : l.kind === 'full_syncing' ? 'full syncing' : l.kind]),
          ),
        ]),
        fact.replicas,
      );
      if (fact.role === 'master') {
        assert.equal(info.connectedReplicas, fact.replicas.length, 'connected_slaves agrees with the slaveN lines');
        assert.equal(info.upstream, null);
      } else {
        assert.ok(info.upstream);
        assert.equal(`${info.upstream.host}:${info.upstream.port}`, fact.upstream);
        assert.equal(info.upstream.linkUp, fact.link === 'up');
        assert.equal(info.linkReady, fact.link === 'up' && !fact.fullSync);
      }
      if (fact.connectStatus) assert.deepEqual(Object.fromEntries(info.connectStatus ?? []), fact.connectStatus);
      else assert.equal(info.connectStatus, null, 'no repl_connect_status block in this version');
      if (fact.dbReplState) assert.deepEqual(Object.fromEntries(info.dbReplState ?? []), fact.dbReplState);
      assert.equal(pikaFullSyncInProgress(info), fact.fullSync);
    });
  }

  for (const fact of FACTS.filter((f) => f.caughtUpWith !== undefined)) {
    test(`${fact.file} has caught up with ${fact.caughtUpWith}`, () => {
      const r = judgePair(readPikaFixture(fact.caughtUpWith!), readPikaFixture(fact.file));
      assert.equal(r.verdict, 'converged');
      assert.equal(r.behindBytes, '0');
    });
  }

  test('a replica in full sync is never caught up, even against its own (0, 0) position', () => {
    for (const f of ['v3.5.3-slave-full-sync.txt', 'v4.0.1-slave-full-sync.txt']) {
      const standalone = readPikaFixture('v4.0.1-standalone.txt').replace(
        'connected_slaves:0',
        'connected_slaves:1\r\nslave0:ip=127.0.0.1,port=1,conn_fd=1,lag=(db0:0)',
      );
      assert.equal(judgePair(standalone, readPikaFixture(f)).verdict, 'full_sync', f);
    }
  });

  test('the master line of a replica in full sync makes it full_sync before its own INFO is read', () => {
    const master = pika('v4.0.1-master-two-slaves.txt');
    const r = judgePikaReplica({
      address: '10.0.0.3:9221',
      entry: master.replicas[1],
      probe: undefined,
      target: master.positions!,
      masterNow: master.positions!,
    });
    assert.equal(r.result.verdict, 'full_sync');
    assert.equal(r.state, 'full_sync');
  });

  test('lag=(db0:0) on the master does not prove a replica has the data: its own position decides', () => {
    const replica = readPikaFixture('v4.0.1-captured-replica.txt').replace('binlog_offset=0 1254', 'binlog_offset=0 1000');
    const r = judgePair(readPikaFixture('v4.0.1-captured-master.txt'), replica);
    assert.equal(r.verdict, 'behind');
    assert.equal(r.behindBytes, '254');
  });

  test('a replica position greater than the master position is reported as diverged', () => {
    const replica = readPikaFixture('v4.0.1-captured-replica.txt').replace('binlog_offset=0 1254', 'binlog_offset=1 0');
    assert.equal(judgePair(readPikaFixture('v4.0.1-captured-master.txt'), replica).verdict, 'diverged');
  });

  test('the role comes from the role line, not from the # Replication(MASTER) header', () => {
    const text = readPikaFixture('v3.5.1-slave.txt').replace('# Replication(SLAVE)', '# Replication(MASTER)');
    assert.equal(parsePikaReplication(text).role, 'replica');
    assert.equal(parsePikaReplication(readPikaFixture('v3.5.1-master.txt').replace('role:master', 'role:master&&slave')).role, 'replica');
  });

  test('a replica whose master went away (db0:no_connect, db_repl_state NoConnect) is down, not in full sync', () => {
    const text = readPikaFixture('v4.0.1-captured-replica.txt')
      .replace('master_link_status:up', 'master_link_status:down')
      .replace('db0:connected', 'db0:no_connect')
      .replace('is_eligible_for_master_election:true', 'db_repl_state:(db0:NoConnect)\r\nis_eligible_for_master_election:true');
    const info = parsePikaReplication(text);
    assert.equal(info.inFullSync, false);
    assert.equal(info.linkReady, false);
    assert.deepEqual(info.positions?.get('db0'), { filenum: 0n, offset: 1254n }, 'the dbN:no_connect line is not read as a position');
    const r = judgePair(readPikaFixture('v4.0.1-captured-master.txt'), text);
    assert.equal(r.verdict, 'behind');
    assert.match(r.detail ?? '', /master_link_status is down/);
  });

  test('a repl_connect_status db that is not connected keeps the replica from converging', () => {
    const text = readPikaFixture('v4.0.1-slave-caught-up.txt').replace('db1:connected', 'db1:connecting');
    const info = parsePikaReplication(text);
    assert.equal(info.connectStatus?.get('db1'), 'connecting');
    assert.equal(info.linkReady, false);
    assert.equal(info.inFullSync, false);
  });

  test('a repl_connect_status db syncing_full alone marks a full sync', () => {
    const text = readPikaFixture('v4.0.1-slave-full-sync.txt')
      .replace(/^db_repl_state:.*\r\n/m, '')
      .replace('is_eligible_for_master_election:false', 'is_eligible_for_master_election:true');
    const info = parsePikaReplication(text);
    assert.equal(info.dbReplState, null);
    assert.equal(info.inFullSync, true);
  });

  test('is_eligible_for_master_election:false alone marks a full sync', () => {
    const text = readPikaFixture('v4.0.1-captured-replica.txt').replace(
      'is_eligible_for_master_election:true',
      'is_eligible_for_master_election:false',
    );
    assert.equal(parsePikaReplication(text).inFullSync, true);
  });
});

describe('pika lag values', () => {
  test('a lag above 2^62 is unknown; 2^62 itself is still a byte count', () => {
    assert.deepEqual(parsePikaLag(String(PIKA_LAG_WRAP_THRESHOLD)), { kind: 'bytes', bytes: PIKA_LAG_WRAP_THRESHOLD });
    assert.equal(parsePikaLag(String(PIKA_LAG_WRAP_THRESHOLD + 1n)).kind, 'unknown');
    assert.equal(parsePikaLag('18446744073709551615').kind, 'unknown', 'a wrapped subtraction (0 - 1 as u64)');
    assert.equal(parsePikaLag('18446744073709551616').kind, 'unknown', 'past u64');
    assert.equal(parsePikaLag('full syncing').kind, 'full_syncing');
    assert.equal(parsePikaLag('not syncing').kind, 'not_syncing');
    assert.equal(parsePikaLag('-5').kind, 'unknown');
    assert.equal(parsePikaLag('').kind, 'unknown');
  });

  test('a wrapped lag on the master line is never read as caught up', () => {
    const master = readPikaFixture('v4.0.1-captured-master.txt').replace('lag=(db0:0)', 'lag=(db0:18446744073709551000)');
    const info = parsePikaReplication(master);
    assert.equal(info.replicas[0]?.lags.get('db0')?.kind, 'unknown');
    const r = judgePikaReplica({
      address: 'a',
      entry: info.replicas[0],
      probe: undefined,
      target: info.positions!,
      masterNow: info.positions!,
    });
    assert.notEqual(r.result.verdict, 'converged');
    assert.equal(r.lagBytes, null);
  });

  test('several dbs in one lag list are read apart', () => {
    const text =
      'role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=9221,conn_fd=1,lag=(db0:5)(db1:full syncing)(db2:not syncing)\r\n';
    const lags = parsePikaReplication(text).replicas[0]?.lags;
    assert.deepEqual(lags?.get('db0'), { kind: 'bytes', bytes: 5n });
    assert.equal(lags?.get('db1')?.kind, 'full_syncing');
    assert.equal(lags?.get('db2')?.kind, 'not_syncing');
  });
});

describe('redis INFO replication', () => {
  const MASTER = [
    '# Replication',
    'role:master',
    'connected_slaves:2',
    'slave0:ip=127.0.0.1,port=27002,state=online,offset=9007199254740993,lag=0',
    'slave1:ip=::1,port=27003,state=wait_bgsave,offset=0,lag=1',
    'master_failover_state:no-failover',
    'master_replid:e43887604beeab9d049c22ca6ee168bb2509be88',
    'master_replid2:0000000000000000000000000000000000000000',
    'master_repl_offset:9007199254741000',
    'second_repl_offset:-1',
    'repl_backlog_active:1',
    '',
  ].join('\r\n');
  const CHAINED = [
    '# Replication',
    'role:slave',
    'master_host:127.0.0.1',
    'master_port:27001',
    'master_link_status:up',
    'master_last_io_seconds_ago:0',
    'master_sync_in_progress:0',
    'slave_read_repl_offset:50',
    'slave_repl_offset:50',
    'slave_priority:100',
    'connected_slaves:1',
    'slave0:ip=127.0.0.1,port=27003,state=send_bulk,offset=0,lag=0',
    'master_repl_offset:50',
    '',
  ].join('\n');

  test('a master lists its replicas with state and acknowledged offset, exactly beyond 2^53', () => {
    const info = parseRedisReplication(MASTER);
    assert.equal(info.role, 'master');
    assert.equal(info.masterReplOffset, 9007199254741000n);
    assert.equal(info.replId, 'e43887604beeab9d049c22ca6ee168bb2509be88');
    assert.equal(info.connectedReplicas, 2);
    assert.equal(info.upstream, null);
    assert.deepEqual(
      info.replicas.map((r) => [r.address, r.state, r.offset, r.lagSeconds]),
      [
        ['127.0.0.1:27002', 'online', 9007199254740993n, 0],
        ['[::1]:27003', 'wait_bgsave', 0n, 1],
      ],
    );
  });

  test('a chained replica is a replica with an upstream link and replicas of its own (LF endings too)', () => {
    const info = parseRedisReplication(CHAINED);
    assert.equal(info.role, 'replica');
    assert.deepEqual(info.upstream, { host: '127.0.0.1', port: 27001, linkUp: true, syncInProgress: false, replOffset: 50n });
    assert.equal(info.replicas.length, 1);
    assert.equal(info.replicas[0]?.state, 'send_bulk');
  });

  test('a missing role or offset is unknown, not zero', () => {
    const info = parseRedisReplication('connected_slaves:0\r\nmaster_repl_offset:abc\r\n');
    assert.equal(info.role, 'unknown');
    assert.equal(info.masterReplOffset, null);
    const neg = parseRedisReplication('role:master\r\nmaster_repl_offset:-1\r\n');
    assert.equal(neg.masterReplOffset, null);
  });

  test('a garbled slave line is kept with unknown fields rather than dropped', () => {
    const info = parseRedisReplication('role:master\r\nconnected_slaves:1\r\nslave0:garbage\r\nmaster_repl_offset:10\r\n');
    assert.equal(info.replicas.length, 1);
    assert.equal(info.replicas[0]?.address, 'slave0');
    assert.equal(info.replicas[0]?.offset, null);
    assert.equal(info.replicas[0]?.state, '');
  });
});

describe('malformed and truncated text', () => {
  const samples = FACTS.map((f) => readPikaFixture(f.file));

  test('every prefix of every fixture parses without throwing, with either parser', () => {
    for (const text of samples) {
      for (let i = 0; i <= text.length; i++) {
        parsePikaReplication(text.slice(0, i));
        parseRedisReplication(text.slice(0, i));
      }
    }
  });

  test('a truncated caught-up replica never converges unless its position and link lines are whole', () => {
    const master = readPikaFixture('v4.0.1-captured-master.txt');
    const full = readPikaFixture('v4.0.1-captured-replica.txt');
    let convergedPrefixes = 0;
    for (let i = 0; i <= full.length; i++) {
      const prefix = full.slice(0, i);
      const r = judgePair(master, prefix);
      if (r.verdict !== 'converged') continue;
      convergedPrefixes++;
      assert.ok(prefix.includes('master_link_status:up\r\n'), `converged without a whole link line at ${i}`);
      assert.ok(prefix.includes('db0:connected\r\n'), `converged without a whole connect-status line at ${i}`);
      assert.ok(prefix.includes('db0:binlog_offset=0 1254'), `converged without the whole position at ${i}`);
    }
    assert.ok(convergedPrefixes > 0);
  });

  test('a master with a malformed binlog line has no position at all', () => {
    const text = readPikaFixture('v3.5.3-master.txt').replace('binlog_offset=2 384', 'binlog_offset=2 x384');
    assert.equal(parsePikaReplication(text).positions, null);
    const huge = readPikaFixture('v3.5.3-master.txt').replace('binlog_offset=2 384', 'binlog_offset=2 99999999999999999999999');
    assert.equal(parsePikaReplication(huge).positions, null);
  });

  test('empty text, binary noise and arbitrary lines never throw and never yield a role', () => {
    for (const t of ['', '\r\n', '\u0000\u0001\u0002', ':::', 'role', '# Replication(MASTER)']) {
      assert.equal(parsePikaReplication(t).role, 'unknown');
      assert.equal(parseRedisReplication(t).role, 'unknown');
    }
    const vocabulary = fc.constantFrom(
      'role:master',
      'role:slave',
      'slave0:ip=1.2.3.4,port=9,lag=(db0:',
      'slave1:ip=,port=,state=,offset=,lag=',
      'db0:binlog_offset=1 2,safety_purge=none',
      'db0 binlog_offset=',
      'repl_connect_status:',
      'db0:connected',
      'db_repl_state:(db0:WaitDBSync',
      'master_repl_offset:18446744073709551616',
      'connected_slaves:99999999999',
      '#',
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(vocabulary, fc.string()), { maxLength: 20 }), fc.constantFrom('\r\n', '\n'), (lines, eol) => {
        const text = lines.join(eol);
        const p = parsePikaReplication(text);
        const r = parseRedisReplication(text);
        assert.ok(['master', 'replica', 'unknown'].includes(p.role));
        assert.ok(['master', 'replica', 'unknown'].includes(r.role));
      }),
      { numRuns: Math.max(1, Math.round(500 * Number(process.env.FUZZ_RUNS_SCALE ?? 1))) },
    );
  });
});

describe('positions as BigInt', () => {
  test('parseU64 accepts exactly the unsigned 64-bit decimals', () => {
    assert.equal(parseU64('0'), 0n);
    assert.equal(parseU64(' 42 '), 42n);
    assert.equal(parseU64('18446744073709551615'), U64_MAX);
    assert.equal(parseU64('18446744073709551616'), null);
    assert.equal(parseU64('000000000000000000001'), null, 'more than 20 digits');
    for (const bad of ['-1', '+1', '1e3', '0x10', '1 2', '', 'NaN', undefined]) assert.equal(parseU64(bad), null, String(bad));
  });

  test('binlog positions compare as (filenum, offset) tuples', () => {
    const p = (f: bigint, o: bigint) => ({ filenum: f, offset: o });
    assert.equal(compareBinlog(p(1n, 0n), p(0n, U64_MAX)), 1);
    assert.equal(compareBinlog(p(2n, 384n), p(2n, 384n)), 0);
    assert.equal(compareBinlog(p(2n, 383n), p(2n, 384n)), -1);
    assert.equal(binlogDistance(p(2n, 100n), p(2n, 384n)), 284n);
    assert.equal(binlogDistance(p(1n, 100n), p(2n, 384n)), null, 'across files the distance is unknown');
    assert.equal(binlogDistance(p(2n, 500n), p(2n, 384n)), null);
    assert.equal(
      formatPikaPositions(
        new Map([
          ['db10', p(0n, 1n)],
          ['db2', p(3n, 4n)],
        ]),
      ),
      'db2=3:4,db10=0:1',
    );
  });
});

describe('dialect detection', () => {
  test('INFO server decides: pika_version is pika, redis_version is redis, pika wins when both appear', () => {
    assert.deepEqual(dialectFromInfoServer('# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n'), {
      dialect: 'redis',
      version: '7.0.15',
    });
    assert.deepEqual(dialectFromInfoServer(pikaServerInfo(9221)), { dialect: 'pika', version: '4.0.0' });
    assert.equal(dialectFromInfoServer('redis_version:6.2.0\r\npika_version:3.5.0\r\n').dialect, 'pika');
    assert.equal(dialectFromInfoServer('# Server\r\nfoo:bar\r\n').dialect, 'unknown');
    assert.equal(dialectFromInfoServer('').dialect, 'unknown');
  });

  test('the configured backend kind overrides detection', () => {
    assert.equal(resolveDialect('pika', '# Server\r\nredis_version:7.0.15\r\n'), 'pika');
    assert.equal(resolveDialect('redis', pikaServerInfo(1)), 'redis');
    assert.equal(resolveDialect('auto', pikaServerInfo(1)), 'pika');
    assert.equal(resolveDialect('auto', null), 'unknown');
  });

  test('with a silent INFO server, the replication text shape decides', () => {
    assert.equal(resolveDialect('auto', 'foo:bar', readPikaFixture('v3.3.5-master.txt')), 'pika');
    assert.equal(dialectFromReplication('# Replication\r\nrole:master\r\nmaster_repl_offset:0\r\n'), 'redis');
    assert.equal(dialectFromReplication('role:master\r\n'), 'unknown');
  });
});
