/** A pino logger whose JSON lines land in arrays, for tests that assert on log lines. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { REDACT_PATHS } from '../../src/observability/logger.js';
import type { LogLevel } from '../../src/config/schema.js';

export interface CapturedLogs {
  logger: Logger;
  /** Every line, parsed (a line that is not JSON is kept as `{ unparsed: line }`). */
  logs: Array<Record<string, unknown>>;
  /** Every line as written: what a secret must never appear in. */
  raw: string[];
}

/** Pass `logs` to collect into an array the caller already holds. */
export function captureLogs(level: LogLevel = 'debug', logs: Array<Record<string, unknown>> = []): CapturedLogs {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (line === '') continue;
        raw.push(line);
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          logs.push({ unparsed: line });
        }
      }
      cb();
    },
  });
  // The production redaction, so tests see what operators would.
  const logger = pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
  return { logger, logs, raw };
}
