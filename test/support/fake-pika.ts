/**
 * A fake Pika for tests: a small RESP server on 127.0.0.1 (port 0) that answers `INFO`,
 * `INFO replication` and `INFO server` with text the test sets (and may change at run time, to
 * simulate a replica catching up), `PING` with `+PONG`, and what Pika lacks (`CLIENT PAUSE`,
 * `WAIT`, `ROLE`, `REPLICAOF`, anything else unknown) with `-ERR unknown or unsupported command`.
 *
 * Also: where the Pika INFO fixtures live, and helpers that rewrite a fixture's replica and master
 * addresses to loopback and real ports — the 10.x / 192.168.x addresses in the fixtures are text
 * for parsers only and are never dialled.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type FakePikaSection = 'replication' | 'server';

export interface FakePikaOptions {
  info: { replication: string; server: string };
}

export interface FakePika {
  readonly host: string;
  readonly port: number;
  /** Replaces the text of one INFO section (CRLF line endings are applied). */
  setInfo(section: FakePikaSection, text: string): void;
  /** Every command received, lowercased name first, in order. */
  readonly commands: string[][];
  /** Client connections open right now. */
  readonly connections: number;
  /** Stops listening and destroys open connections. Idempotent. */
  close(): Promise<void>;
}

/** A Pika 4.0 `INFO server` body (the dialect detector reads `pika_version`). */
export function pikaServerInfo(port: number, version = '4.0.0'): string {
  return [
    '# Server',
    `pika_version:${version}`,
    'pika_git_sha:0000000000000000000000000000000000000000',
    'pika_build_compile_date: Jan  1 2024',
    'os:Linux 6.1.0 x86_64',
    'arch_bits:64',
    'process_id:4242',
    `tcp_port:${port}`,
    'thread_num:1',
    'sync_thread_num:6',
    'uptime_in_seconds:100',
    'uptime_in_days:1',
    'config_file:/pika/conf/pika.conf',
    'server_id:1',
    'run_id:fa9c0d5dcdbf3a3e0f4a8e1a6e2c1e7d0f4c5b6a',
    '',
  ].join('\r\n');
}

