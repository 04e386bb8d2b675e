/**
 * docs/reference.md, rendered from the code's single declarations: the configuration keys
 * (src/config/keys.ts), the metrics (the registry src/observability/metrics.ts builds), the admin
 * endpoints (src/admin/endpoints.ts) and the exit codes (src/exit-codes.ts). A unit test fails when
 * the committed file differs; `npm run docs` (make docs) rewrites it.
 */
import { Registry } from 'prom-client';
import { CONFIG_KEYS, DEFAULT_CONFIG, getField, primaryKey, type ConfigKey } from '../config/keys.js';
import { yamlText } from '../config/render.js';
import { formatHostPort } from '../config/address.js';
import { createMetrics } from '../observability/metrics.js';
import { BACKEND_ROLES, CLOSE_REASONS, PHASE_OUTCOMES, REPLICA_STATES, SESSION_MODES, SHUTDOWN_STATES } from '../observability/names.js';
import { FRONT_DIRECTIONS, FRONT_REFUSE_REASONS } from '../observability/names.js';
import { FRONT_PORT_ROLES } from '../replication/pika-ports.js';
import { ADMIN_ENDPOINTS } from '../admin/endpoints.js';
import { EXIT_CODES, TOOL_EXIT_CODES, type ExitCodeDeclaration } from '../exit-codes.js';

export const REFERENCE_PATH = 'docs/reference.md';
/** Shown for a label nobody described in LABEL_VALUES; the drift test refuses it. */
export const UNDOCUMENTED = 'undocumented';

/** What the values of each label may be (every label set is closed; a test checks it). */
const LABEL_VALUES: Readonly<Record<string, string>> = {
  mode: SESSION_MODES.join(', '),
  reason: `client connections: ${CLOSE_REASONS.join(', ')}; fronted replication ports: ${FRONT_REFUSE_REASONS.join(', ')}`,
  port: `fronted Pika replication port: ${FRONT_PORT_ROLES.join(' (+2000), ')} (+10001)`,
  direction: FRONT_DIRECTIONS.join(', '),
  phase: SHUTDOWN_STATES.join(', '),
  outcome: PHASE_OUTCOMES.join(', '),
  role: BACKEND_ROLES.join(', '),
  state: `replicas: ${REPLICA_STATES.join(', ')}; backend pool: warm, waiting`,
  replica: 'the replica address as the backend announces it (host:port), one per replica',
  le: 'histogram bucket upper bound',
  type: "Node.js handle or resource type (prom-client's default metrics)",
  space: 'V8 heap space',
  kind: 'GC kind',
  version: 'Node.js version (also major, minor, patch)',
  major: 'Node.js version component',
  minor: 'Node.js version component',
  patch: 'Node.js version component',
};

/** A table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

function defaultOf(k: ConfigKey): string {
  // A file key (backendPasswordFile) holds a path, never the secret it sets.
  const value = primaryKey(k.field) === k ? k.parser.toYaml(getField(DEFAULT_CONFIG, k.field)) : null;
  return `\`${yamlText(value)}\``;
}

/** A key's name, then the older names it still accepts. */
function names(current: string, older: readonly string[], prefix: string): string {
  const all = [`\`${prefix}${current}\``, ...older.map((o) => `\`${prefix}${o}\``)];
  return older.length === 0 ? all[0]! : `${all[0]} (also ${all.slice(1).join(', ')})`;
}

function configSection(): string[] {
  return [
    '## Configuration keys',
    '',
    "Precedence: flags > environment `PIKA_SIDECAR_*` > the YAML file (`--config` or `PIKA_SIDECAR_CONFIG`) > defaults. A flag is the key's path in kebab case, section first; its environment variable is `PIKA_SIDECAR_` and the flag in upper snake case. Older names, after “also”, are still accepted.",
    'The same keys with comments: [config/pika-sidecar.yaml](../config/pika-sidecar.yaml). `pika-sidecar check-config` prints the effective configuration and where each value came from.',
    '',
    ...table(
      ['Key (YAML)', 'Default', 'Flag', 'Environment', 'Allowed', 'Meaning'],
      CONFIG_KEYS.map((k) => [
        `\`${k.path}\``,
        defaultOf(k),
        names(k.flag, k.flagAliases, '--'),
        names(k.env, k.envAliases, ''),
        k.parser.brief,
        k.describe,
      ]),
    ),
  ];
}

function metricsSection(): string[] {
  const { registry } = createMetrics(new Registry());
  const rows: string[][] = [];
  const labels = new Set<string>();
  for (const m of registry.getMetricsAsArray()) {
    const type = m.type;
    const names = ((m as unknown as { labelNames?: string[] }).labelNames ?? []).filter((l) => l !== 'le');
    for (const l of names) labels.add(l);
    rows.push([`\`${m.name}\``, String(type), names.map((l) => `\`${l}\``).join(', '), m.help]);
  }
  rows.sort((a, b) => a[0]!.localeCompare(b[0]!));
  return [
    '## Metrics',
    '',
    'Served on the admin port at `GET /metrics`, and pushed once in `release` when `shutdown.pushgatewayUrl` is set (job `pika-sidecar`, instance = host name).',
    '',
    ...table(['Metric', 'Type', 'Labels', 'Help'], rows),
    '',
    'Label values (closed sets: no client address or command argument is ever a label):',
    '',
    ...table(
      ['Label', 'Values'],
      [...labels].sort().map((l) => [`\`${l}\``, LABEL_VALUES[l] ?? UNDOCUMENTED]),
    ),
  ];
}

function endpointsSection(): string[] {
  return [
    '## Admin endpoints',
    '',
    `On \`admin\` (default \`${formatHostPort(DEFAULT_CONFIG.admin)}\`). Mutating endpoints take loopback callers or \`Authorization: Bearer <adminToken>\`; a wrong method is 405, an unknown path 404.`,
    '',
    ...table(
      ['Method', 'Path', 'Mutating', 'Answers', 'Purpose'],
      ADMIN_ENDPOINTS.map((e) => [e.method, `\`${e.path}\``, e.mutating ? 'yes' : 'no', e.answers, e.purpose]),
    ),
  ];
}

function exitTable(codes: readonly ExitCodeDeclaration[]): string[] {
  return table(
    ['Code', 'Name', 'Meaning'],
    codes.map((c) => [String(c.code), `\`${c.name}\``, c.meaning]),
  );
}

function exitSection(): string[] {
  return [
    '## Exit codes',
    '',
    '`pika-sidecar run` (the sidecar; also the value of `pika_sidecar_exit_code` in the final push):',
    '',
    ...exitTable(EXIT_CODES),
    '',
    '`pika-sidecar drain`, `status` and `check-config`:',
    '',
    ...exitTable(TOOL_EXIT_CODES),
  ];
}

export function renderReference(): string {
  const lines = [
    '# pika-sidecar reference',
    '',
    '<!-- Generated from the code by `npm run docs` (src/docs/reference.ts); do not edit by hand: a test fails when it is stale. -->',
    '',
    'Every configuration key, metric, admin endpoint and exit code, from their single declarations in the code.',
    '',
    ...configSection(),
    '',
    ...metricsSection(),
    '',
    ...endpointsSection(),
    '',
    ...exitSection(),
  ];
  return `${lines.join('\n')}\n`;
}
