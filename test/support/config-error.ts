/** The ERR_CONFIG message loadConfig throws for an input; fails the test when it does not throw. */
import assert from 'node:assert/strict';
import { loadConfig, type LoadConfigInput } from '../../src/config/load.js';
import { isSidecarError } from '../../src/errors.js';

export function configErrorOf(input: LoadConfigInput): string {
  try {
    loadConfig(input);
  } catch (err) {
    assert.ok(isSidecarError(err, 'ERR_CONFIG'), `expected ERR_CONFIG, got ${String(err)}`);
    return err.message;
  }
  assert.fail('loadConfig accepted an invalid configuration');
}
