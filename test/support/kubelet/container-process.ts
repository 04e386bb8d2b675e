/**
 * A container's process on this machine. Every child the play starts is tracked by
 * harness/processes.ts (trackChild), so no test leaves one behind.
 */
import type { ChildProcess } from 'node:child_process';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when it exited. */
  at: number;
}

/** A container's main process on this machine: started by the pod, or a stand-in adopted by it. */
export class LocalProcess {
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;
  private out = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.out = (this.out + d.toString('utf8')).slice(-200_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        this.exit ??= { code, signal, at: Date.now() };
        resolve(this.exit);
      };
      if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode, child.signalCode);
      else child.once('exit', done);
    });
  }

  get running(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get exitInfo(): ProcessExit | undefined {
    return this.exit;
  }

  /** Last 200 kB of stdout and stderr (for failure messages). */
  get output(): string {
    return this.out;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }
}
