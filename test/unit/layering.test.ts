/**
 * Which directory may import which: src/ (the product, all the image holds) imports only src/;
 * harness/ (processes, redis-server, the CLI as a child, RESP client, waits) imports src/ and
 * itself; demo/ and test/ may import anything above them. src/cli.ts reaches the demo only through a
 * run-time URL (`demo` subcommand), which no static import names.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The top-level directories the relative imports of every .ts file under `dir` reach. */
function reached(dir: string): Array<{ file: string; specifier: string; top: string }> {
  const found: Array<{ file: string; specifier: string; top: string }> = [];
  for (const file of tsFiles(join(REPO_ROOT, dir))) {
    for (const m of readFileSync(file, 'utf8').matchAll(
      /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'|\bimport\('(\.[^']+)'\)/g,
    )) {
      const specifier = (m[1] ?? m[2])!;
      const top = relative(REPO_ROOT, resolve(dirname(file), specifier)).split(sep)[0]!;
      found.push({ file: relative(REPO_ROOT, file), specifier, top });
    }
  }
  return found;
}

describe('layering', () => {
  for (const [dir, allowed] of [
    ['src', ['src']],
    ['harness', ['src', 'harness']],
    ['demo', ['src', 'harness', 'demo']],
  ] as const) {
    test(`${dir}/ imports only from ${allowed.join(', ')}`, () => {
      const imports = reached(dir);
      assert.ok(imports.length > 0, `${dir}/ has imports to check`);
      const wrong = imports.filter((i) => !(allowed as readonly string[]).includes(i.top));
      assert.deepEqual(wrong, [], 'imports across the layers');
    });
  }
});
