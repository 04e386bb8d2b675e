/**
 * `CLIENT PAUSE <ms> WRITE` on the backend during the convergence wait (Redis ≥ 6.2), so writes
 * that bypass the sidecar cannot move the target. Support is detected by trying the command, not
 * from version strings: an error reply (`-ERR unknown or unsupported command` on Pika, a syntax
 * error on Redis < 6.2, NOPERM under ACLs) marks it unsupported for the life of this object.
 *
 * When the pause is lifted (`CLIENT UNPAUSE`) is decided in convergence-wait.ts.
 */
import type { Logger } from '../observability/logger.js';
import type { WritePauseOutcome } from './convergence.js';
import { errorText, isErrorReply, type InfoClient } from './info-client.js';

export class WritePause {
  private supported: boolean | null = null;
  private active = false;

  constructor(
    private readonly client: InfoClient,
    private readonly logger: Logger,
  ) {}

  /** null until tried; then whether the backend accepted `CLIENT PAUSE … WRITE`. */
  get isSupported(): boolean | null {
    return this.supported;
  }

  get isActive(): boolean {
    return this.active;
  }

  async pause(ms: number): Promise<WritePauseOutcome> {
    if (this.supported === false) return 'unsupported';
    const duration = String(Math.max(1, Math.ceil(ms)));
    let reply: unknown;
    // Marked active before the reply: if the caller stops waiting for it (abort), unpause() still
    // sends CLIENT UNPAUSE, which the connection delivers after the PAUSE.
    this.active = true;
    try {
      reply = await this.client.call('CLIENT', 'PAUSE', duration, 'WRITE');
    } catch (err) {
      this.active = false;
      this.logger.warn({ err: errorText(err) }, 'could not pause writes on the backend; waiting without a pause');
      return 'failed';
    }
    if (isErrorReply(reply)) {
      this.active = false;
      this.supported = false;
      this.logger.info(
        { reply: reply.message },
        'the backend does not support client pause write; writes that bypass the sidecar are not held',
      );
      return 'unsupported';
    }
    this.supported = true;
    this.logger.info({ ms: Number(duration) }, 'paused writes on the backend for the rest of the replication budget');
    return 'applied';
  }

  /** Lifts a pause this object applied; a no-op otherwise. Never throws. */
  async unpause(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    try {
      const reply = await this.client.call('CLIENT', 'UNPAUSE');
      if (isErrorReply(reply))
        this.logger.warn({ reply: reply.message }, 'the backend refused client unpause; the pause lapses on its own');
      else this.logger.info('lifted the write pause on the backend');
    } catch (err) {
      this.logger.warn({ err: errorText(err) }, 'could not lift the write pause; it lapses on its own at the end of the budget');
    }
  }
}
