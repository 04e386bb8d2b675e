/**
 * `CLIENT LIST` text → backend client id by the client's port (the `addr=host:port` field). The
 * sidecar finds its own sessions' backend ids this way: a session knows its backend-side local port.
 * Pure; tolerant of fields in any order and of IPv6 addresses (`addr=[::1]:6379` or `addr=::1:6379`).
 */
export function clientIdsByPortFromList(list: string): Map<number, string> {
  const idByPort = new Map<number, string>();
  for (const line of list.split('\n')) {
    let id: string | undefined;
    let port: number | undefined;
    for (const field of line.trim().split(' ')) {
      if (field.startsWith('id=')) id = field.slice(3);
      else if (field.startsWith('addr=')) {
        const colon = field.lastIndexOf(':');
        const p = colon > 5 ? Number(field.slice(colon + 1)) : NaN;
        if (Number.isInteger(p) && p > 0) port = p;
      }
    }
    if (id !== undefined && /^\d+$/.test(id) && port !== undefined) idByPort.set(port, id);
  }
  return idByPort;
}
