/**
 * Protected mode, as Redis has it: when the sidecar listens beyond loopback and the backend lets
 * a fresh, unauthenticated connection in (its PING answers +PONG, not -NOAUTH), every peer that
 * reaches the sidecar's port becomes a trusted local client of the backend. The sidecar then
 * refuses to start (exit 1), saying why and how to allow it.
 *
 * When the backend cannot be asked at start-up (not up yet), the sidecar starts, and each
 * non-loopback client is admitted only once a probe has seen the backend ask for a password;
 * while it does not, such clients get `-DENIED ...` and are closed, like Redis' own protected mode.
 */
import net from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { HostPort } from '../config/schema.js';

const PING = Buffer.from('*1\r\n$4\r\nPING\r\n');
const AUTH_CHALLENGE = /^-(ERR )?NOAUTH\b/;

export type BackendAuth = 'required' | 'not_required' | 'unknown';

/** Whether a fresh, unauthenticated connection to the backend is asked for a password. */
export function probeBackendAuth(backend: HostPort, timeoutMs: number): Promise<{ auth: BackendAuth; detail: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: backend.host, port: backend.port });
    let got = '';
    const done = (auth: BackendAuth, detail: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ auth, detail });
    };
    const timer = setTimeout(() => done('unknown', `no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => socket.write(PING));
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const nl = got.indexOf('\r\n');
      if (nl < 0) return;
      const line = got.slice(0, nl);
      if (line.startsWith('+')) done('not_required', line);
      else if (AUTH_CHALLENGE.test(line)) done('required', line);
      else done('unknown', line); // -ERR max number of clients reached, -LOADING, ...
    });
    socket.on('error', (err: NodeJS.ErrnoException) => done('unknown', err.code ?? err.message));
    socket.on('close', () => done('unknown', 'closed before answering'));
  });
}

export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('::ffff:') ? host.slice(7) : host;
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The start-up refusal: why, and every way to allow it. */
export function protectedModeMessage(listen: HostPort, backend: HostPort): string {
  return (
    `protected mode: the sidecar listens on ${listen.host}:${listen.port}, which is not loopback, and the backend ` +
    `${backend.host}:${backend.port} answers PING without a password, so anyone who reaches that port would be a trusted local client of it. ` +
    'Either set a password on the backend (requirepass), listen on loopback, or, when a NetworkPolicy admits only trusted peers, ' +
    'turn protected mode off: protectedMode: false in the config file, --protected-mode=false, or PIKA_SIDECAR_PROTECTED_MODE=false'
  );
}

/** Per-client gate for when the start-up probe could not tell (see the module comment). */
export class ProtectedModeGate {
  private known: BackendAuth = 'unknown';
  private probing: Promise<BackendAuth> | undefined;
  private readonly denial: Buffer;

  constructor(private readonly opts: { listen: HostPort; backend: HostPort; timeoutMs: number; logger: Logger; initial: BackendAuth }) {
    this.known = opts.initial;
    this.denial = Buffer.from(`-DENIED ${protectedModeMessage(opts.listen, opts.backend)}\r\n`);
  }

  /** undefined admits the client; otherwise the line it gets before it is closed. */
  async admit(client: net.Socket): Promise<Buffer | undefined> {
    if (isLoopbackHost(client.remoteAddress ?? '')) return undefined;
    if (this.known === 'required') return undefined;
    const auth = await this.probe();
    return auth === 'required' ? undefined : this.denial;
  }

  private probe(): Promise<BackendAuth> {
    this.probing ??= probeBackendAuth(this.opts.backend, this.opts.timeoutMs).then(({ auth, detail }) => {
      this.probing = undefined;
      if (auth !== this.known) {
        this.known = auth;
        if (auth === 'not_required')
          this.opts.logger.error({ detail }, 'protected mode: the backend needs no password; refusing non-loopback clients');
        else if (auth === 'required')
          this.opts.logger.info('protected mode: the backend asks for a password; admitting non-loopback clients');
      }
      return auth;
    });
    return this.probing;
  }
}
