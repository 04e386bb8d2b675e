/** Kept for test/support/kubelet.ts until it imports harness/ports.ts itself; everything else imports harness/ports.ts. */
export { freePort, freePikaPort } from '../../harness/ports.js';
