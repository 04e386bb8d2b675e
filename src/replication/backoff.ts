/**
 * Poll spacing during the convergence wait: exponential from `minMs` to `maxMs`, with jitter so
 * that many sidecars shutting down together do not poll in step. Pure; `random` is injected.
 */
export function pollDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const lo = Math.max(0, Math.min(minMs, maxMs));
  const hi = Math.max(lo, maxMs);
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const base = Math.min(hi, lo * 2 ** exp);
  // "Equal jitter": half the delay is fixed, half is random — never below the minimum.
  const r = Math.min(1, Math.max(0, random()));
  const jittered = base / 2 + (base / 2) * r;
  return Math.round(Math.min(hi, Math.max(lo, jittered)));
}
