/**
 * Tokenising INFO text, shared by the Redis and Pika parsers. Tolerant by design: CRLF or LF,
 * stray spaces, comment headers and unknown lines are all fine; nothing here throws.
 */

/** The lines of an INFO reply, trimmed, without blanks and `# Section` headers. */
export function infoLines(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n|\r/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    out.push(line);
  }
  return out;
}

/** `key:value` split at the first colon (the value may hold more colons, e.g. IPv6); null when the
 * line has no colon. */
export function splitField(line: string): { key: string; value: string } | null {
  const i = line.indexOf(':');
  if (i <= 0) return null;
  return { key: line.slice(0, i).trim(), value: line.slice(i + 1).trim() };
}

/** `a=1,b=2` → Map; pieces without `=` are ignored. */
export function parseAssignments(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const piece of text.split(',')) {
    const i = piece.indexOf('=');
    if (i <= 0) continue;
    out.set(piece.slice(0, i).trim(), piece.slice(i + 1).trim());
  }
  return out;
}

/** `(db0:0)(db1:full syncing)` → Map db → value. */
export function parseParenList(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/\(([^():]+):([^()]*)\)/g)) out.set(m[1]!.trim(), m[2]!.trim());
  return out;
}
