/**
 * A pipelined write load and its verification against the real servers: the demo's act, and the
 * e2e tests' and the soak's measure of "nothing lost, nothing executed unanswered".
 *
 * Load: N connections, each pipelining batches of `SET demo:<conn>:<seq> <value>` over a raw
 * socket (at most two batches outstanding). Replies come back in command order, so each
 * connection's ledger is three numbers and a short list: commands sent, replies received, and the
 * sequence numbers whose reply was an error. Acknowledged = answered `+OK`; sent but unanswered =
 * seq in [replies, sent). A connection that ends is never reopened: during the drain the sidecar
 * closes it at a command boundary, and whatever was sent after that boundary must not run.
 *
 * Verification:
 *  - every acknowledged key is on the replica with its value (MGET in pipelined batches);
 *  - no unanswered key is on the master (EXISTS): a command executed without a reply would be a
 *    phantom execution, unsafe for a client to retry elsewhere.
 */
import net from 'node:net';
import RedisParser from 'redis-parser';
import { RespClient, connectSocket } from './resp-client.js';

export interface LoadOptions {
  host: string;
  port: number;
  /** Client connections (default 8). */
  connections?: number;
  /** SETs per pipelined write (default 32). */
  batch?: number;
  /** Size of each value (default 32 bytes, at least long enough for its own key). */
  valueBytes?: number;
  /** Ceiling on the whole load's send rate (default: none). Keeps the servers' memory modest. */
  maxWritesPerSec?: number;
}

export interface LoadStats {
  connections: number;
  openConnections: number;
  sent: number;
  acknowledged: number;
  errors: number;
  /** Sent and not yet answered, on connections still open. */
  inFlight: number;
  /** Sent and never answered: their connection closed first. */
  unanswered: number;
}

/** What one connection did: enough to name every key it acknowledged or left unanswered. */
export interface ConnectionLedger {
  conn: number;
  sent: number;
  replies: number;
  /** Seqs answered with an error reply (neither acknowledged nor unanswered). */
  errorSeqs: number[];
}

export function demoKey(conn: number, seq: number): string {
  return `demo:${conn}:${seq}`;
}

/** The value written under demoKey(conn, seq): names its key, padded to `bytes`. */
export function demoValue(conn: number, seq: number, bytes: number): string {
  const head = `v:${conn}:${seq}:`;
  return head.length >= bytes ? head : head + 'x'.repeat(bytes - head.length);
}

const SET_HEADER = '*3\r\n$3\r\nSET\r\n';

class LoadConnection {
  sent = 0;
  replies = 0;
  readonly errorSeqs: number[] = [];
  open = true;
  readonly closed: Promise<void>;
  private readonly parser: RedisParser;

