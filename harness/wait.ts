/** Bounded waiting on conditions and events: nothing here sleeps a fixed time to let things happen. */
import { once, type EventEmitter } from 'node:events';

export interface WaitOptions {
  /** Default 10 s. */
  timeoutMs?: number;
  /** Between checks; default 20 ms. */
  intervalMs?: number;
  /** Named in the timeout's message. */
  what?: string;
  /** Stops the wait (it throws) when aborted. */
  signal?: AbortSignal;
}

/**
 * Polls `check` until it returns a truthy value, at most `timeoutMs`; a check that throws is tried
 * again, and the last error is named in the timeout's message.
 */
export async function waitFor<T>(check: () => T | Promise<T>, opts: WaitOptions = {}): Promise<Exclude<T, null | undefined | false>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 20;
  const what = opts.what ?? 'condition';
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (opts.signal?.aborted === true) throw new Error(`stopped while waiting for ${what}`);
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, null | undefined | false>;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** once(emitter, event) with a deadline. */
export async function onceWithin(emitter: EventEmitter, event: string, timeoutMs = 10_000): Promise<unknown[]> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), timeoutMs);
  try {
    return await once(emitter, event, { signal: ac.signal });
  } catch (err) {
    if (ac.signal.aborted) throw new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`);
    throw err;
  } finally {
    clearTimeout(t);
  }
}
