/**
 * The slice of a control connection the replication watcher needs, and how to read its replies.
 * src/backend/control-connection.ts implements it: `call()` resolves with the decoded reply, and
 * a backend `-ERR …` resolves too, as an ErrorReply value (backend errors are data); it rejects only
 * for transport failures (SidecarError ERR_BACKEND_UNREACHABLE / _CLOSED / ERR_CONTROL_TIMEOUT /
 * ERR_CONTROL_DESTROYED).
 */

export interface InfoClient {
  call(...args: string[]): Promise<unknown>;
  close(): Promise<void>;
  destroy(reason?: string): void;
}

/** A backend `-ERR …` reply. Matched by shape (an object with a string `message`) so this module
 * does not depend on the control connection's class. */
export function isErrorReply(value: unknown): value is { message: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !Buffer.isBuffer(value) &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

/** The text of an INFO reply (a string; a Buffer is tolerated); an error reply or anything else
 * becomes an Error naming the command. */
export function infoClientReplyText(reply: unknown, what: string): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (isErrorReply(reply)) throw new Error(`${what} refused by the backend: ${reply.message}`);
  throw new Error(`${what} returned a ${Array.isArray(reply) ? 'array' : typeof reply} instead of text`);
}

/** `ERR_CONTROL_TIMEOUT: no reply within 2000 ms` — for logs and results; never carries arguments. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Settles like `p`, or rejects with the signal's reason as soon as it aborts. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
