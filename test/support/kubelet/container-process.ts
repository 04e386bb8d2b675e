/**
 * A container's process on this machine. Every child the play starts is tracked by
 * harness/processes.ts (trackChild), so no test leaves one behind.
 */
import type { ChildProcess } from 'node:child_process';
import { exitOfChild, tail } from '../../../harness/processes.js';

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
  private readonly out: () => string;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.out = tail([child.stdout, child.stderr], 200_000);
    this.exited = exitOfChild(child).then((e) => (this.exit ??= { ...e, at: Date.now() }));
  }

  get running(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get exitInfo(): ProcessExit | undefined {
    return this.exit;
  }

  /** Last 200 kB of stdout and stderr (for failure messages). */
  get output(): string {
    return this.out();
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }
}
