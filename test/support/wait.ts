/** Bounded waiting on conditions and events: tests never sleep for a fixed time to let things happen. */
import { once, type EventEmitter } from 'node:events';

export async function waitFor<T>(
  check: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<Exclude<T, null | undefined | false>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, null | undefined | false>;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${why}`);
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
