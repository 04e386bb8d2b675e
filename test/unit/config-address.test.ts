import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, tryParseHostPort, type HostPortRules } from '../../src/config/address.js';

const LISTEN: HostPortRules = { emptyHost: '0.0.0.0', allowPortZero: true };
const BACKEND: HostPortRules = { emptyHost: '127.0.0.1', allowPortZero: false };

test('host:port, hostnames and IPv4 addresses parse to host and port', () => {
  assert.deepEqual(tryParseHostPort('127.0.0.1:6380', BACKEND), { host: '127.0.0.1', port: 6380 });
  assert.deepEqual(tryParseHostPort('pika-0.pika.default.svc:9221', BACKEND), { host: 'pika-0.pika.default.svc', port: 9221 });
  assert.deepEqual(tryParseHostPort('localhost:1', BACKEND), { host: 'localhost', port: 1 });
  assert.deepEqual(tryParseHostPort(' 10.0.0.2:65535 ', BACKEND), { host: '10.0.0.2', port: 65535 });
});

test('IPv6 addresses are written in brackets and come back without them', () => {
  assert.deepEqual(tryParseHostPort('[::1]:6380', BACKEND), { host: '::1', port: 6380 });
  assert.deepEqual(tryParseHostPort('[fe80::1:2]:9221', BACKEND), { host: 'fe80::1:2', port: 9221 });
  assert.deepEqual(tryParseHostPort('[::]:0', LISTEN), { host: '::', port: 0 });
  assert.equal(formatHostPort({ host: '::1', port: 6380 }), '[::1]:6380');
  assert.equal(formatHostPort({ host: '127.0.0.1', port: 6380 }), '127.0.0.1:6380');
});

test(':port takes the host the caller chose: every interface for listen, loopback for backend and admin', () => {
  assert.deepEqual(tryParseHostPort(':6380', LISTEN), { host: '0.0.0.0', port: 6380 });
  assert.deepEqual(tryParseHostPort(':9221', BACKEND), { host: '127.0.0.1', port: 9221 });
});

test('port 0 means any free port and is allowed only where the rules say so', () => {
  assert.deepEqual(tryParseHostPort('127.0.0.1:0', LISTEN), { host: '127.0.0.1', port: 0 });
  assert.equal(tryParseHostPort('127.0.0.1:0', BACKEND), undefined);
});

test('ambiguous, malformed and out-of-range addresses are refused', () => {
  const bad: unknown[] = [
    '::1:6380', // unbracketed IPv6
    '[::1]6380',
    '[::1]:',
    '[nothost]:80',
    '[::1',
    '127.0.0.1',
    '127.0.0.1:',
    '127.0.0.1:65536',
    '127.0.0.1:-1',
    '127.0.0.1:80x',
    '127.0.0.1: 80',
    'host name:80',
    'host_:80',
    '-host:80',
    '999.1.1.1:80',
    ':',
    '',
    6380,
    null,
    { host: '127.0.0.1', port: 6380 },
  ];
  for (const input of bad) assert.equal(tryParseHostPort(input, LISTEN), undefined, JSON.stringify(input));
});

test('formatting then parsing gives the same address', () => {
  for (const address of [
    { host: '127.0.0.1', port: 6380 },
    { host: '::1', port: 1 },
    { host: 'pika-0.pika', port: 9221 },
    { host: '0.0.0.0', port: 0 },
  ]) {
    assert.deepEqual(tryParseHostPort(formatHostPort(address), LISTEN), address);
  }
});
