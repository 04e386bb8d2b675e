/** Cleanup that runs last-registered-first (node:test's t.after runs in registration order). */
import type { TestContext } from 'node:test';

export function deferrer(t: TestContext): (fn: () => unknown) => void {
  const fns: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of fns.reverse()) {
      try {
        await fn();
      } catch {
        /* cleanup is best effort */
      }
    }
  });
  return (fn) => fns.push(fn);
}
