/** CLIENT LIST text → backend client id by client port, as close_clients uses it for CLIENT UNBLOCK. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { clientIdsByPortFromList } from '../../src/backend/client-list.js';

describe('clientIdsByPortFromList', () => {
  test('maps each client line to its id by the port of addr=, not of laddr=', () => {
    const list =
      'id=3 addr=127.0.0.1:52014 laddr=127.0.0.1:6379 fd=8 name= age=5 idle=0 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=blpop user=default\n' +
      'id=17 addr=[::1]:40100 laddr=[::1]:6379 fd=9 name=control age=1 idle=1 flags=N db=0 cmd=client|list\n' +
      'id=18 addr=::1:40101 fd=10 name= age=1 idle=1 flags=N db=0 cmd=ping\n';
    assert.deepEqual(
      [...clientIdsByPortFromList(list)],
      [
        [52014, '3'],
        [40100, '17'],
        [40101, '18'],
      ],
    );
  });

  test('fields in any order, CRLF endings, and lines without an id or a port are tolerated', () => {
    const list = 'addr=127.0.0.1:1000 id=5\r\nid=6 fd=3\r\naddr=127.0.0.1:notaport id=7\r\n\r\nid=x addr=127.0.0.1:2000\r\n';
    assert.deepEqual([...clientIdsByPortFromList(list)], [[1000, '5']]);
  });
});
