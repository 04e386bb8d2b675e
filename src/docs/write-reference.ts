/** `npm run docs`: rewrites docs/reference.md from the code (run from the repository root). */
import { writeFileSync } from 'node:fs';
import { REFERENCE_PATH, renderReference } from './reference.js';

writeFileSync(REFERENCE_PATH, renderReference());
console.log(`wrote ${REFERENCE_PATH}`);
