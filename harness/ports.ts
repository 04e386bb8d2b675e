/** Loopback ports for the processes the harness starts, each confirmed free by binding it. */
import net from 'node:net';
import { FRONT_PORT_ROLES, shiftedPort } from '../src/replication/pika-ports.js';

/** A loopback port that was free a moment ago (confirmed by binding it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Binds host:port, or resolves undefined when it is taken. */
function hold(port: number, host: string): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => resolve(srv));
  });
}

/**
 * A loopback port P with P+2000 and P+10001 free too (Pika's derived replication ports), each
 * confirmed by binding it. Drawn below the ephemeral range (32768+) so that P+10001 stays a valid
 * port and outgoing connections do not take it meanwhile; bounded attempts.
 */
export async function freePikaPort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 12_000 + Math.floor(Math.random() * 10_000);
    const held: net.Server[] = [];
    let ok = true;
    for (const p of [port, ...FRONT_PORT_ROLES.map((r) => shiftedPort(port, r))]) {
      const srv = await hold(p, host);
      if (srv === undefined) {
        ok = false;
        break;
      }
      held.push(srv);
    }
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    if (ok) return port;
  }
  throw new Error('no port P with P+2000 and P+10001 free after 200 attempts');
}
