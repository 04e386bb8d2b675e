/**
 * One root pino logger; components take `logger.child({ component })`.
 * Messages are lowercase sentences that state the decision; objects first, message last.
 * Secrets never appear: the redact paths below are a second line of defence — the code never
 * passes command arguments, passwords or tokens to a log call in the first place.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/schema.js';

export type { Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  'backendPassword',
  '*.backendPassword',
  'adminToken',
  '*.adminToken',
  'token',
  'authorization',
  '*.authorization',
  'args',
  '*.args',
];

export function createLogger(level: LogLevel = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, name: 'pika-sidecar' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
