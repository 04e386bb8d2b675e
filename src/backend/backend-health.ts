/**
 * Health of the backend, from PINGs on the control connection: drives `backend_up` and /readyz.
 * The loop's timer is unref'd and the loop stops with close()/destroy().
 */
import { EventEmitter } from 'node:events';
import type { ControlConnection } from './control-connection.js';
import { ErrorReply } from './control-connection.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export class BackendHealth extends EventEmitter {
  private up = false;
  private checkedOnce = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError: string | undefined;
  private readonly log: Logger;

  constructor(
    private readonly control: ControlConnection,
    private readonly opts: { intervalMs: number; logger: Logger; metrics: Metrics },
  ) {
    super();
    this.log = opts.logger.child({ component: 'health' });
    opts.metrics.backendUp.set(0);
  }

  get isUp(): boolean {
    return this.up;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  /** First check now; then every interval. Resolves after the first check. */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async check(): Promise<boolean> {
    let up: boolean;
    try {
      const reply = await this.control.call('PING');
      up = !(reply instanceof ErrorReply) || /^(NOAUTH|LOADING)/.test(reply.message) === false;
      this.lastError = up ? undefined : String(reply);
    } catch (err) {
      up = false;
      this.lastError = (err as Error).message;
    }
    if (this.stopped) return up;
    this.setUp(up);
    return up;
  }

  private setUp(up: boolean): void {
    const first = !this.checkedOnce;
    this.checkedOnce = true;
    if (up === this.up && !first) return;
    this.up = up;
    this.opts.metrics.backendUp.set(up ? 1 : 0);
    if (up) this.log.info({ backend: this.control.address }, 'backend is up');
    else this.log.warn({ backend: this.control.address, err: this.lastError }, 'backend is down; readiness fails until it answers');
    this.emit('change', up);
  }

  /** Stops the loop (the control connection is released separately). Idempotent. */
  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
