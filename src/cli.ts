#!/usr/bin/env node
/**
 * pika-sidecar's command line (yargs), and the only file of the product that calls process.exit
 * (the demo's entry points in demo/ are the others): every command resolves to an exit code,
 * and the process exits with it once output is flushed.
 *
 *   run (default)  load the configuration and run the sidecar; exits with the sidecar's code (design §4)
 *   check-config   validate; print the effective configuration with each value's source
 *   drain          POST /drain to a running sidecar (--wait: until drained)
 *   status         GET /status, once, as --json, or --watch until the sidecar exits
 *   demo           the full exit demo
 *
 * Exit codes: declared once in ./exit-codes.ts (EXIT_CODES for `run`, TOOL_EXIT_CODES for the tools).
 */
import { readFileSync } from 'node:fs';
import yargs, { type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isSidecarError } from './errors.js';
import { EXIT_CONFIG, EXIT_OK, EXIT_TOOL_FAILED } from './exit-codes.js';
import { DEFAULT_CONFIG, CONFIG_KEYS, KEYS_BY_PATH, SECTIONS, getField, primaryKey, type ConfigKey } from './config/keys.js';
import { CONFIG_PATH_ENV, loadConfig } from './config/load.js';
import { joinDashValues } from './config/argv.js';
import { renderDefaultsYaml, renderEffectiveYaml, yamlText } from './config/render.js';
import { tryParseDuration } from './config/duration.js';
import {
  AdminClientError,
  DEFAULT_ADMIN_URL,
  adminBaseUrl,
  fetchStatus,
  type StatusAnswer,
  requestDrain,
  summarizeStatus,
} from './admin/client.js';

/** drain and status read the sidecar's own admin keys: the same environment variables, the same file rule. */
function configKey(path: string): ConfigKey {
  const k = KEYS_BY_PATH.get(path);
  if (k === undefined) throw new Error(`no configuration key ${path}`);
  return k;
}

/** A usage problem found by a handler (bad --timeout, ...): printed like yargs' own. */
class UsageError extends Error {}

