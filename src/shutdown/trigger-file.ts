/**
 * Triggers for `exec` preStop hooks that only have `sh`: the appearance of `<dir>/drain` starts the
 * shutdown; `<dir>/drained` is written when the stop gate opens. Watches with fs.watch and, because
 * inotify does not work on every volume, also checks once a second (a stat, not a drain poll).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../observability/logger.js';

export const TRIGGER_FILE = 'drain';
export const DRAINED_FILE = 'drained';

export class TriggerFile {
  private watcher: fs.FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private fired = false;

  constructor(
    private readonly dir: string,
    private readonly onTrigger: () => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    // A marker left by an earlier run would open the gate at once: remove it.
    fs.rmSync(path.join(this.dir, DRAINED_FILE), { force: true });
    fs.rmSync(path.join(this.dir, TRIGGER_FILE), { force: true });
    try {
      this.watcher = fs.watch(this.dir, () => this.check());
      this.watcher.on('error', () => undefined);
    } catch {
      /* the once-a-second check still runs */
    }
    this.timer = setInterval(() => this.check(), 1000);
    this.timer.unref();
    this.log.info({ dir: this.dir }, 'watching for the drain trigger file');
  }

  private check(): void {
    if (this.fired || !fs.existsSync(path.join(this.dir, TRIGGER_FILE))) return;
    this.fired = true;
    this.onTrigger();
  }

  /** Written when the stop gate opens; a preStop `sh` loop waits for it. */
  markDrained(content: string): void {
    const tmp = path.join(this.dir, `.${DRAINED_FILE}.tmp`);
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, path.join(this.dir, DRAINED_FILE));
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }
}