export async function startFakePika(opts: FakePikaOptions): Promise<FakePika> {
  const info: Record<FakePikaSection, string> = {
    replication: crlf(opts.info.replication),
    server: crlf(opts.info.server),
  };
  const commands: string[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const reader = new RequestReader();
    socket.on('data', (chunk: Buffer) => {
      for (const args of reader.push(chunk)) {
        commands.push([(args[0] ?? '').toLowerCase(), ...args.slice(1)]);
        const reply = answer(args, info);
        if (reply === null) {
          socket.end('+OK\r\n');
          return;
        }
        socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fake pika: no port');
  let closing: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port: addr.port,
    commands,
    get connections() {
      return sockets.size;
    },
    setInfo(section, text) {
      info[section] = crlf(text);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

/** The reply to one command; null means "+OK, then close" (QUIT). */
function answer(args: string[], info: Record<FakePikaSection, string>): string | null {
  const name = (args[0] ?? '').toLowerCase();
  const sub = (args[1] ?? '').toLowerCase();
  switch (name) {
    case 'ping':
      return '+PONG\r\n';
    case 'quit':
      return null;
    case 'auth':
      return '+OK\r\n';
    case 'info': {
      if (sub === '' || sub === 'all') return bulk(`${info.server}\r\n${info.replication}`);
      if (sub === 'replication' || sub === 'server') return bulk(info[sub]);
      return bulk('');
    }
    case 'client':
      if (sub === 'pause' || sub === 'unpause') return `-ERR unknown or unsupported command 'client ${sub}'\r\n`;
      return '+OK\r\n';
    default:
      // WAIT, ROLE, REPLICAOF and everything else this fake does not know, as Pika says it.
      return `-ERR unknown or unsupported command '${name}'\r\n`;
  }
}

function bulk(text: string): string {
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
}

function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** Incremental reader of RESP arrays of bulk strings and inline commands (enough for clients). */
class RequestReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[][] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: string[][] = [];
    for (;;) {
      const r = this.next();
      if (!r) break;
      out.push(r.args);
      this.buf = this.buf.subarray(r.end);
    }
    return out;
  }

  private next(): { args: string[]; end: number } | null {
    const b = this.buf;
    const eol = b.indexOf('\r\n');
    if (eol < 0) return null;
    if (b[0] !== 0x2a /* '*' */) {
      return {
        args: b
          .subarray(0, eol)
          .toString()
          .trim()
          .split(/\s+/)
          .filter((s) => s !== ''),
        end: eol + 2,
      };
    }
    const n = Number(b.subarray(1, eol).toString());
    let pos = eol + 2;
    const args: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = b.indexOf('\r\n', pos);
      if (e < 0) return null;
      const len = Number(b.subarray(pos + 1, e).toString());
      const start = e + 2;
      if (b.length < start + len + 2) return null;
      args.push(b.subarray(start, start + len).toString());
      pos = start + len + 2;
    }
    return { args, end: pos };
  }
}

// ——— fixtures ———

/** shared/fixtures/pika-info, or $PIKA_FIXTURES_DIR. From dist/test/support/ up to the repo's parent. */
export function pikaFixturesDir(): string {
  return process.env.PIKA_FIXTURES_DIR ?? fileURLToPath(new URL('../../../../shared/fixtures/pika-info/', import.meta.url));
}

export function readPikaFixture(name: string): string {
  return readFileSync(join(pikaFixturesDir(), name), 'utf8');
}

/** Rewrites the `slaveN:ip=..,port=..` lines, in order, to the given addresses. */
export function withReplicaAddresses(text: string, addresses: ReadonlyArray<{ host: string; port: number }>): string {
  let i = 0;
  return text.replace(/^(slave\d+:)ip=[^,]*,port=\d+/gm, (whole, head: string) => {
    const a = addresses[i++];
    return a ? `${head}ip=${a.host},port=${a.port}` : whole;
  });
}

/** Rewrites `master_host` / `master_port`. */
export function withMasterAddress(text: string, host: string, port: number): string {
  return text.replace(/^master_host:.*$/m, `master_host:${host}`).replace(/^master_port:.*$/m, `master_port:${port}`);
}

/** Rewrites one db's binlog position (either spelling), keeping the rest of the line. */
export function withBinlog(text: string, db: string, filenum: number | bigint, offset: number | bigint): string {
  return text.replace(new RegExp(`^(${db}[ :]binlog_offset=)\\d+ \\d+`, 'm'), `$1${filenum} ${offset}`);
}

/** Rewrites the `lag=(...)` of one `slaveN` line. */
export function withLag(text: string, slave: string, lag: string): string {
  return text.replace(new RegExp(`^(${slave}:.*lag=).*?(\\r?)$`, 'm'), `$1${lag}$2`);
}

type After = { after: (fn: () => unknown) => void };

/** A fake Pika answering `replication` as its INFO replication, closed after the test. */
export async function fakePika(t: After, replication: string): Promise<FakePika> {
  const f = await startFakePika({ info: { replication, server: pikaServerInfo(0) } });
  t.after(() => f.close());
  f.setInfo('server', pikaServerInfo(f.port));
  return f;
}

/**
 * A master fake whose `slaveN` lines name two replica fakes (at their real loopback ports), each
 * replica's `master_host/port` naming the master. `setReplica(i, text)` changes what replica i
 * reports; `masterText(lags)` renders the master's INFO with other lags.
 */
export async function pikaGroup(
  t: After,
  masterFixture: string,
  replicaTexts: [string, string],
  masterLags: [string, string] = ['(db0:0)', '(db0:0)'],
) {
  const master = await fakePika(t, '');
  const replicas = [
    await fakePika(t, withMasterAddress(replicaTexts[0], '127.0.0.1', master.port)),
    await fakePika(t, withMasterAddress(replicaTexts[1], '127.0.0.1', master.port)),
  ];
  const masterText = (lags = masterLags, text = masterFixture) =>
    withLag(
      withLag(
        withReplicaAddresses(
          text,
          replicas.map((r) => ({ host: r.host, port: r.port })),
        ),
        'slave0',
        lags[0],
      ),
      'slave1',
      lags[1],
    );
  master.setInfo('replication', masterText());
  const setReplica = (i: number, text: string) => replicas[i]!.setInfo('replication', withMasterAddress(text, '127.0.0.1', master.port));
  return { master, replicas, masterText, setReplica };
}