function packageVersion(): string {
  try {
    // dist/src/cli.js -> the package root
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function write(stream: NodeJS.WriteStream, lines: string | string[]): void {
  stream.write(`${Array.isArray(lines) ? lines.join('\n') : lines}\n`);
}

function message(err: unknown): string {
  if (isSidecarError(err)) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

// ---- configuration flags, one per key of the table ----

function defaultText(k: ConfigKey): string {
  if (primaryKey(k.field) !== k) return 'unset';
  const value = k.parser.toYaml(getField(DEFAULT_CONFIG, k.field));
  return value === null ? 'unset' : yamlText(value);
}

function helpGroup(k: ConfigKey): string {
  const section = SECTIONS.find((s) => k.path.startsWith(`${s}.`));
  return section === undefined ? 'Sidecar:' : `${section[0]?.toUpperCase()}${section.slice(1)}:`;
}

function configOptions(): Record<string, Options> {
  const options: Record<string, Options> = {
    config: {
      type: 'string',
      describe: `YAML config file (env ${CONFIG_PATH_ENV}); precedence: flags > env > file > defaults`,
      defaultDescription: 'none',
      group: 'Sidecar:',
    },
  };
  for (const k of CONFIG_KEYS) {
    // Older names are options of their own (hidden), not yargs aliases: argv then holds only the
    // name that was typed, and a message can name it.
    for (const alias of k.flagAliases) options[alias] = { type: k.parser.flagType, hidden: true };
    const also = k.flagAliases.length > 0 ? ` (also ${k.flagAliases.map((a) => `--${a}`).join(', ')})` : '';
    options[k.flag] = {
      type: k.parser.flagType,
      describe: `${k.describe}. Allowed: ${k.parser.brief}. Env ${k.env}${also}`,
      defaultDescription: defaultText(k),
      group: helpGroup(k),
    };
  }
  return options;
}

// ---- commands ----

async function runCommand(argv: Record<string, unknown>): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig({ argv, env: process.env });
  } catch (err) {
    write(process.stderr, isSidecarError(err, 'ERR_CONFIG') ? err.message : `pika-sidecar: ${message(err)}`);
    return EXIT_CONFIG;
  }
  for (const w of loaded.warnings) write(process.stderr, `pika-sidecar: warning: ${w}`);
  try {
    const { runSidecar } = await import('./main.js');
    return await runSidecar(loaded.config, { configPath: loaded.configPath });
  } catch (err) {
    write(process.stderr, `pika-sidecar: start-up failed: ${message(err)}`);
    return EXIT_CONFIG;
  }
}

function checkConfigCommand(argv: Record<string, unknown>): number {
  if (argv['defaults'] === true) {
    process.stdout.write(renderDefaultsYaml());
    return EXIT_OK;
  }
  try {
    const { config, sources, configPath, warnings } = loadConfig({ argv, env: process.env });
    for (const w of warnings) write(process.stderr, `pika-sidecar: warning: ${w}`);
    process.stdout.write(renderEffectiveYaml(config, sources, configPath));
    return EXIT_OK;
  } catch (err) {
    write(process.stderr, isSidecarError(err, 'ERR_CONFIG') ? err.message : `pika-sidecar: ${message(err)}`);
    return EXIT_TOOL_FAILED;
  }
}

function durationOption(name: string, value: unknown): number {
  const ms = tryParseDuration(value);
  if (ms === undefined || ms === 0) {
    throw new UsageError(`--${name} ${JSON.stringify(value)}: expected a duration like 500ms, 2s, 1m`);
  }
  return ms;
}

function adminToken(argv: Record<string, unknown>): string | undefined {
  if (typeof argv['token'] === 'string' && argv['token'] !== '') return argv['token'];
  const fromEnv = process.env[configKey('adminToken').env];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const fileKey = configKey('adminTokenFile');
  const file = process.env[fileKey.env];
  if (file === undefined || file === '') return undefined;
  const parsed = fileKey.parser.parse(file);
  if (!parsed.ok)
    throw new UsageError(
      `cannot read the admin token file ${fileKey.env}=${file}: ${parsed.detail ?? `expected ${fileKey.parser.expected}`}`,
    );
  return parsed.value as string | undefined;
}

function adminUrl(argv: Record<string, unknown>): URL {
  const given = typeof argv['admin'] === 'string' ? argv['admin'] : process.env[configKey('admin').env];
  return adminBaseUrl(given);
}

async function drainCommand(argv: Record<string, unknown>): Promise<number> {
  const timeoutMs = durationOption('timeout', argv['timeout']);
  try {
    const verdict = await requestDrain({
      baseUrl: adminUrl(argv),
      wait: argv['wait'] === true,
      token: adminToken(argv),
      timeoutMs,
    });
    write(verdict.exitCode === 0 ? process.stdout : process.stderr, verdict.line);
    return verdict.exitCode;
  } catch (err) {
    if (!(err instanceof AdminClientError)) throw err;
    write(process.stderr, `drain failed: ${err.message}`);
    return EXIT_TOOL_FAILED;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function statusCommand(argv: Record<string, unknown>): Promise<number> {
  const timeoutMs = durationOption('timeout', argv['timeout']);
  const intervalMs = durationOption('interval', argv['interval']);
  const baseUrl = adminUrl(argv);
  const watch = argv['watch'] === true;
  const tty = process.stdout.isTTY === true;
  let shownLines = 0;
  let seen = false;

  // Ends when the sidecar exits, goes away, or the user presses Ctrl-C; each turn waits on the network.
  for (;;) {
    let status: { status: StatusAnswer; body: string };
    try {
      status = await fetchStatus(baseUrl, timeoutMs);
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      // Once seen, a sidecar that stops answering has finished its release phase.
      if (watch && seen && err.code === 'ERR_ADMIN_UNREACHABLE') {
        write(process.stdout, 'sidecar exited');
        return EXIT_OK;
      }
      write(process.stderr, `status failed: ${err.message}`);
      return EXIT_TOOL_FAILED;
    }
    seen = true;
    if (argv['json'] === true) {
      write(process.stdout, status.body.trim());
      return EXIT_OK;
    }
    const lines = summarizeStatus(status.status);
    if (!watch) {
      write(process.stdout, lines);
      return EXIT_OK;
    }
    const block = [`${baseUrl.origin} at ${new Date().toISOString().slice(11, 19)}`, ...lines];
    // On a terminal, go back up over the previous block and clear it; in a pipe, append blocks.
    if (shownLines > 0) process.stdout.write(tty ? `\x1b[${shownLines}F\x1b[J` : '\n');
    write(process.stdout, block);
    shownLines = block.length;
    if (status.status.phase === 'exited') {
      write(process.stdout, 'sidecar exited');
      return EXIT_OK;
    }
    await sleep(intervalMs);
  }
}

async function demoCommand(): Promise<number> {
  // Resolved at run time (dist/src/cli.js -> dist/demo/demo.js): the production image has no demo/.
  const href = new URL('../demo/demo.js', import.meta.url).href;
  let demo: { runDemo(): Promise<number> };
  try {
    demo = (await import(href)) as { runDemo(): Promise<number> };
  } catch (err) {
    write(process.stderr, `pika-sidecar: the demo is not available in this build: ${message(err)}`);
    return EXIT_TOOL_FAILED;
  }
  return demo.runDemo();
}

// ---- entry point ----

const ADMIN_OPTION: Options = {
  type: 'string',
  describe: `admin API of the sidecar: a URL or host:port (env ${configKey('admin').env}, as the sidecar reads it)`,
  defaultDescription: DEFAULT_ADMIN_URL,
};

function timeoutOption(defaultValue: string): Options {
  return { type: 'string', describe: 'give up on an answer after this long', default: defaultValue };
}

async function main(): Promise<number> {
  let exitCode = 0;
  const cli = yargs(joinDashValues(hideBin(process.argv)))
    .scriptName('pika-sidecar')
    .usage('$0 [command] [options]\n\nSidecar proxy for Pika and Redis with an ordered, bounded, observable shutdown.')
    .version(packageVersion())
    .strict()
    // A flag given twice takes its last value, as in most CLIs (a wrapper may append overrides).
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .exitProcess(false)
    // yargs would run the handler after reporting a usage error; throwing stops it.
    .fail((msg: string | null, err: Error | undefined) => {
      throw err ?? new UsageError(msg ?? 'invalid usage');
    })
    .command(
      ['run', '$0'],
      'run the sidecar in front of one Pika or Redis server (the default command)',
      (y) => y.options(configOptions()),
      async (argv) => {
        exitCode = await runCommand(argv);
      },
    )
    .command(
      'check-config',
      'validate the configuration and print it with the source of each value (secrets as [set])',
      (y) =>
        y.options(configOptions()).option('defaults', {
          type: 'boolean',
          describe: 'print the documented default configuration file (config/pika-sidecar.yaml) instead',
          default: false,
        }),
      (argv) => {
        exitCode = checkConfigCommand(argv);
      },
    )
    .command(
      'drain',
      'start the drain of a running sidecar (POST /drain); exit 0 started/drained, 2 past its deadline, 1 failed',
      (y) =>
        y.options({
          wait: { type: 'boolean', describe: 'answer only when the sidecar has drained', default: false },
          admin: ADMIN_OPTION,
          token: {
            type: 'string',
            describe: `bearer token for a sidecar that is not on loopback (env ${configKey('adminToken').env} or ${configKey('adminTokenFile').env})`,
            defaultDescription: 'none',
          },
          timeout: timeoutOption('60s'),
        }),
      async (argv) => {
        exitCode = await drainCommand(argv);
      },
    )
    .command(
      'status',
      'show what a running sidecar is doing (GET /status)',
      (y) =>
        y
          .options({
            // No `default` on watch/json: yargs counts a default as given when checking conflicts.
            watch: { type: 'boolean', describe: 'refresh until the sidecar exits', defaultDescription: 'false' },
            interval: { type: 'string', describe: 'refresh interval with --watch', default: '1s' },
            json: { type: 'boolean', describe: 'print the raw JSON once', defaultDescription: 'false' },
            admin: ADMIN_OPTION,
            timeout: timeoutOption('5s'),
          })
          .conflicts('json', 'watch'),
      async (argv) => {
        exitCode = await statusCommand(argv);
      },
    )
    .command('demo', 'the exit demo: master + replica, load, SIGTERM, verdict', {}, async () => {
      exitCode = await demoCommand();
    })
    .help()
    .alias('help', 'h')
    .wrap(Math.min(120, process.stdout.columns ?? 100));

  try {
    await cli.parseAsync();
  } catch (err) {
    if (err instanceof UsageError || err instanceof AdminClientError || !(err instanceof Error) || err.name === 'YError') {
      write(process.stderr, `pika-sidecar: ${message(err)} (see pika-sidecar --help)`);
    } else {
      write(process.stderr, `pika-sidecar: ${err.stack ?? err.message}`);
    }
    return EXIT_TOOL_FAILED;
  }
  return exitCode;
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

const code = await main();
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