  constructor(
    readonly conn: number,
    private readonly socket: net.Socket,
    private readonly batch: number,
    private readonly valueBytes: number,
    private readonly keepSending: () => boolean,
    /** This connection's share of the rate ceiling, in commands per millisecond. */
    private readonly perMs: number,
  ) {
    this.parser = new RedisParser({
      returnReply: () => {
        this.replies++;
      },
      returnError: () => {
        this.errorSeqs.push(this.replies);
        this.replies++;
      },
      // Not RESP: stop reading; the ledger keeps what was counted so far.
      returnFatalError: () => socket.destroy(),
    });
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.parser.execute(d);
      this.topUp();
    });
    // The sidecar closing the connection is the expected end; errors (EPIPE, ECONNRESET) end it too.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.open = false;
        resolve();
      }),
    );
  }

  get inFlight(): number {
    return this.sent - this.replies;
  }

  private retry: NodeJS.Timeout | undefined;
  /** Token bucket for the rate ceiling: starts with two batches, never holds more than two. */
  private credit = Infinity;
  private creditAt = Date.now();

  private refill(): void {
    if (this.perMs === Infinity) return;
    const now = Date.now();
    if (this.credit === Infinity) this.credit = 2 * this.batch;
    this.credit = Math.min(2 * this.batch, this.credit + (now - this.creditAt) * this.perMs);
    this.creditAt = now;
  }

  /** Keeps at most two batches outstanding, within the rate ceiling. */
  topUp(): void {
    while (this.open && !this.socket.destroyed && this.keepSending() && this.inFlight <= this.batch) {
      this.refill();
      if (this.credit < this.batch) {
        // Over the ceiling: look again shortly (one timer at a time).
        this.retry ??= setTimeout(() => {
          this.retry = undefined;
          this.topUp();
        }, 5);
        return;
      }
      this.sendBatch();
    }
  }

  private sendBatch(): void {
    let out = '';
    for (let i = 0; i < this.batch; i++) {
      const seq = this.sent + i;
      const key = demoKey(this.conn, seq);
      const value = demoValue(this.conn, seq, this.valueBytes);
      out += `${SET_HEADER}$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
    }
    this.sent += this.batch;
    this.credit -= this.batch;
    this.socket.write(out);
  }

  ledger(): ConnectionLedger {
    return { conn: this.conn, sent: this.sent, replies: this.replies, errorSeqs: [...this.errorSeqs] };
  }

  destroy(): void {
    clearTimeout(this.retry);
    this.socket.destroy();
  }
}

/** Pipelined SET load over N connections; runs until the server closes them (or stop()). */
export class WriteLoad {
  /** Resolves once every connection has ended. */
  readonly finished: Promise<void>;

  private constructor(
    private readonly conns: LoadConnection[],
    readonly valueBytes: number,
    private readonly switches: { sending: boolean },
  ) {
    this.finished = Promise.all(conns.map((c) => c.closed)).then(() => undefined);
  }

  /** Opens every connection (at most 3 s each), then starts writing on all of them at once. */
  static async start(opts: LoadOptions): Promise<WriteLoad> {
    const n = opts.connections ?? 8;
    const batch = opts.batch ?? 32;
    const valueBytes = opts.valueBytes ?? 32;
    const perConnPerMs = opts.maxWritesPerSec !== undefined ? opts.maxWritesPerSec / n / 1000 : Infinity;
    const sockets = await Promise.allSettled(Array.from({ length: n }, () => connectSocket(opts.host, opts.port)));
    const failed = sockets.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      for (const s of sockets) if (s.status === 'fulfilled') s.value.destroy();
      throw new Error(`write load could not connect to ${opts.host}:${opts.port}: ${(failed.reason as Error).message}`);
    }
    const switches = { sending: true };
    const conns = sockets.map(
      (s, i) =>
        new LoadConnection(i, (s as PromiseFulfilledResult<net.Socket>).value, batch, valueBytes, () => switches.sending, perConnPerMs),
    );
    const load = new WriteLoad(conns, valueBytes, switches);
    for (const c of conns) c.topUp();
    return load;
  }

  stats(): LoadStats {
    let sent = 0;
    let replies = 0;
    let errors = 0;
    let open = 0;
    let inFlight = 0;
    for (const c of this.conns) {
      sent += c.sent;
      replies += c.replies;
      errors += c.errorSeqs.length;
      if (c.open) {
        open++;
        inFlight += c.inFlight;
      }
    }
    return {
      connections: this.conns.length,
      openConnections: open,
      sent,
      acknowledged: replies - errors,
      errors,
      inFlight,
      unanswered: sent - replies - inFlight,
    };
  }

  ledger(): ConnectionLedger[] {
    return this.conns.map((c) => c.ledger());
  }

  /** Sends nothing more; open connections stay open. */
  stopSending(): void {
    this.switches.sending = false;
  }

  /** Cleanup: every connection now. */
  destroy(): void {
    this.switches.sending = false;
    for (const c of this.conns) c.destroy();
  }
}

export interface Verdict {
  /** Writes answered +OK by the sidecar. */
  acknowledged: number;
  /** Writes sent whose reply never came (their connection was closed first). */
  unanswered: number;
  errorReplies: number;
  /** Acknowledged keys absent from the replica: lost writes. */
  missingOnReplica: number;
  /** Acknowledged keys on the replica with another value. */
  wrongValueOnReplica: number;
  /** Unanswered keys present on the master: executed without a reply. */
  phantomExecutions: number;
  pass: boolean;
}

const KEYS_PER_COMMAND = 1000;
const COMMANDS_PER_ROUND_TRIP = 16;

/** Checks the ledger against the real servers (see the module comment). */
export async function verifyWrites(
  ledger: readonly ConnectionLedger[],
  servers: { replica: { host: string; port: number }; master: { host: string; port: number } },
  valueBytes: number,
): Promise<Verdict> {
  const unanswered: string[] = [];
  let errorReplies = 0;
  let acknowledged = 0;
  for (const c of ledger) {
    errorReplies += new Set(c.errorSeqs).size;
    for (let seq = c.replies; seq < c.sent; seq++) unanswered.push(demoKey(c.conn, seq));
  }

  let missingOnReplica = 0;
  let wrongValueOnReplica = 0;
  const replica = await RespClient.connect(servers.replica.host, servers.replica.port);
  try {
    const keys = ackedKeys(ledger);
    for (;;) {
      const round = take(keys, KEYS_PER_COMMAND * COMMANDS_PER_ROUND_TRIP);
      if (round.length === 0) break;
      acknowledged += round.length;
      const commands: string[][] = [];
      for (let j = 0; j < round.length; j += KEYS_PER_COMMAND) {
        commands.push(['MGET', ...round.slice(j, j + KEYS_PER_COMMAND).map(([c, s]) => demoKey(c, s))]);
      }
      const replies = await replica.pipeline(commands, 30_000);
      replies.forEach((reply, k) => {
        if (!Array.isArray(reply)) throw new Error('MGET on the replica did not return an array');
        reply.forEach((value: unknown, m) => {
          const [conn, seq] = round[k * KEYS_PER_COMMAND + m] ?? [-1, -1];
          if (value === null) missingOnReplica++;
          else if (value !== demoValue(conn, seq, valueBytes)) wrongValueOnReplica++;
        });
      });
    }
  } finally {
    replica.close();
  }

  let phantomExecutions = 0;
  const master = await RespClient.connect(servers.master.host, servers.master.port);
  try {
    const commands: string[][] = [];
    for (let i = 0; i < unanswered.length; i += KEYS_PER_COMMAND) commands.push(['EXISTS', ...unanswered.slice(i, i + KEYS_PER_COMMAND)]);
    const replies = commands.length > 0 ? await master.pipeline(commands, 30_000) : [];
    for (const r of replies) {
      if (typeof r !== 'number') throw new Error('EXISTS on the master did not return an integer');
      phantomExecutions += r;
    }
  } finally {
    master.close();
  }

  return {
    acknowledged,
    unanswered: unanswered.length,
    errorReplies,
    missingOnReplica,
    wrongValueOnReplica,
    phantomExecutions,
    pass: acknowledged > 0 && missingOnReplica === 0 && wrongValueOnReplica === 0 && phantomExecutions === 0,
  };
}

/** Every acknowledged (conn, seq), connection by connection, without materialising them all. */
function* ackedKeys(ledger: readonly ConnectionLedger[]): Generator<[number, number]> {
  for (const c of ledger) {
    const errors = new Set(c.errorSeqs);
    for (let seq = 0; seq < c.replies; seq++) if (!errors.has(seq)) yield [c.conn, seq];
  }
}

function take<T>(it: Iterator<T>, n: number): T[] {
  const out: T[] = [];
  while (out.length < n) {
    const r = it.next();
    if (r.done === true) break;
    out.push(r.value);
  }
  return out;
}
