/**
 * Errors the sidecar itself raises. Each has a stable `code` that operators grep and tests assert.
 * Backend `-ERR` replies are never turned into these: they are data, forwarded or returned as values.
 */
export type SidecarErrorCode =
  | 'ERR_CONFIG' // invalid configuration: exit code 1
  | 'ERR_STARTUP' // could not start (port in use, ...): exit code 1
  | 'ERR_PROTOCOL' // malformed RESP from a client or the backend
  | 'ERR_BACKEND_UNREACHABLE' // connect to the backend failed or timed out
  | 'ERR_BACKEND_CLOSED' // the backend connection closed under a pending call
  | 'ERR_BACKEND_AUTH' // the control connection's AUTH was refused
  | 'ERR_CONTROL_TIMEOUT' // a control-connection command got no reply in time
  | 'ERR_CONTROL_DESTROYED' // the control connection was destroyed
  | 'ERR_BACKEND_REFUSED' // the backend answered a new connection with an error (its maxclients, ...)
  | 'ERR_POOL_CLOSED'; // the backend pool is draining or closed

export class SidecarError extends Error {
  readonly code: SidecarErrorCode;
  constructor(code: SidecarErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SidecarError';
    this.code = code;
  }
}

export function isSidecarError(err: unknown, code?: SidecarErrorCode): err is SidecarError {
  return err instanceof SidecarError && (code === undefined || err.code === code);
}
