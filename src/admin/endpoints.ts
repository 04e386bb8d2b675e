/**
 * Every admin HTTP endpoint, declared once: the server's method check (405 vs 404) and
 * docs/reference.md read this table; a unit test keeps it equal to what the server routes.
 */
export interface AdminEndpoint {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Mutating endpoints take loopback callers or `Authorization: Bearer <adminToken>` only. */
  readonly mutating: boolean;
  /** The answers it gives. */
  readonly answers: string;
  readonly purpose: string;
}

export const ADMIN_ENDPOINTS: readonly AdminEndpoint[] = [
  {
    method: 'GET',
    path: '/healthz',
    mutating: false,
    answers: '200 `ok`',
    purpose: 'liveness: 200 while the process runs, draining included',
  },
  {
    method: 'GET',
    path: '/readyz',
    mutating: false,
    answers: '200 `ready`; 503 with the reason',
    purpose: 'readiness: 503 once `intercept` starts or while the backend is down',
  },
  {
    method: 'GET',
    path: '/metrics',
    mutating: false,
    answers: '200 Prometheus text format',
    purpose: "the sidecar's own registry (see Metrics)",
  },
  {
    method: 'GET',
    path: '/status',
    mutating: false,
    answers: '200 JSON',
    purpose: 'phase, readiness, backend, sessions by mode, commands in flight, replication, the shutdown with its phases and exit code',
  },
  {
    method: 'POST',
    path: '/drain',
    mutating: true,
    answers: '202 started; with `?wait=true` 200 once drained, 504 past the deadline; 403 without loopback or token',
    purpose: 'starts the shutdown (idempotent; joins one under way)',
  },
  {
    method: 'GET',
    path: '/drain/gate',
    mutating: true,
    answers: '200 once `drained`; 504 past the deadline; 403 without loopback or token',
    purpose:
      "the stop gate, for the backend container's httpGet preStop: starts the drain if none runs and holds until the backend may stop",
  },
];

/** The paths the server knows, whatever the method (a wrong method is 405, an unknown path 404). */
export const ADMIN_PATHS: ReadonlySet<string> = new Set(ADMIN_ENDPOINTS.map((e) => e.path));
