/**
 * Termination signals → the coordinator, and the hold (`shutdown.holdUntilSignal`).
 *
 * The signals the sidecar handles, and what each does. Node's default for most of them is to die
 * at once, without a shutdown report; here every one of them starts the ordered shutdown (or joins
 * the one under way), and any second one forces it (exit code 3): the coordinator counts.
 *
 * docs/security.md renders the table (renderSignalTable); a test keeps the two in step.
 *
 * Not handled, on purpose: SIGKILL and SIGSTOP (cannot be caught); SIGUSR1 (Node starts its
 * inspector; left alone); SIGPROF (V8's CPU profiler uses it); SIGPIPE (Node ignores it);
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL (the process is not in a state to run JavaScript);
 * SIGWINCH, SIGCHLD, SIGCONT, SIGURG (not termination signals).
 *
 * With holdUntilSignal, a shutdown that no signal started (the stop gate, POST /drain, the
 * trigger file) keeps the process and its probes up after the report until a signal comes: a
 * native sidecar (restartPolicy: Always) that exited early would be restarted while the backend
 * still stops. A signal that arrives while holding ends the hold; it is not a second signal.
 */
export interface SignalRule {
  signal: NodeJS.Signals;
  /** Who sends it, and why it is a shutdown. */
  why: string;
}

export const TERMINATION_SIGNALS: readonly SignalRule[] = [
  { signal: 'SIGTERM', why: 'the kubelet, docker stop, systemd: the normal way to stop the sidecar' },
  { signal: 'SIGINT', why: 'Ctrl-C in a terminal' },
  { signal: 'SIGHUP', why: 'the terminal or session went away; the sidecar has no configuration to reload, so it stops as for SIGTERM' },
  { signal: 'SIGQUIT', why: 'Ctrl-\\ in a terminal, some supervisors; orderly here (no core dump)' },
  { signal: 'SIGUSR2', why: 'nothing in the sidecar uses it; Node would die at once' },
  { signal: 'SIGALRM', why: 'a stray alarm(2) timer; Node would die at once' },
  { signal: 'SIGVTALRM', why: 'as SIGALRM' },
  { signal: 'SIGXCPU', why: 'the CPU time limit (RLIMIT_CPU) was reached; the kernel sends SIGKILL later' },
  { signal: 'SIGXFSZ', why: 'a file grew past RLIMIT_FSIZE; the write fails with EFBIG instead of the process dying' },
  { signal: 'SIGPWR', why: 'power failure notice (Linux); stop while there is time' },
];

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
    for (const { signal } of TERMINATION_SIGNALS) process.on(signal, this.listener);
  }

  /** Removes the listeners (tests and the demo run several sidecars in one process). Idempotent. */
  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    for (const { signal } of TERMINATION_SIGNALS) process.off(signal, this.listener);
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

/** The Markdown table of docs/security.md (between its `signals:begin/end` markers). */
export function renderSignalTable(): string {
  const rows = TERMINATION_SIGNALS.map((s) => `| \`${s.signal}\` | ${s.why.replaceAll('|', '\\|')} |`);
  return ['| signal | why it is a shutdown |', '|---|---|', ...rows].join('\n');
}
