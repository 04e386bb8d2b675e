/** Command-line arguments, before yargs reads them. */
import { CONFIG_KEYS } from './keys.js';

/** Config flags that take a value (all but the booleans). */
const VALUE_FLAGS = new Set(
  CONFIG_KEYS.filter((k) => k.parser.flagType === 'string').flatMap((k) => [k.flag, ...k.flagAliases].map((f) => `--${f}`)),
);

/**
 * `--announce-delay -1s` in the space form: yargs would read `-1s` as the short flags -1 and -s
 * ("Unknown arguments: 1, s"). A value after a config flag that starts with one dash is that
 * flag's value, so it is joined as `--announce-delay=-1s` and its key's validation names it.
 */
export function joinDashValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (VALUE_FLAGS.has(arg) && next !== undefined && next.startsWith('-') && !next.startsWith('--') && next !== '-h') {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}
