/**
 * The trigger file for `sh` preStop hooks, in a temp directory: `<dir>/drain` starts the shutdown
 * once (by fs.watch, or by the once-a-second check when watching is not possible), stale markers
 * are removed at start, and `<dir>/drained` is written atomically.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TriggerFile, TRIGGER_FILE, DRAINED_FILE } from '../../src/shutdown/trigger-file.js';
import { waitFor } from '../../harness/wait.js';
import { deferrer } from '../support/defer.js';
import { captureLogs } from '../support/log-capture.js';

const quiet = captureLogs('silent').logger;

function tempDir(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-trigger-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('TriggerFile', () => {
  test('creating <dir>/drain calls the callback once, within 2 s', async (t) => {
    const defer = deferrer(t);
    const dir = tempDir(t);
    let calls = 0;
    const tf = new TriggerFile(dir, () => calls++, quiet);
    tf.start();
    defer(() => tf.close());
    assert.equal(calls, 0);
    const t0 = Date.now();
    writeFileSync(join(dir, TRIGGER_FILE), '');
    await waitFor(() => calls === 1, { timeoutMs: 2000, intervalMs: 10, what: 'the trigger callback' });
    assert.ok(Date.now() - t0 < 2000);
    // More events on the directory, and the file appearing again, do not trigger again.
    rmSync(join(dir, TRIGGER_FILE));
    writeFileSync(join(dir, TRIGGER_FILE), 'again');
    writeFileSync(join(dir, 'unrelated'), 'x');
    (tf as unknown as { check(): void }).check();
    assert.equal(calls, 1);
  });

  test('without fs.watch (a volume without inotify) the once-a-second check still fires within 2 s', async (t) => {
    const defer = deferrer(t);
    const dir = tempDir(t);
    const realWatch = fs.watch;
    fs.watch = (() => {
      throw Object.assign(new Error('ENOSYS: watching not supported'), { code: 'ENOSYS' });
    }) as typeof fs.watch;
    defer(() => {
      fs.watch = realWatch;
    });
    let calls = 0;
    const tf = new TriggerFile(dir, () => calls++, quiet);
    tf.start();
    fs.watch = realWatch;
    defer(() => tf.close());
    writeFileSync(join(dir, TRIGGER_FILE), '');
    await waitFor(() => calls === 1, { timeoutMs: 2500, intervalMs: 20, what: 'the trigger callback from the periodic check' });
  });

  test('start() creates the directory and removes stale drain and drained files', (t) => {
    const defer = deferrer(t);
    const parent = tempDir(t);
    const dir = join(parent, 'nested', 'gate');
    let tf = new TriggerFile(dir, () => undefined, quiet);
    tf.start();
    tf.close();
    assert.ok(existsSync(dir));
    writeFileSync(join(dir, TRIGGER_FILE), '');
    writeFileSync(join(dir, DRAINED_FILE), '{"from":"an earlier run"}\n');
    writeFileSync(join(dir, 'keep-me'), 'x');
    let calls = 0;
    tf = new TriggerFile(dir, () => calls++, quiet);
    tf.start();
    defer(() => tf.close());
    assert.equal(existsSync(join(dir, TRIGGER_FILE)), false, 'a stale trigger would start a shutdown at once');
    assert.equal(existsSync(join(dir, DRAINED_FILE)), false, 'a stale marker would open the gate at once');
    assert.equal(existsSync(join(dir, 'keep-me')), true, 'other files are left alone');
    (tf as unknown as { check(): void }).check();
    assert.equal(calls, 0);
  });

  test('markDrained writes the whole content by rename, replacing an older marker, and leaves no temp file', (t) => {
    const defer = deferrer(t);
    const dir = tempDir(t);
    const tf = new TriggerFile(dir, () => undefined, quiet);
    tf.start();
    defer(() => tf.close());
    // An older, longer marker: a write in place (not a rename) would leave its tail behind.
    writeFileSync(join(dir, DRAINED_FILE), 'x'.repeat(10_000));
    const content = `${JSON.stringify({ drainedAt: '2024-01-01T00:00:00.000Z', phases: [] })}\n`;
    const before = fs.statSync(join(dir, DRAINED_FILE)).ino;
    tf.markDrained(content);
    assert.equal(readFileSync(join(dir, DRAINED_FILE), 'utf8'), content);
    assert.notEqual(
      fs.statSync(join(dir, DRAINED_FILE)).ino,
      before,
      'a new file was renamed into place: a reader never sees it half-written',
    );
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.includes('tmp')),
      [],
    );
  });
});
