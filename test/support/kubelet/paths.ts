/** Where the play finds the repository and its deploy/ directory. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/support/kubelet/paths.js -> the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');
export const DOCKERFILE = join(DEPLOY_DIR, 'Dockerfile');
