/**
 * The CLI's side of the admin HTTP API: POST /drain and GET /status, plus the words the CLI prints
 * about their answers. No keep-alive agent, one deadline per request, bodies capped: a CLI run
 * never hangs on a stuck or chatty server.
 */
import http from 'node:http';
import https from 'node:https';
import { tryParseHostPort } from '../config/address.js';
import { formatDuration } from '../config/duration.js';
import type { StatusBody } from './status.js';
import { EXIT_DRAIN_PAST_DEADLINE, EXIT_OK, EXIT_TOOL_FAILED } from '../exit-codes.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9121';
const MAX_BODY_BYTES = 1024 * 1024;

export type AdminClientErrorCode =
  | 'ERR_ADMIN_BAD_URL' // --admin is neither a URL nor host:port
  | 'ERR_ADMIN_UNREACHABLE' // connect refused, reset, DNS failure: nothing (or nothing any more) is there
  | 'ERR_ADMIN_TIMEOUT' // no complete answer before the deadline
  | 'ERR_ADMIN_BAD_RESPONSE'; // an answer we cannot read (not JSON where JSON is due, too big)

export class AdminClientError extends Error {
  readonly code: AdminClientErrorCode;
  constructor(code: AdminClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdminClientError';
    this.code = code;
  }
}

/**
 * The admin API's base URL from `--admin`: a URL, or the sidecar's own `admin` setting
 * (`host:port`, `:port`); a wildcard bind address is reached on loopback.
 */
export function adminBaseUrl(input: string | undefined): URL {
  const text = (input ?? '').trim() || DEFAULT_ADMIN_URL;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new AdminClientError('ERR_ADMIN_BAD_URL', `admin address ${JSON.stringify(text)} is not a valid URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new AdminClientError('ERR_ADMIN_BAD_URL', `admin address ${JSON.stringify(text)}: expected an http(s) URL`);
    }
    return url;
  }
  const address = tryParseHostPort(text, { emptyHost: '127.0.0.1', allowPortZero: false });
  if (address === undefined) {
    throw new AdminClientError(
      'ERR_ADMIN_BAD_URL',
      `admin address ${JSON.stringify(text)}: expected a URL like ${DEFAULT_ADMIN_URL} or host:port`,
    );
  }
  const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  return new URL(`http://${host.includes(':') ? `[${host}]` : host}:${address.port}`);
}

export interface AdminResponse {
  status: number;
  body: string;
}

export interface AdminRequest {
  baseUrl: URL;
  method: 'GET' | 'POST';
  /** Path and query, e.g. `/drain?wait=true`. */
  path: string;
  /** Bearer token for mutating endpoints; never logged or printed. */
  token?: string | undefined;
  timeoutMs: number;
}

/** One request with one deadline; rejects with AdminClientError. */
export function adminRequest(req: AdminRequest): Promise<AdminResponse> {
  const url = new URL(req.path, req.baseUrl);
  const where = req.baseUrl.origin;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (req.token !== undefined && req.token !== '') headers['authorization'] = `Bearer ${req.token}`;
  if (req.method === 'POST') headers['content-length'] = '0';
  const transport = url.protocol === 'https:' ? https : http;

  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: AdminClientError | undefined, res?: AdminResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== undefined) {
        request.destroy();
        reject(err);
      } else if (res !== undefined) {
        resolve(res);
      }
    };
    const request = transport.request(url, { method: req.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          finish(new AdminClientError('ERR_ADMIN_BAD_RESPONSE', `${where} sent more than ${MAX_BODY_BYTES} bytes`));
        } else {
          chunks.push(chunk);
        }
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish(unreachable(where, err)));
    });
    request.on('error', (err) => finish(unreachable(where, err)));
    // Declared after `finish`, which only runs from callbacks, never before this line.
    const timer = setTimeout(() => {
      const took = formatDuration(req.timeoutMs);
      finish(new AdminClientError('ERR_ADMIN_TIMEOUT', `no answer from the sidecar admin API at ${where} within ${took}`));
    }, req.timeoutMs);
    request.end();
  });
}

function unreachable(where: string, err: Error): AdminClientError {
  return new AdminClientError('ERR_ADMIN_UNREACHABLE', `cannot reach the sidecar admin API at ${where}: ${err.message}`, {
    cause: err,
  });
}

/** What `pika-sidecar drain` says and its exit code, from the server's answer. */
export interface DrainVerdict {
  exitCode: typeof EXIT_OK | typeof EXIT_TOOL_FAILED | typeof EXIT_DRAIN_PAST_DEADLINE;
  /** One line; goes to stdout when exitCode is 0, stderr otherwise. */
  line: string;
}

export async function requestDrain(opts: {
  baseUrl: URL;
  wait: boolean;
  token?: string | undefined;
  timeoutMs: number;
}): Promise<DrainVerdict> {
  const res = await adminRequest({
    baseUrl: opts.baseUrl,
    method: 'POST',
    path: opts.wait ? '/drain?wait=true' : '/drain',
    token: opts.token,
    timeoutMs: opts.timeoutMs,
  });
  return drainVerdict(res, opts.baseUrl);
}

