/**
 * The final push of the shutdown metrics to a Prometheus Pushgateway, from release, once: a scrape
 * can miss a shutdown that lasts seconds and can never see the process after its admin server
 * closed, so the push carries the last state (phase outcomes and durations, commands abandoned,
 * `pika_sidecar_exit_code`). The group is replaced (PUT), keyed by job and instance (the pod name).
 *
 * The push is best effort and bounded: a Pushgateway that refuses, is down, or accepts and never
 * answers costs at most `PUSH_TIMEOUT_MS` and a warning, never the exit code.
 */
import { Pushgateway, type Registry } from 'prom-client';
import type { Logger } from './logger.js';

export const PUSH_TIMEOUT_MS = 500;
export const PUSH_JOB = 'pika-sidecar';

export type PushResult = { pushed: true; durationMs: number } | { pushed: false; durationMs: number; error: string };

export async function pushFinalMetrics(opts: {
  url: string;
  registry: Registry;
  instance: string;
  log: Logger;
  timeoutMs?: number;
}): Promise<PushResult> {
  const timeoutMs = opts.timeoutMs ?? PUSH_TIMEOUT_MS;
  const started = Date.now();
  const host = new URL(opts.url).host; // never the credentials
  // prom-client's own timeout is a socket idle timeout; the race bounds connect and DNS as well.
  const gateway = new Pushgateway(opts.url, { timeout: timeoutMs }, opts.registry);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([gateway.push({ jobName: PUSH_JOB, groupings: { instance: opts.instance } }), timedOut]);
    const durationMs = Date.now() - started;
    opts.log.info({ pushgateway: host, durationMs }, 'pushed the final metrics to the pushgateway');
    return { pushed: true, durationMs };
  } catch (err) {
    const durationMs = Date.now() - started;
    const error = (err as Error).message.replace(opts.url, host);
    opts.log.warn({ pushgateway: host, durationMs, err: error }, 'final push to the pushgateway failed; the exit code is unaffected');
    return { pushed: false, durationMs, error };
  } finally {
    clearTimeout(timer);
  }
}
