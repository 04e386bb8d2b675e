/**
 * Real Prometheus, promtool and Pushgateway processes for tests (Debian's prometheus 2.42 and
 * prometheus-pushgateway 1.5, installed by .ci/ensure-deps.sh), on free loopback ports, each in its
 * own temp directory and killed in cleanup. `missingBinary` says why a test must skip where they
 * cannot be installed.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../harness/ports.js';
import { spawnTracked, stopChild, tail } from '../../harness/processes.js';
import { waitFor } from '../../harness/wait.js';

export const PROMETHEUS = 'prometheus';
export const PROMTOOL = 'promtool';
export const PUSHGATEWAY = 'prometheus-pushgateway';

/** A skip message when `bin` is not on PATH (CI installs it; this machine may not be able to). */
export function missingBinary(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { stdio: 'ignore' });
  if (r.error === undefined) return undefined;
  return `${bin} is not installed (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); run bash .ci/ensure-deps.sh as root to install Debian's package`;
}

/** promtool with arguments (and stdin); resolves with its exit code and output. */
export function promtool(args: string[], input?: string): { code: number | null; output: string } {
  const r = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

class ManagedProcess {
  private readonly output: () => string;
  constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
  ) {
    this.output = tail([proc.stdout, proc.stderr], 20_000);
  }

  get log(): string {
    return this.output();
  }

  async stop(): Promise<void> {
    await stopChild(this.proc, 5000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function startUntilReady(
  bin: string,
  args: (port: number, dir: string) => string[],
  dirPrefix: string,
  prepare?: (dir: string) => void,
) {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), dirPrefix));
    prepare?.(dir);
    const p = new ManagedProcess(spawnTracked(bin, args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] }), dir);
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        async () => {
          if (p.proc.exitCode !== null) throw new Error(`${bin} exited`);
          return (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: `${bin} on port ${port} to be ready` },
      );
      return { p, port, url };
    } catch (err) {
      lastErr = new Error(`${(err as Error).message}\n${p.log}`);
      await p.stop();
    }
  }
  throw lastErr;
}

export interface PromSample {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

export class Prometheus {
  private constructor(
    private readonly p: ManagedProcess,
    readonly url: string,
  ) {}

  /** Prometheus with `config` (YAML text) as its configuration. */
  static async start(config: string): Promise<Prometheus> {
    const { p, url } = await startUntilReady(
      PROMETHEUS,
      (port, dir) => [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      'pika-sidecar-prometheus-',
      (dir) => writeFileSync(join(dir, 'prometheus.yml'), config),
    );
    return new Prometheus(p, url);
  }

  get log(): string {
    return this.p.log;
  }

  stop(): Promise<void> {
    return this.p.stop();
  }

  private async api<T>(path: string, params: Record<string, string>): Promise<T> {
    const res = await fetch(`${this.url}${path}?${new URLSearchParams(params).toString()}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
    return body.data;
  }

  /** An instant query's vector. */
  async query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const data = await this.api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
      '/api/v1/query',
      { query: expr },
    );
    return data.result;
  }

  /** The raw JSON of a range query (what the chart script draws) and its matrix. */
  async queryRange(expr: string, startS: number, endS: number, stepS: number): Promise<{ json: unknown; result: PromSample[] }> {
    const params = { query: expr, start: String(startS), end: String(endS), step: String(stepS) };
    const res = await fetch(`${this.url}/api/v1/query_range?${new URLSearchParams(params).toString()}`);
    const json = (await res.json()) as { status: string; data: { result: PromSample[] }; error?: string };
    if (json.status !== 'success') throw new Error(`query_range ${expr}: ${json.error ?? res.status}`);
    return { json, result: json.data.result };
  }

  /** Scrape targets and their health. */
  async targets(): Promise<Array<{ health: string; labels: Record<string, string>; lastError: string }>> {
    const data = await this.api<{ activeTargets: Array<{ health: string; labels: Record<string, string>; lastError: string }> }>(
      '/api/v1/targets',
      {},
    );
    return data.activeTargets;
  }
}

export class PushgatewayProcess {
  private constructor(
    private readonly p: ManagedProcess,
    readonly url: string,
  ) {}

  static async start(): Promise<PushgatewayProcess> {
    const { p, url } = await startUntilReady(
      PUSHGATEWAY,
      (port) => [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      'pika-sidecar-pushgateway-',
    );
    return new PushgatewayProcess(p, url);
  }

  get log(): string {
    return this.p.log;
  }

  stop(): Promise<void> {
    return this.p.stop();
  }

  /** Every pushed sample line (`name{labels} value`) of the group job/instance, from its /metrics. */
  async samples(job: string, instance: string): Promise<string[]> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    return text.split('\n').filter((l) => !l.startsWith('#') && l.includes(`job="${job}"`) && l.includes(`instance="${instance}"`));
  }
}