export function drainVerdict(res: AdminResponse, baseUrl: URL): DrainVerdict {
  const where = baseUrl.origin;
  const phase = phaseOf(res.body);
  const atPhase = phase === undefined ? '' : ` (phase ${phase})`;
  switch (res.status) {
    case 200:
      return { exitCode: EXIT_OK, line: `sidecar at ${where} drained${atPhase}` };
    case 202:
      return { exitCode: EXIT_OK, line: `drain started on the sidecar at ${where}${atPhase}` };
    case 504:
      return {
        exitCode: EXIT_DRAIN_PAST_DEADLINE,
        line: `drain did not finish before the sidecar's deadline (HTTP 504 from ${where})${atPhase}; see its shutdown report`,
      };
    case 401:
    case 403:
      return {
        exitCode: EXIT_TOOL_FAILED,
        line: `drain refused by ${where} (HTTP ${res.status}): pass --token or set PIKA_SIDECAR_ADMIN_TOKEN`,
      };
    default:
      return { exitCode: EXIT_TOOL_FAILED, line: `drain failed: HTTP ${res.status} from ${where}${bodyExcerpt(res.body)}` };
  }
}

function bodyExcerpt(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  if (text === '') return '';
  return `: ${text.length > 200 ? `${text.slice(0, 200)}...` : text}`;
}

/**
 * A /status body as the CLI reads it: the server's declared shape, every field optional. A sidecar
 * of another version may lack a field; the summary prints `?` for it rather than failing.
 */
export type StatusAnswer = DeepPartial<StatusBody>;
type DeepPartial<T> =
  T extends ReadonlyArray<infer E>
    ? ReadonlyArray<DeepPartial<E>>
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> | undefined }
      : T;

/** GET /status (the raw body too, for `--json`). */
export async function fetchStatus(baseUrl: URL, timeoutMs: number): Promise<{ status: StatusAnswer; body: string }> {
  const res = await adminRequest({ baseUrl, method: 'GET', path: '/status', timeoutMs });
  if (res.status !== 200) {
    throw new AdminClientError('ERR_ADMIN_BAD_RESPONSE', `GET /status: HTTP ${res.status} from ${baseUrl.origin}${bodyExcerpt(res.body)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    throw new AdminClientError('ERR_ADMIN_BAD_RESPONSE', `GET /status: ${baseUrl.origin} answered with something other than JSON`);
  }
  if (!isRecord(json))
    throw new AdminClientError('ERR_ADMIN_BAD_RESPONSE', `GET /status: ${baseUrl.origin} answered with JSON that is not an object`);
  return { status: json as StatusAnswer, body: res.body };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The phase in a /drain answer (`{ status: StatusBody }`), or undefined. */
function phaseOf(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    const phase = isRecord(parsed) ? (parsed as { status?: StatusAnswer }).status?.phase : undefined;
    return typeof phase === 'string' ? phase : undefined;
  } catch {
    return undefined;
  }
}

/** A value as text, or `?` where the field is missing or of another type. */
const text = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '?');
const flag = (v: unknown, yes: string, no: string): string => (v === true ? yes : v === false ? no : `${yes} ?`);

/** A compact human summary of /status: phase and readiness, backend, sessions, replicas, the shutdown so far. */
export function summarizeStatus(status: StatusAnswer): string[] {
  const lines: string[] = [];
  lines.push(`phase:     ${text(status.phase)}  (${flag(status.ready, 'ready', 'not ready')})`);
  const b = status.backend;
  lines.push(
    isRecord(b) ? `backend:   ${text(b.address)} ${flag(b.up, 'up', 'DOWN')}, kind ${text(b.kind)}, role ${text(b.role)}` : 'backend:   ?',
  );

  const byMode = status.sessions?.byMode;
  const modes = isRecord(byMode)
    ? Object.entries(byMode)
        .filter(([, n]) => typeof n === 'number' && n > 0)
        .map(([mode, n]) => `${mode} ${text(n)}`)
    : [];
  const modeText = modes.length > 0 ? ` (${modes.join(', ')})` : '';
  lines.push(`sessions:  ${text(status.sessions?.total)}${modeText}; ${text(status.inflight)} commands in flight`);

  const r = status.replication;
  const replicas = Array.isArray(r?.replicas) ? r.replicas : [];
  const convergedText = r?.converged === true ? 'converged' : r?.converged === false ? 'not converged' : 'convergence not checked';
  lines.push(`replicas:  ${replicas.length} (role ${text(r?.role)}, ${convergedText})`);
  for (const x of replicas) {
    const lag = x.lagBytes === null || x.lagBytes === undefined ? '?' : `${text(x.lagBytes)} bytes`;
    lines.push(`  ${text(x.address)}  ${text(x.state)}  lag ${lag}` + (typeof x.position === 'string' ? `  position ${x.position}` : ''));
  }

  const sd = status.shutdown;
  if (isRecord(sd)) {
    lines.push(
      `shutdown:  ${text(sd.reason)} at ${text(sd.startedAt)}, exit code ${typeof sd.exitCode === 'number' ? sd.exitCode : 'pending'}`,
    );
    for (const p of Array.isArray(sd.phases) ? sd.phases : []) {
      const took = typeof p.durationMs === 'number' ? formatMs(p.durationMs) : '?';
      lines.push(`  ${text(p.phase).padEnd(16)} ${text(p.outcome).padEnd(9)} ${took}`);
    }
  } else {
    lines.push('shutdown:  not started');
  }
  return lines;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
