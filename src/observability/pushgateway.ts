/**
 * The final Pushgateway push: a scrape may miss a shutdown that lasts seconds, so `release` pushes
 * the registry once, with a short timeout of its own.
 */
import os from 'node:os';
import { Pushgateway, type Registry } from 'prom-client';
import type { Logger } from './logger.js';

const PUSH_TIMEOUT_MS = 1000;

export async function pushFinalMetrics(url: string, registry: Registry, logger: Logger): Promise<void> {
  const gateway = new Pushgateway(url, { timeout: PUSH_TIMEOUT_MS }, registry);
  await gateway.pushAdd({ jobName: 'pika-sidecar', groupings: { instance: os.hostname() } });
  logger.info({ pushgateway: new URL(url).host }, 'pushed the final metrics to the pushgateway');
}
