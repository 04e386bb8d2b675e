/**
 * Termination signals → the coordinator, and the hold (`shutdown.holdUntilSignal`).
 *
 * The first SIGTERM/SIGINT starts (or joins) the shutdown, the second forces it: the coordinator
 * counts. With holdUntilSignal, a shutdown that no signal started (the stop gate, POST /drain, the
 * trigger file) keeps the process and its probes up after the report until a signal comes: a
 * native sidecar (restartPolicy: Always) that exited early would be restarted while the backend
 * still stops. A signal that arrives while holding ends the hold; it is not a second signal.
 */
export const TERMINATION_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type TerminationSignal = (typeof TERMINATION_SIGNALS)[number];

export class SignalHold {
  private signalled = false;
  private adminHeldFlag = false;
  private endHold: (() => void) | undefined;
  private readonly listener = (sig: NodeJS.Signals) => this.onSignal(sig);
  private installed = false;

  constructor(
    private readonly opts: {
      holdUntilSignal: boolean;
      /** The coordinator's onSignal: the first starts the shutdown, the second forces it. */
      toCoordinator: (signal: string) => void;
    },
  ) {}

  /** Listens for the termination signals on this process. Idempotent. */
  install(): void {
    if (this.installed) return;
    this.installed = true;
    for (const s of TERMINATION_SIGNALS) process.on(s, this.listener);
  }

  /** Removes the listeners (tests and the demo run several sidecars in one process). Idempotent. */
  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    for (const s of TERMINATION_SIGNALS) process.off(s, this.listener);
  }

  /** A signal, whether from the process or injected by a test. */
  onSignal(signal: string): void {
    this.signalled = true;
    if (this.endHold) this.endHold();
    else this.opts.toCoordinator(signal);
  }

  /** True while the admin server must stay up past release: holdUntilSignal and no signal yet. */
  get holding(): boolean {
    return this.opts.holdUntilSignal && !this.signalled;
  }

  /** release kept the admin server open instead of closing it (see `holding`). */
  markAdminHeld(): void {
    this.adminHeldFlag = true;
  }

  get adminHeld(): boolean {
    return this.adminHeldFlag;
  }

  /** Resolves once a signal has come (at once when one already did). */
  untilSignal(): Promise<void> {
    if (!this.holding) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.endHold = resolve;
    });
  }
}
