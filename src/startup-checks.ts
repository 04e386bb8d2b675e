/**
 * What start-up decides before anything listens or connects: protected mode's first answer from
 * the backend, the warning for an open admin server, and how many clients fit the open-file limit.
 */
import type { SidecarConfig } from './config/schema.js';
import type { Logger } from './observability/logger.js';
import { clientLimit, openFileCount, openFileLimit } from './proxy/client-limit.js';
import { isLoopbackHost, probeBackendAuth, protectedModeMessage, type BackendAuth } from './backend/protected-mode.js';
import { SidecarError } from './errors.js';

export interface StartupDecisions {
  /** Protected mode applies: the sidecar listens beyond loopback (src/backend/protected-mode.ts). */
  guarded: boolean;
  /** The backend's answer to the protected-mode probe ('unknown' when not guarded or not known yet). */
  backendAuth: BackendAuth;
  /** maxClients, lowered when the open-file limit cannot hold it. */
  maxClients: number;
}

/** Throws ERR_STARTUP when protected mode refuses to front a backend that asks for no password. */
export async function startupChecks(config: SidecarConfig, log: Logger): Promise<StartupDecisions> {
  const guarded = config.protectedMode && !isLoopbackHost(config.listen.host);
  let backendAuth: BackendAuth = 'unknown';
  if (guarded) {
    const probe = await probeBackendAuth(config.backend, config.connectTimeoutMs);
    if (probe.auth === 'not_required') throw new SidecarError('ERR_STARTUP', protectedModeMessage(config.listen, config.backend));
    backendAuth = probe.auth;
    if (probe.auth === 'unknown') {
      log.warn(
        { detail: probe.detail },
        'protected mode: cannot tell yet whether the backend asks for a password; non-loopback clients wait for the answer',
      );
    }
  }
  if (!isLoopbackHost(config.admin.host) && config.adminToken === undefined) {
    log.warn(
      { admin: `${config.admin.host}:${config.admin.port}` },
      'the admin server listens beyond loopback with no adminToken: /metrics and /status are open to anyone who reaches it (/drain and the gate stay loopback-only); set adminToken or listen on loopback',
    );
  }
  // Each client costs two descriptors; keep the limit where accept() cannot fail with EMFILE.
  const limit = clientLimit(config.maxClients, { openFileLimit: openFileLimit(), inUse: openFileCount(), poolSize: config.poolSize });
  if (limit.lowered)
    log.warn(
      { ...limit.lowered, maxClients: limit.limit },
      `maxClients lowered to ${limit.limit} to fit the open-file limit ${limit.lowered.openFileLimit}`,
    );
  return { guarded, backendAuth, maxClients: limit.limit };
}
