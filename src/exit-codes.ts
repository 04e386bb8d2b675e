/**
 * Every exit code of the sidecar and its tools, declared once: the coordinator decides with
 * `shutdownExitCode`, cli.ts and admin-client.ts return these, docs/reference.md is generated from
 * `EXIT_CODES`, and the pushed `pika_sidecar_exit_code` gauge carries the same numbers.
 */
import type { PhaseOutcome } from './observability/names.js';

export const EXIT_OK = 0;
export const EXIT_CONFIG = 1;
export const EXIT_PHASE_FAILED = 2;
export const EXIT_FORCED = 3;

export interface ExitCodeDeclaration {
  readonly code: number;
  readonly name: string;
  /** What it means for the operator, one line. */
  readonly meaning: string;
}

export const EXIT_CODES: readonly ExitCodeDeclaration[] = [
  { code: EXIT_OK, name: 'ok', meaning: 'every shutdown phase completed or was skipped; no command abandoned; replicas converged' },
  {
    code: EXIT_CONFIG,
    name: 'config',
    meaning: 'invalid configuration, start-up failure or usage error (nothing was served, or a tool failed)',
  },
  {
    code: EXIT_PHASE_FAILED,
    name: 'phase_failed',
    meaning:
      'the shutdown finished but a phase timed out or failed, a command was abandoned (forwarded, its reply not delivered), or a fault (uncaught exception, unhandled rejection) started it: data may be at risk, the report line says which',
  },
  {
    code: EXIT_FORCED,
    name: 'forced',
    meaning: 'a second termination signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT, ...) forced the remaining phases to finish at once',
  },
];

/** What decides a shutdown's exit code. */
export interface ShutdownVerdict {
  /** A second termination signal forced the remaining phases. */
  forced: boolean;
  outcomes: Iterable<PhaseOutcome>;
  /** Commands forwarded whose replies were not delivered. */
  abandoned: number;
  /** An uncaught exception or unhandled rejection started or joined the shutdown. */
  fault: boolean;
}

/** The shutdown's exit code: forced wins; then any timeout, failure, abandoned command or fault is 2. */
export function shutdownExitCode(v: ShutdownVerdict): number {
  if (v.forced) return EXIT_FORCED;
  if (v.abandoned > 0 || v.fault) return EXIT_PHASE_FAILED;
  for (const o of v.outcomes) if (o === 'timed_out' || o === 'failed') return EXIT_PHASE_FAILED;
  return EXIT_OK;
}

/** The admin tools (`drain`, `status`, `check-config`): what their exit codes mean. */
export const EXIT_TOOL_FAILED = 1;
export const EXIT_DRAIN_PAST_DEADLINE = 2;

export const TOOL_EXIT_CODES: readonly ExitCodeDeclaration[] = [
  { code: EXIT_OK, name: 'ok', meaning: 'done: the drain started or finished, the status was shown, the configuration is valid' },
  {
    code: EXIT_TOOL_FAILED,
    name: 'failed',
    meaning: 'invalid configuration, usage error, sidecar unreachable or refusing (HTTP 401/403/other)',
  },
  {
    code: EXIT_DRAIN_PAST_DEADLINE,
    name: 'drain_past_deadline',
    meaning: "`drain --wait`: the drain did not finish before the sidecar's deadline (HTTP 504); see its report",
  },
];
