/**
 * Replica addresses: the "host:port" strings used as metric labels, /status keys and override-map
 * keys, and the address actually dialled to probe a replica.
 */

/** `127.0.0.1:6379`, `[::1]:6379` (IPv6 in brackets so the port stays unambiguous). */
export function formatAddress(host: string, port: number | null): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${h}:${port ?? '?'}`;
}

/** `host:port` or `[v6]:port` → parts; null when it is not that shape. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const t = text.trim();
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(t) ?? /^([^:[\]]+):(\d{1,5})$/.exec(t);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

/**
 * Where to dial a replica announced as `announced` ("ip:port" as its master lists it): the
 * override when one is configured (keys are compared after normalising IPv6 brackets), else the
 * announced address itself. Null when neither is a usable host:port.
 */
export function dialAddress(
  announced: string,
  overrides: Readonly<Record<string, string>>,
): { host: string; port: number; overridden: boolean } | null {
  const own = parseHostPort(announced);
  const key = own ? formatAddress(own.host, own.port) : announced;
  for (const [from, to] of Object.entries(overrides)) {
    const f = parseHostPort(from);
    const fromKey = f ? formatAddress(f.host, f.port) : from.trim();
    if (fromKey !== key) continue;
    const target = parseHostPort(to);
    return target ? { ...target, overridden: true } : null;
  }
  return own ? { ...own, overridden: false } : null;
}
