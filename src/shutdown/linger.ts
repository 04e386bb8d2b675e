/**
 * The metrics linger, inside the release budget. After the stop gate opens, the admin server stays
 * up `shutdown.metricsLinger` so a scraper sees `drained` and the exit code; then release still has
 * to close the admin server, push to the Pushgateway and flush the logs. `RELEASE_RESERVE_MS` is kept
 * for that: the start-up check refuses a linger that does not leave it (validate.ts), and at run time
 * the linger is cut to what is left of release minus the reserve (release may start late when the
 * overall deadline cuts its budget, or the pollers were slow to close). A long linger therefore never
 * makes release time out, so it never turns a clean shutdown into exit 2.
 */

/** What follows the linger inside release: admin close (200 ms grace), the final push, the log flush. */
export const RELEASE_RESERVE_MS = 1000;

/** How long the linger may last now: what was configured, cut to leave the reserve before release ends. */
export function lingerMs(wantedMs: number, releaseEndsAt: number, now: number): number {
  return Math.max(0, Math.min(wantedMs, releaseEndsAt - now - RELEASE_RESERVE_MS));
}
