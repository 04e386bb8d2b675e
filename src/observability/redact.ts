/** Redaction for text that may carry credentials (config values shown in logs, errors and check-config). */

/** `scheme://user:password@host…` with the password replaced: URLs may carry credentials. */
export function maskUrlPassword(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:)[^@/\s]*@/gi, '$1[redacted]@');
}
