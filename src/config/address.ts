/**
 * `host:port` addresses: `127.0.0.1:6380`, `pika-0.pika:9221`, `[::1]:6380` (IPv6 always in brackets),
 * or `:6380`, where the missing host is the caller's choice (the listener binds every interface,
 * `0.0.0.0`; the backend and the admin server default to loopback, `127.0.0.1`).
 */
import net from 'node:net';
import type { HostPort } from './schema.js';

export interface HostPortRules {
  /** Host used for the `:port` form. */
  emptyHost: string;
  /** Port 0 = "any free port", meaningful only for something we listen on. */
  allowPortZero: boolean;
}

const HOSTNAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$/;
const PORT_RE = /^\d{1,5}$/;

export function hostPortExpected(rules: HostPortRules): string {
  const ports = rules.allowPortZero ? '0-65535, 0 = any free port' : '1-65535';
  return `host:port, [ipv6]:port or :port (= ${rules.emptyHost}:port), port ${ports}`;
}

/** The address, or undefined when `input` is not one. The host comes back without brackets. */
export function tryParseHostPort(input: unknown, rules: HostPortRules): HostPort | undefined {
  if (typeof input !== 'string') return undefined;
  const text = input.trim();
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!net.isIPv6(host)) return undefined;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') host = rules.emptyHost;
    // An unbracketed IPv6 address is ambiguous ("::1:6380"): refuse it rather than guess.
    else if (!net.isIPv4(host) && (!HOSTNAME_RE.test(host) || /^[\d.]+$/.test(host))) return undefined;
  }
  if (!PORT_RE.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535 || (port === 0 && !rules.allowPortZero)) return undefined;
  return { host, port };
}

/** The inverse of tryParseHostPort: IPv6 hosts get their brackets back. */
export function formatHostPort(address: HostPort): string {
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
