/**
 * The resources `release` lets go of, declared once with their dependencies, released in
 * topological order: a resource is released only after every resource named in its `after`.
 * Each gets `close()` within the remaining budget; on timeout or force, `destroy()`.
 * One failure never skips the rest.
 */
import type { Logger } from '../observability/logger.js';

export interface Resource {
  name: string;
  /** Names of resources that must be released before this one. */
  after: readonly string[];
  close(signal: AbortSignal): Promise<void> | void;
  destroy(): void;
}

export interface ReleaseRecord {
  name: string;
  outcome: 'closed' | 'destroyed' | 'failed';
  durationMs: number;
  error?: string;
}

export class ResourceGraph {
  private readonly resources = new Map<string, Resource>();

  add(r: Resource): this {
    if (this.resources.has(r.name)) throw new Error(`resource ${r.name} declared twice`);
    this.resources.set(r.name, r);
    return this;
  }

  /** Topological order; throws on a cycle or an unknown dependency (a programming error). */
  order(): Resource[] {
    const out: Resource[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (r: Resource, path: string[]) => {
      const s = state.get(r.name);
      if (s === 'done') return;
      if (s === 'visiting') throw new Error(`resource graph has a cycle: ${[...path, r.name].join(' -> ')}`);
      state.set(r.name, 'visiting');
      for (const dep of r.after) {
        const d = this.resources.get(dep);
        if (!d) throw new Error(`resource ${r.name} depends on unknown resource ${dep}`);
        visit(d, [...path, r.name]);
      }
      state.set(r.name, 'done');
      out.push(r);
    };
    for (const r of this.resources.values()) visit(r, []);
    return out;
  }

  async release(signal: AbortSignal, log: Logger): Promise<ReleaseRecord[]> {
    const records: ReleaseRecord[] = [];
    for (const r of this.order()) {
      const started = Date.now();
      if (signal.aborted) {
        safeDestroy(r);
        records.push({ name: r.name, outcome: 'destroyed', durationMs: 0 });
        log.warn({ resource: r.name }, `destroyed ${r.name} (no time left to close it)`);
        continue;
      }
      try {
        await raceAbort(Promise.resolve(r.close(signal)), signal);
        if (signal.aborted) {
          safeDestroy(r);
          records.push({ name: r.name, outcome: 'destroyed', durationMs: Date.now() - started });
          log.warn({ resource: r.name }, `destroyed ${r.name} (its close ran out of time)`);
        } else {
          records.push({ name: r.name, outcome: 'closed', durationMs: Date.now() - started });
          log.info({ resource: r.name, durationMs: Date.now() - started }, `released ${r.name}`);
        }
      } catch (err) {
        safeDestroy(r);
        const error = (err as Error).message;
        records.push({ name: r.name, outcome: 'failed', durationMs: Date.now() - started, error });
        log.error({ resource: r.name, err: error }, `closing ${r.name} failed; destroyed it`);
      }
    }
    return records;
  }
}

function safeDestroy(r: Resource): void {
  try {
    r.destroy();
  } catch {
    /* destroy is best effort by contract */
  }
}

function raceAbort(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
