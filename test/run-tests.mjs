// Runs the compiled test files with node's test runner.
// Usage: node test/run-tests.mjs [unit|integration|e2e ...]   (default: all suites, in that order)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const suites = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];

function collect(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = suites.flatMap((s) => collect(join('dist', 'test', s)));
if (files.length === 0) {
  console.error(`no test files found for suites: ${suites.join(', ')} (did the build run?)`);
  process.exit(1);
}
// One file at a time: integration tests start real servers and measure time; two cores are shared.
const res = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-timeout=240000', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
