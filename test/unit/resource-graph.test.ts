/**
 * The ResourceGraph that `release` walks: dependency order, and every way a close can go wrong
 * (hangs, throws, no time left) still releases everything, each resource exactly once.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ResourceGraph, type Resource } from '../../src/shutdown/resource-graph.js';
import { captureLogs } from '../support/log-capture.js';

function quietLogger(lines: Array<Record<string, unknown>> = []) {
  return captureLogs('debug', lines).logger;
}

/** A resource that records what was called on it into `calls`, in order. */
function resource(calls: string[], name: string, after: string[] = [], close?: (signal: AbortSignal) => Promise<void> | void): Resource {
  return {
    name,
    after,
    close: (signal) => {
      calls.push(`close ${name}`);
      return close?.(signal);
    },
    destroy: () => {
      calls.push(`destroy ${name}`);
    },
  };
}

describe('ResourceGraph', () => {
  test('order() puts every resource after the ones it names in `after`, whatever the declaration order', () => {
    const calls: string[] = [];
    const g = new ResourceGraph()
      .add(resource(calls, 'logs', ['admin']))
      .add(resource(calls, 'admin', ['stop_gate']))
      .add(resource(calls, 'control', ['pool']))
      .add(resource(calls, 'stop_gate', ['control', 'pollers']))
      .add(resource(calls, 'pool', ['pollers']))
      .add(resource(calls, 'pollers'));
    const order = g.order().map((r) => r.name);
    assert.equal(order.length, 6);
    const at = (n: string) => order.indexOf(n);
    for (const [later, earlier] of [
      ['pool', 'pollers'],
      ['control', 'pool'],
      ['stop_gate', 'control'],
      ['stop_gate', 'pollers'],
      ['admin', 'stop_gate'],
      ['logs', 'admin'],
    ] as const) {
      assert.ok(at(later) > at(earlier), `${later} after ${earlier} in ${order.join(' → ')}`);
    }
    assert.deepEqual(order, ['pollers', 'pool', 'control', 'stop_gate', 'admin', 'logs']);
  });

  test('order() throws on a cycle, naming it', () => {
    const calls: string[] = [];
    const g = new ResourceGraph()
      .add(resource(calls, 'a', ['c']))
      .add(resource(calls, 'b', ['a']))
      .add(resource(calls, 'c', ['b']));
    assert.throws(() => g.order(), /resource graph has a cycle: a -> c -> b -> a/);
  });

  test('order() throws on a self-dependency and on an unknown dependency', () => {
    const calls: string[] = [];
    assert.throws(() => new ResourceGraph().add(resource(calls, 'a', ['a'])).order(), /cycle/);
    assert.throws(
      () => new ResourceGraph().add(resource(calls, 'pool', ['pollerz'])).order(),
      /resource pool depends on unknown resource pollerz/,
    );
  });

  test('a resource declared twice is refused', () => {
    const calls: string[] = [];
    const g = new ResourceGraph().add(resource(calls, 'pool'));
    assert.throws(() => g.add(resource(calls, 'pool')), /declared twice/);
  });

  test('release() closes each resource once, in order, and records it closed', async () => {
    const calls: string[] = [];
    const g = new ResourceGraph()
      .add(resource(calls, 'b', ['a'], async () => undefined))
      .add(resource(calls, 'a'))
      .add(resource(calls, 'c', ['b']));
    const records = await g.release(new AbortController().signal, quietLogger());
    assert.deepEqual(calls, ['close a', 'close b', 'close c']);
    assert.deepEqual(
      records.map((r) => [r.name, r.outcome]),
      [
        ['a', 'closed'],
        ['b', 'closed'],
        ['c', 'closed'],
      ],
    );
  });

  test('a close() that never resolves is cut by the abort signal: it is destroyed, and so is everything after it', async () => {
    const calls: string[] = [];
    const ac = new AbortController();
    const lines: Array<Record<string, unknown>> = [];
    const g = new ResourceGraph()
      .add(resource(calls, 'pollers'))
      .add(
        resource(calls, 'pool', ['pollers'], () => {
          setImmediate(() => ac.abort('timeout')); // the phase budget runs out while pool.close() hangs
          return new Promise<void>(() => undefined);
        }),
      )
      .add(resource(calls, 'control', ['pool']))
      .add(resource(calls, 'stop_gate', ['control']));
    const records = await g.release(ac.signal, quietLogger(lines));
    assert.deepEqual(calls, ['close pollers', 'close pool', 'destroy pool', 'destroy control', 'destroy stop_gate']);
    assert.deepEqual(
      records.map((r) => [r.name, r.outcome]),
      [
        ['pollers', 'closed'],
        ['pool', 'destroyed'],
        ['control', 'destroyed'],
        ['stop_gate', 'destroyed'],
      ],
    );
    assert.ok(lines.some((l) => l.msg === 'destroyed pool (its close ran out of time)'));
  });

  test('a close() that throws is recorded failed, destroyed, and the next resources are still released', async () => {
    const calls: string[] = [];
    const g = new ResourceGraph()
      .add(
        resource(calls, 'pool', [], () => {
          throw new Error('pool close exploded');
        }),
      )
      .add(
        resource(calls, 'control', ['pool'], async () => {
          throw new Error('control close rejected');
        }),
      )
      .add(resource(calls, 'stop_gate', ['control']));
    const records = await g.release(new AbortController().signal, quietLogger());
    assert.deepEqual(calls, ['close pool', 'destroy pool', 'close control', 'destroy control', 'close stop_gate']);
    assert.deepEqual(
      records.map((r) => [r.name, r.outcome, r.error]),
      [
        ['pool', 'failed', 'pool close exploded'],
        ['control', 'failed', 'control close rejected'],
        ['stop_gate', 'closed', undefined],
      ],
    );
  });

  test('a destroy() that throws does not stop the release', async () => {
    const calls: string[] = [];
    const g = new ResourceGraph()
      .add({
        name: 'pool',
        after: [],
        close: () => Promise.reject(new Error('no')),
        destroy: () => {
          throw new Error('destroy failed too');
        },
      })
      .add(resource(calls, 'stop_gate', ['pool']));
    const records = await g.release(new AbortController().signal, quietLogger());
    assert.deepEqual(
      records.map((r) => r.outcome),
      ['failed', 'closed'],
    );
    assert.deepEqual(calls, ['close stop_gate']);
  });

  test('with the signal already aborted (forced), every resource is destroyed and none is closed', async () => {
    const calls: string[] = [];
    const ac = new AbortController();
    ac.abort('forced');
    const g = new ResourceGraph()
      .add(resource(calls, 'b', ['a']))
      .add(resource(calls, 'a'))
      .add(resource(calls, 'c', ['b']));
    const records = await g.release(ac.signal, quietLogger());
    assert.deepEqual(calls, ['destroy a', 'destroy b', 'destroy c']);
    assert.deepEqual(
      records.map((r) => [r.name, r.outcome, r.durationMs]),
      [
        ['a', 'destroyed', 0],
        ['b', 'destroyed', 0],
        ['c', 'destroyed', 0],
      ],
    );
  });

  test('close() receives the release signal, so a close that waits can end early', async () => {
    const calls: string[] = [];
    const ac = new AbortController();
    let seen: AbortSignal | undefined;
    const g = new ResourceGraph().add(
      resource(calls, 'admin', [], (signal) => {
        seen = signal;
      }),
    );
    await g.release(ac.signal, quietLogger());
    assert.equal(seen, ac.signal);
  });
});
