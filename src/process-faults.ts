/**
 * Process-wide faults: an uncaught exception or unhandled rejection is logged, recorded by the
 * coordinator (the exit code is at least 2) and starts the orderly shutdown. Also the test-only
 * fault injection behind PIKA_SIDECAR_TEST_INJECT_FAULT, which exercises exactly that path.
 */
import type { Logger } from './observability/logger.js';
import type { ShutdownCoordinator } from './shutdown/coordinator.js';

/** Test-only: `uncaught_exception` or `unhandled_rejection` (see injectedFault). */
export const INJECT_FAULT_ENV = 'PIKA_SIDECAR_TEST_INJECT_FAULT';

type FaultKind = 'uncaught_exception' | 'unhandled_rejection';

/** Installs the two process handlers; returns their removal. */
export function installFaultHandlers(coordinator: ShutdownCoordinator, log: Logger): () => void {
  const onFault = (kind: FaultKind, err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    log.error(
      { err: err instanceof Error ? { message, stack: err.stack } : message, kind },
      `${kind.replace('_', ' ')}; starting the orderly shutdown (exit code 2)`,
    );
    void coordinator.onFault(kind, message);
  };
  const onUncaught = (err: unknown) => onFault('uncaught_exception', err);
  const onUnhandled = (err: unknown) => onFault('unhandled_rejection', err);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUnhandled);
  return () => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUnhandled);
  };
}

/**
 * Off unless PIKA_SIDECAR_TEST_INJECT_FAULT is set. The returned arm() (called on the first
 * /readyz answer) throws an uncaught exception or leaves a rejected promise unhandled 100 ms
 * later, once, to test the fault path end to end.
 */
export function injectedFault(log: Logger, env: NodeJS.ProcessEnv = process.env): () => void {
  const injected = env[INJECT_FAULT_ENV];
  if (injected !== 'uncaught_exception' && injected !== 'unhandled_rejection') return () => {};
  let armed = false;
  return () => {
    if (armed) return;
    armed = true;
    log.warn({ fault: injected }, `${INJECT_FAULT_ENV} is set: injecting a fault (tests only)`);
    setTimeout(() => {
      if (injected === 'uncaught_exception') throw new Error('injected uncaught exception');
      void Promise.reject(new Error('injected unhandled rejection'));
    }, 100);
  };
}
