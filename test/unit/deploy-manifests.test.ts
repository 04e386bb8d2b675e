/**
 * deploy/ checked offline: every manifest against the Kubernetes API schemas (kubernetes-models),
 * and the agreements between the pieces that no schema can see: the stop gate points at what the
 * sidecar serves, ports agree across containers, Services, probes and the NetworkPolicy, the grace
 * period holds the sidecar's deadline, the Dockerfile builds what the manifests run.
 * No sockets: files only (the kubelet play in test/e2e runs the manifests).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { interceptBudgetMs, type SidecarConfig } from '../../src/config/schema.js';
import { DRAINED_FILE, TRIGGER_FILE } from '../../src/shutdown/trigger-file.js';
import {
  BACKEND_CONTAINER,
  DEPLOY_DIR,
  DOCKERFILE,
  Deployment,
  REPO_ROOT,
  SIDECAR_CONTAINER,
  VARIANTS,
  dockerfileInstructions,
  kustomizationResources,
  readYamlDocuments,
  sidecarImage,
  type K8sObject,
  type Variant,
} from '../support/kubelet/index.js';
import type { IContainer as Container, IPodSpec as PodSpec } from 'kubernetes-models/v1';

/**
 * The schema validator: kubernetes-models (a devDependency; Kubernetes 1.29+ API, so it knows
 * native sidecars and the sleep hook). Imported by a computed name so this file's other tests run
 * without it (the types this file and the kubelet take from it are gone after the build); the
 * schema test fails, not skips, when it is missing.
 */
const VALIDATOR_PACKAGE = 'kubernetes-models';
const VALIDATOR_HINT = 'add the devDependency kubernetes-models@4.5.1 (npm install --save-dev kubernetes-models@4.5.1)';

/** Seconds the grace period must leave after the sidecar's deadline: Pika's own exit, hook dispatch. */
const GRACE_MARGIN_MS = 10_000;
/** Pika derives its replication port (+2000) and full-sync file port (+10001) from its client port. */
const PIKA_REPL_OFFSET = 2000;
const PIKA_RSYNC_OFFSET = 10001;

type ModelClass = new (data: unknown) => { validate(): void };

async function modelClass(apiVersion: string, kind: string): Promise<ModelClass> {
  const specifier = `${VALIDATOR_PACKAGE}/${apiVersion}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && !existsSync(join(REPO_ROOT, 'node_modules', VALIDATOR_PACKAGE))) {
      throw new Error(`the Kubernetes schema validator is not installed: ${VALIDATOR_HINT}`);
    }
    throw new Error(`no Kubernetes schemas for apiVersion ${apiVersion} in ${VALIDATOR_PACKAGE}: ${(err as Error).message}`);
  }
  const cls = mod[kind];
  if (typeof cls !== 'function') throw new Error(`no Kubernetes schema for ${apiVersion} ${kind} in ${VALIDATOR_PACKAGE}`);
  return cls as ModelClass;
}

async function schemaErrors(object: K8sObject): Promise<string | undefined> {
  const Model = await modelClass(object.apiVersion, object.kind);
  try {
    new Model(object).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * PodMonitor and PrometheusRule are prometheus-operator CRDs, which kubernetes-models does not know:
 * their shape is checked by hand here (the fields the operator requires and the ones we rely on);
 * the rules themselves are checked by promtool (monitoring-rules.test.ts).
 */
const OPERATOR_API = 'monitoring.coreos.com/v1';

function isOperatorCrd(object: K8sObject): boolean {
  return object.apiVersion === OPERATOR_API && (object.kind === 'PodMonitor' || object.kind === 'PrometheusRule');
}

function crdShapeErrors(object: K8sObject): string | undefined {
  const spec = (object as unknown as { spec?: Record<string, unknown> }).spec;
  const problems: string[] = [];
  if (typeof spec !== 'object' || spec === null) return 'no spec';
  if (object.kind === 'PodMonitor') {
    const sel = spec['selector'] as { matchLabels?: unknown } | undefined;
    if (typeof sel?.matchLabels !== 'object' || sel.matchLabels === null) problems.push('spec.selector.matchLabels is not a mapping');
    const eps = spec['podMetricsEndpoints'];
    if (!Array.isArray(eps) || eps.length === 0) problems.push('spec.podMetricsEndpoints is empty');
    for (const [i, e] of (Array.isArray(eps) ? eps : []).entries()) {
      const ep = e as Record<string, unknown>;
      if (typeof ep['port'] !== 'string') problems.push(`podMetricsEndpoints[${i}].port is not a port name`);
      for (const d of ['interval', 'scrapeTimeout']) {
        if (ep[d] !== undefined && !/^(\d+(ms|s|m|h))+$/.test(String(ep[d])))
          problems.push(`podMetricsEndpoints[${i}].${d} is not a duration`);
      }
    }
  } else {
    const groups = spec['groups'];
    if (!Array.isArray(groups) || groups.length === 0) problems.push('spec.groups is empty');
    for (const [i, g] of (Array.isArray(groups) ? groups : []).entries()) {
      const group = g as { name?: unknown; rules?: unknown };
      if (typeof group.name !== 'string') problems.push(`groups[${i}].name is missing`);
      if (!Array.isArray(group.rules) || group.rules.length === 0) problems.push(`groups[${i}].rules is empty`);
      for (const [j, r] of (Array.isArray(group.rules) ? group.rules : []).entries()) {
        const rule = r as Record<string, unknown>;
        if (typeof rule['alert'] !== 'string' && typeof rule['record'] !== 'string')
          problems.push(`groups[${i}].rules[${j}] is neither alert nor record`);
        if (typeof rule['expr'] !== 'string') problems.push(`groups[${i}].rules[${j}].expr is not a string`);
      }
    }
  }
  return problems.length === 0 ? undefined : problems.join('; ');
}

// ---- reading the sidecar's configuration as the container gets it ----

/**
 * Flags after the command word, as yargs gives them: `--flag value`, `--flag=value`, and a flag
 * followed by another flag (or nothing) as the boolean 'true'.
 */
function parseFlags(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    const next = args[i + 1];
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (next === undefined || next.startsWith('--')) out[a.slice(2)] = 'true';
    else {
      out[a.slice(2)] = next;
      i += 1;
    }
  }
  return out;
}

function sidecarOf(dep: Deployment): Container {
  return dep.container(SIDECAR_CONTAINER).container;
}

function backendOf(dep: Deployment): Container {
  return dep.container(BACKEND_CONTAINER).container;
}

/** The sidecar's effective configuration: its ConfigMap file, container env and args, via the real loader. */
function sidecarConfig(dep: Deployment): { config: SidecarConfig; flags: Record<string, string> } {
  const sidecar = sidecarOf(dep);
  const args = sidecar.args ?? [];
  assert.equal(args[0], 'run', 'the sidecar container runs `run`');
  const flags = parseFlags(args);
  const configPath = flags['config'];
  assert.ok(configPath !== undefined, 'the sidecar is given --config');
  const dir = mkdtempSync(join(tmpdir(), 'pika-sidecar-deploy-'));
  try {
    const file = join(dir, 'pika-sidecar.yaml');
    writeFileSync(file, dep.mountedFile(SIDECAR_CONTAINER, configPath));
    const { config } = loadConfig({ argv: { ...flags, config: file }, env: dep.containerEnv(SIDECAR_CONTAINER), configPath: file });
    return { config, flags };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function phaseBudgetsMs(c: SidecarConfig): number {
  const s = c.shutdown;
  return interceptBudgetMs(s) + s.drainTimeoutMs + s.closeTimeoutMs + s.replicationTimeoutMs + s.releaseTimeoutMs;
}

/** Pika's `key : value` configuration lines. */
function pikaConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z][\w-]*)\s*:\s*(.*?)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith('#')) out.set(m[1]!, m[2]!);
  }
  return out;
}

function backendConf(dep: Deployment): Map<string, string> {
  const backend = backendOf(dep);
  const script = (backend.args ?? []).join('\n');
  const m = /cp\s+(\S+)\s+/.exec(script);
  assert.ok(m, "the Pika container's start script copies its configuration from the ConfigMap");
  return pikaConf(dep.mountedFile(BACKEND_CONTAINER, m[1]!));
}

function serviceTargetPort(spec: PodSpec, target: number | string): number {
  if (typeof target === 'number') return target;
  // A Service's named targetPort is looked up among all containers of the pod.
  const found = [...(spec.initContainers ?? []), ...spec.containers].flatMap((c) => c.ports ?? []).filter((p) => p.name === target);
  assert.equal(found.length, 1, `exactly one container port is named ${target}`);
  return found[0]!.containerPort;
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
}

interface ServiceSpec {
  clusterIP?: string;
  selector?: Record<string, string>;
  ports: Array<{ name?: string; port: number; targetPort?: number | string }>;
}

interface PolicyRule {
  from?: Array<{ podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: { matchLabels?: Record<string, string> } }>;
  ports?: Array<{ port: number | string; protocol?: string }>;
}

// ---- the tests ----

describe('Kubernetes schemas', () => {
  test('every manifest of both deployments is valid against the Kubernetes API schemas', async () => {
    const problems: string[] = [];
    for (const variant of VARIANTS) {
      for (const m of Deployment.load(variant).manifests) {
        const err = isOperatorCrd(m.object) ? crdShapeErrors(m.object) : await schemaErrors(m.object);
        if (err !== undefined) problems.push(`${m.file} #${m.index} ${m.object.kind} ${m.object.metadata.name}: ${err}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('the schema validator rejects a StatefulSet whose container port is not a number', async () => {
    const broken = structuredClone(Deployment.load('regular').statefulSet) as unknown as { spec: { template: { spec: PodSpec } } };
    broken.spec.template.spec.containers[0]!.ports![0]!.containerPort = 'nine thousand' as unknown as number;
    const err = await schemaErrors(broken as unknown as K8sObject);
    assert.match(err ?? 'accepted', /containerPort/);
  });
});

describe('deploy/kubernetes files', () => {
  test('every manifest file is applied by a kustomization, and every kustomization resource exists', () => {
    const applied = new Set(VARIANTS.flatMap((v) => kustomizationResources(join(DEPLOY_DIR, 'kubernetes', v))));
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(name) && name !== 'kustomization.yaml') files.push(p);
      }
    };
    walk(join(DEPLOY_DIR, 'kubernetes'));
    assert.ok(files.length > 0);
    assert.deepEqual(
      files.filter((f) => !applied.has(f)).map((f) => relative(REPO_ROOT, f)),
      [],
    );
  });

  test('every YAML file under deploy/ parses', () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const p = join(dir, name);
        return statSync(p).isDirectory() ? walk(p) : /\.ya?ml$/.test(name) ? [p] : [];
      });
    for (const file of walk(DEPLOY_DIR)) assert.ok(readYamlDocuments(file).length > 0, `${relative(REPO_ROOT, file)} has documents`);
  });

  test('the two deployments differ only in where the sidecar runs and in the backend gate hook', () => {
    const normalized = (variant: Variant) => {
      const spec = structuredClone(Deployment.load(variant).podSpec);
      const sidecar = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === SIDECAR_CONTAINER)!;
      delete sidecar.restartPolicy;
      // A native sidecar also holds until its own SIGTERM after a gate-triggered drain (or the
      // kubelet would restart it while Pika still stops): the one flag that differs.
      if (variant === 'native-sidecar') {
        assert.ok(sidecar.args?.includes('--shutdown-hold-until-signal'), 'the native sidecar holds until its SIGTERM');
        sidecar.args = sidecar.args!.filter((a) => a !== '--shutdown-hold-until-signal');
      }
      const backend = spec.containers.find((c) => c.name === BACKEND_CONTAINER)!;
      delete backend.lifecycle;
      const containers = spec.containers.filter((c) => c.name !== SIDECAR_CONTAINER);
      const rest: Partial<PodSpec> = { ...spec };
      delete rest.initContainers;
      delete rest.containers;
      return { rest, containers: [...containers, sidecar] };
    };
    assert.deepEqual(normalized('native-sidecar'), normalized('regular'));
    const objects = (variant: Variant) =>
      Deployment.load(variant)
        .manifests.filter((m) => m.object.kind !== 'StatefulSet')
        .map((m) => m.object);
    assert.deepEqual(objects('native-sidecar'), objects('regular'));
  });
});

for (const variant of VARIANTS) {
  describe(`the ${variant} deployment`, () => {
    const dep = Deployment.load(variant);

    test('holds one StatefulSet, a client Service, a headless Service, a NetworkPolicy, two ConfigMaps (config, dashboard), a Secret, a PodMonitor and a PrometheusRule', () => {
      const kinds = dep.manifests.map((m) => m.object.kind).sort();
      assert.deepEqual(kinds, [
        'ConfigMap',
        'ConfigMap',
        'NetworkPolicy',
        'PodMonitor',
        'PrometheusRule',
        'Secret',
        'Service',
        'Service',
        'StatefulSet',
      ]);
    });

    test("the sidecar's configuration loads with the project's own loader, and its phase budgets fit in its deadline", () => {
      const { config } = sidecarConfig(dep);
      assert.ok(
        phaseBudgetsMs(config) <= config.shutdown.deadlineMs,
        `budgets ${phaseBudgetsMs(config)} ms <= deadline ${config.shutdown.deadlineMs} ms`,
      );
      assert.equal(config.adminToken, dep.secretData('pika-sidecar-admin')['token'], 'the admin token comes from the Secret');
    });

    test("terminationGracePeriodSeconds holds the sidecar's deadline plus a margin for the backend's exit", () => {
      const { config } = sidecarConfig(dep);
      const graceMs = (dep.podSpec.terminationGracePeriodSeconds ?? 30) * 1000;
      assert.ok(
        graceMs >= config.shutdown.deadlineMs + GRACE_MARGIN_MS,
        `grace ${graceMs} ms >= deadline ${config.shutdown.deadlineMs} ms + margin ${GRACE_MARGIN_MS} ms`,
      );
    });

    test("the sidecar's container ports are its listen and admin ports, reachable from outside the pod", () => {
      const { config } = sidecarConfig(dep);
      assert.equal(config.listen.host, '0.0.0.0', 'clients come through the Service: listen on every interface');
      assert.equal(config.admin.host, '0.0.0.0', 'the kubelet probes from the node: admin on every interface');
      assert.equal(dep.namedPort(SIDECAR_CONTAINER, 'client'), config.listen.port);
      assert.equal(dep.namedPort(SIDECAR_CONTAINER, 'admin'), config.admin.port);
    });

    test("the sidecar fronts Pika on loopback at Pika's configured port, and Pika exposes its replication ports", () => {
      const { config } = sidecarConfig(dep);
      assert.equal(config.backend.host, '127.0.0.1');
      const pikaPort = dep.namedPort(BACKEND_CONTAINER, 'pika');
      assert.equal(config.backend.port, pikaPort);
      assert.equal(Number(backendConf(dep).get('port')), pikaPort, 'pika.conf port = the container port');
      assert.equal(dep.namedPort(BACKEND_CONTAINER, 'pika-repl'), pikaPort + PIKA_REPL_OFFSET);
      assert.equal(dep.namedPort(BACKEND_CONTAINER, 'pika-rsync'), pikaPort + PIKA_RSYNC_OFFSET);
    });

    test("Pika's data paths are on the data volume (the root filesystem is read-only)", () => {
      const conf = backendConf(dep);
      for (const key of ['db-path', 'log-path', 'dump-path', 'db-sync-path', 'pidfile']) {
        const path = conf.get(key);
        assert.ok(path !== undefined, `pika.conf sets ${key}`);
        assert.equal(dep.volumeAt(BACKEND_CONTAINER, path)?.mount.name, 'data', `${key} ${path} is on the data volume`);
      }
    });

    test("the backend's preStop blocks on the stop gate the sidecar serves", () => {
      const { config } = sidecarConfig(dep);
      const hook = backendOf(dep).lifecycle?.preStop;
      assert.ok(hook, 'the backend container has a preStop hook');
      if (hook.httpGet) {
        assert.equal(hook.httpGet.path, '/drain/gate');
        assert.equal(
          dep.resolvePort(BACKEND_CONTAINER, hook.httpGet.port),
          config.admin.port,
          "the gate hook targets the sidecar's admin port",
        );
        assert.equal(hook.httpGet.host, undefined, "the hook dials the pod's own IP");
        assert.equal(hook.httpGet.scheme ?? 'HTTP', 'HTTP');
        const auth = hook.httpGet.httpHeaders?.find((h) => h.name.toLowerCase() === 'authorization');
        assert.equal(
          auth?.value,
          `Bearer ${config.adminToken ?? ''}`,
          'the kubelet is not a loopback caller: the hook presents the admin token',
        );
      } else {
        assert.ok(hook.exec, 'the gate hook is httpGet or exec');
        const [shell, flag, script] = hook.exec.command ?? [];
        assert.equal(shell, 'sh');
        assert.equal(flag, '-c');
        assert.ok(script !== undefined);
        // The file gate: the backend sees the sidecar's trigger dir through the same emptyDir.
        const triggerDir = config.shutdown.triggerDir;
        assert.ok(triggerDir !== undefined, 'the sidecar has a trigger dir');
        const sidecarSide = dep.volumeAt(SIDECAR_CONTAINER, triggerDir);
        assert.ok(sidecarSide?.volume.emptyDir, 'the trigger dir is on an emptyDir');
        const backendMount = backendOf(dep).volumeMounts?.find((m) => m.name === sidecarSide.volume.name);
        assert.ok(backendMount, 'the backend mounts the same volume');
        const dir = join(backendMount.mountPath, sidecarSide.inside);
        assert.ok(script.includes(`touch ${join(dir, TRIGGER_FILE)}`), `the hook creates ${join(dir, TRIGGER_FILE)}`);
        assert.ok(script.includes(`[ ! -f ${join(dir, DRAINED_FILE)} ]`), `the hook waits for ${join(dir, DRAINED_FILE)}`);
        // Bounded a little past the sidecar's deadline, inside the grace period.
        const bound = /-lt (\d+) \]; do sleep ([\d.]+);/.exec(script);
        assert.ok(bound, 'the wait loop is bounded');
        const maxWaitMs = Number(bound[1]) * Number(bound[2]) * 1000;
        assert.ok(maxWaitMs >= config.shutdown.deadlineMs, `the loop (${maxWaitMs} ms) outlasts the deadline`);
        assert.ok(maxWaitMs < (dep.podSpec.terminationGracePeriodSeconds ?? 30) * 1000, 'the loop ends within the grace period');
      }
    });

    test('both containers share the gate emptyDir, whichever gate the backend uses', () => {
      const { config } = sidecarConfig(dep);
      const at = dep.volumeAt(SIDECAR_CONTAINER, config.shutdown.triggerDir ?? '/nonexistent');
      assert.ok(at?.volume.emptyDir, 'the trigger dir is on an emptyDir');
      assert.ok(backendOf(dep).volumeMounts?.some((m) => m.name === at.volume.name));
    });

    test("the sidecar's own preStop runs `drain --wait` against its own admin port, with the image's CLI", () => {
      const { config } = sidecarConfig(dep);
      const command = sidecarOf(dep).lifecycle?.preStop?.exec?.command;
      assert.ok(command, 'the sidecar has an exec preStop');
      const image = sidecarImage();
      assert.deepEqual(command.slice(0, image.entrypoint.length), image.entrypoint, "the hook runs the image's CLI");
      const rest = command.slice(image.entrypoint.length);
      assert.equal(rest[0], 'drain');
      const flags = parseFlags(rest);
      assert.equal(flags['wait'], 'true', 'the hook waits until drained');
      const admin = new URL(flags['admin'] ?? 'http://127.0.0.1:9121');
      assert.equal(admin.hostname, '127.0.0.1', 'the hook calls on loopback (no token needed)');
      assert.equal(Number(admin.port), config.admin.port);
    });

    test('readiness is /readyz and liveness /healthz on the admin port; readiness fails fast enough for the announce delay', () => {
      const { config } = sidecarConfig(dep);
      const sidecar = sidecarOf(dep);
      const ready = sidecar.readinessProbe;
      const live = sidecar.livenessProbe;
      assert.ok(ready?.httpGet && live?.httpGet, 'both probes are httpGet');
      assert.equal(ready.httpGet.path, '/readyz');
      assert.equal(live.httpGet.path, '/healthz');
      assert.equal(dep.resolvePort(SIDECAR_CONTAINER, ready.httpGet.port), config.admin.port);
      assert.equal(dep.resolvePort(SIDECAR_CONTAINER, live.httpGet.port), config.admin.port);
      const noticeMs = (ready.periodSeconds ?? 10) * (ready.failureThreshold ?? 3) * 1000;
      assert.ok(noticeMs < config.shutdown.announceDelayMs, `the kubelet sees 503 within ${noticeMs} ms, before the announce delay ends`);
      assert.equal(sidecar.startupProbe, undefined, 'no startupProbe: it would hold a native sidecar until a backend that has not started');
    });

    const fronted = variant === 'fronted';
    test(`the client Service targets the sidecar, the headless Service targets ${fronted ? "the sidecar's client and replication ports" : 'Pika'}, and both select the pods`, () => {
      const { config } = sidecarConfig(dep);
      const labels = dep.podTemplate.metadata.labels;
      const services = dep.objects('Service') as Array<K8sObject & { spec: ServiceSpec }>;
      const headless = services.filter((s) => s.spec.clusterIP === 'None');
      const client = services.filter((s) => s.spec.clusterIP !== 'None');
      assert.equal(headless.length, 1);
      assert.equal(client.length, 1);
      for (const s of services) assert.ok(matches(s.spec.selector, labels), `${s.metadata.name} selects the pods`);
      assert.ok(matches(dep.statefulSet.spec.selector.matchLabels, labels));

      const clientTargets = client[0]!.spec.ports.map((p) => serviceTargetPort(dep.podSpec, p.targetPort ?? p.port));
      assert.deepEqual(clientTargets, [config.listen.port], 'clients reach the sidecar only');

      assert.equal(dep.statefulSet.spec.serviceName, headless[0]!.metadata.name, 'the headless Service governs the StatefulSet');
      // Direct: Pika's own three ports. Fronted: the sidecar's listen port and its +2000/+10001.
      const replicaPorts = fronted ? frontedPorts(config.listen.port) : (backendOf(dep).ports ?? []).map((p) => p.containerPort).sort();
      const headlessTargets = headless[0]!.spec.ports.map((p) => serviceTargetPort(dep.podSpec, p.targetPort ?? p.port)).sort();
      assert.deepEqual(
        headlessTargets,
        replicaPorts,
        fronted
          ? "the headless Service carries the sidecar's client and replication ports"
          : "the headless Service carries Pika's own ports",
      );
      for (const p of headless[0]!.spec.ports)
        assert.equal(
          p.port,
          serviceTargetPort(dep.podSpec, p.targetPort ?? p.port),
          'replicas derive +2000/+10001 from the port they dial: it must be the real one',
        );
    });

    test(
      fronted
        ? "replicas dial the first pod's sidecar through the headless Service, never Pika itself"
        : "replicas dial the first pod's Pika through the headless Service, never a sidecar",
      () => {
        const script = (backendOf(dep).args ?? []).join('\n');
        const m = /slaveof : ([\w.-]+):(\d+)/.exec(script);
        assert.ok(m, 'the start script sets slaveof');
        const headless = (dep.objects('Service') as Array<K8sObject & { spec: ServiceSpec }>).find((s) => s.spec.clusterIP === 'None')!;
        assert.equal(m[1], `${dep.statefulSet.metadata.name}-0.${headless.metadata.name}`);
        assert.equal(Number(m[2]), fronted ? sidecarConfig(dep).config.listen.port : dep.namedPort(BACKEND_CONTAINER, 'pika'));
      },
    );

    test(`the NetworkPolicy admits ${fronted ? "the sidecar's replication ports and Pika's client port only from Pika pods, Pika's replication ports from nobody" : "Pika's ports only from Pika pods"}, clients only to the sidecar, the admin port only from monitoring`, () => {
      const { config } = sidecarConfig(dep);
      const policy = dep.one('NetworkPolicy') as K8sObject & {
        spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes?: string[]; ingress?: PolicyRule[] };
      };
      const labels = dep.podTemplate.metadata.labels;
      assert.ok(matches(policy.spec.podSelector.matchLabels, labels), 'the policy selects the pods');
      assert.ok(policy.spec.policyTypes?.includes('Ingress'));
      const rules = policy.spec.ingress ?? [];
      const pikaPorts = (backendOf(dep).ports ?? []).map((p) => p.containerPort);
      const portsOf = (r: PolicyRule) => (r.ports ?? []).map((p) => serviceTargetPort(dep.podSpec, p.port));
      const podPorts = dep.allContainers.flatMap((c) => c.ports ?? []).map((p) => p.containerPort);
      for (const r of rules) {
        assert.ok((r.ports ?? []).length > 0, 'every rule names its ports');
        for (const p of portsOf(r)) assert.ok(podPorts.includes(p), `policy port ${p} is a port of the pod`);
      }
      // Fronted: replicas reach the sidecar's +2000/+10001 (from Pika pods only); a master's sidecar
      // reaches Pika's client port (each replica's INFO, at its announced address); Pika's own
      // +2000/+10001 are only dialled by the pod's own sidecar, over loopback.
      const pikaClient = dep.namedPort(BACKEND_CONTAINER, 'pika');
      const podOnly = fronted ? [...frontedPorts(config.listen.port).filter((p) => p !== config.listen.port), pikaClient] : pikaPorts;
      if (fronted) {
        for (const port of pikaPorts.filter((p) => p !== pikaClient)) {
          assert.ok(
            !rules.some((r) => portsOf(r).includes(port)),
            `Pika's replication port ${port} is admitted by no rule (loopback only)`,
          );
        }
      }
      for (const port of podOnly) {
        const admitting = rules.filter((r) => portsOf(r).includes(port));
        assert.ok(admitting.length > 0, `Pika port ${port} is admitted for replicas`);
        for (const r of admitting) {
          assert.ok(r.from !== undefined && r.from.length > 0, `Pika port ${port} is not open to everyone`);
          for (const peer of r.from) {
            assert.equal(peer.namespaceSelector, undefined, `Pika port ${port}: peers from this namespace only`);
            assert.ok(
              matches(peer.podSelector?.matchLabels, labels) && Object.keys(peer.podSelector?.matchLabels ?? {}).length > 0,
              `Pika port ${port}: only Pika pods`,
            );
          }
        }
      }
      assert.ok(
        rules.some((r) => portsOf(r).includes(config.listen.port)),
        'clients may reach the sidecar port',
      );
      const adminRules = rules.filter((r) => portsOf(r).includes(config.admin.port));
      assert.ok(adminRules.length > 0, 'Prometheus may reach the admin port');
      for (const r of adminRules) assert.ok(r.from !== undefined && r.from.length > 0, 'the admin port is not open to everyone');
    });

    test('the scrape annotations point at the metrics endpoint on the admin port', () => {
      const { config } = sidecarConfig(dep);
      const a = dep.podTemplate.metadata.annotations ?? {};
      assert.equal(a['prometheus.io/scrape'], 'true');
      assert.equal(Number(a['prometheus.io/port']), config.admin.port);
      assert.equal(a['prometheus.io/path'], '/metrics');
    });

    test('every container runs non-root on a read-only root filesystem, with no privileges and with resources set', () => {
      const podSc = dep.podSpec.securityContext ?? {};
      assert.equal(podSc.seccompProfile?.type, 'RuntimeDefault');
      for (const c of dep.allContainers) {
        const sc = c.securityContext ?? {};
        assert.ok(sc.runAsNonRoot ?? podSc.runAsNonRoot, `${c.name} runs as non-root`);
        assert.ok((sc.runAsUser ?? podSc.runAsUser ?? 1) !== 0, `${c.name} does not run as uid 0`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${c.name} has a read-only root filesystem`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${c.name} cannot escalate`);
        assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${c.name} drops every capability`);
        assert.ok(
          c.resources?.requests?.['cpu'] !== undefined && c.resources.requests['memory'] !== undefined,
          `${c.name} requests cpu and memory`,
        );
        assert.ok(c.resources.limits?.['memory'] !== undefined, `${c.name} has a memory limit`);
      }
      const user = dockerfileInstructions()
        .filter((d) => d.instruction === 'USER')
        .at(-1)
        ?.args.split(':')[0];
      assert.equal(String(sidecarOf(dep).securityContext?.runAsUser), user, "the sidecar's runAsUser is the image's USER");
    });

    if (variant === 'native-sidecar') {
      test('the sidecar is an initContainer with restartPolicy Always, and not a regular container', () => {
        const { container, init } = dep.container(SIDECAR_CONTAINER);
        assert.equal(init, true);
        assert.equal(container.restartPolicy, 'Always');
        assert.ok(!dep.podSpec.containers.some((c) => c.name === SIDECAR_CONTAINER));
        assert.deepEqual(
          dep.nativeSidecars.map((c) => c.name),
          [SIDECAR_CONTAINER],
        );
      });
    } else {
      test('the sidecar is a regular container beside Pika', () => {
        const { container, init } = dep.container(SIDECAR_CONTAINER);
        assert.equal(init, false);
        assert.equal(container.restartPolicy, undefined);
        assert.deepEqual(dep.podSpec.initContainers ?? [], []);
      });
    }

    if (fronted) {
      test("the sidecar fronts Pika's replication ports: the option is on and its container ports are listen +2000 and +10001, distinct from Pika's", () => {
        const { config } = sidecarConfig(dep);
        assert.equal(config.replication.frontPikaPorts, true);
        assert.equal(dep.namedPort(SIDECAR_CONTAINER, 'front-repl'), config.listen.port + PIKA_REPL_OFFSET);
        assert.equal(dep.namedPort(SIDECAR_CONTAINER, 'front-rsync'), config.listen.port + PIKA_RSYNC_OFFSET);
        assert.equal(config.listen.port, 9221, "the sidecar takes Pika's usual port, so replicas' slaveof looks as usual");
        assert.equal(config.backend.port, 9321);
        const sidecarPorts = (sidecarOf(dep).ports ?? []).map((p) => p.containerPort);
        for (const p of backendOf(dep).ports ?? [])
          assert.ok(!sidecarPorts.includes(p.containerPort), `Pika's ${p.containerPort} is not a sidecar port`);
      });

      test('apart from ports, the Pika port and the option, the fronted StatefulSet is the regular one', () => {
        const strip = (v: Variant) => {
          const spec = structuredClone(Deployment.load(v).podSpec);
          for (const c of spec.containers) {
            delete c.ports;
            // Shell comments in the start script say which port family replicas dial.
            if (c.args)
              c.args = c.args.map((a) =>
                a
                  .split('\n')
                  .filter((l) => !/^\s*#/.test(l))
                  .join('\n'),
              );
          }
          const sidecar = spec.containers.find((c) => c.name === SIDECAR_CONTAINER)!;
          sidecar.args = sidecar.args!.filter((a) => a !== '--replication-front-pika-ports' && !/^[\d.]+:\d+$/.test(a));
          return spec;
        };
        assert.deepEqual(strip('fronted'), strip('regular'));
      });
    }
  });
}

/** The sidecar's client port and its two derived replication ports, sorted. */
function frontedPorts(listenPort: number): number[] {
  return [listenPort, listenPort + PIKA_REPL_OFFSET, listenPort + PIKA_RSYNC_OFFSET].sort();
}

describe('monitoring assets in both deployments', () => {
  for (const variant of VARIANTS) {
    const dep = Deployment.load(variant);

    test(`${variant}: the PodMonitor selects the pods and scrapes the sidecar's admin port at /metrics, at most metricsLinger apart`, () => {
      const pm = dep.one('PodMonitor') as unknown as {
        spec: {
          selector: { matchLabels: Record<string, string> };
          podMetricsEndpoints: Array<{ port: string; path: string; interval: string }>;
        };
      };
      const podLabels = (dep.statefulSet as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec
        .template.metadata.labels;
      assert.ok(matches(pm.spec.selector.matchLabels, podLabels), 'the selector matches the pod template');
      const [ep] = pm.spec.podMetricsEndpoints;
      assert.equal(ep?.port, 'admin');
      assert.equal(ep?.path, '/metrics');
      assert.equal(
        dep.namedPort(SIDECAR_CONTAINER, 'admin'),
        sidecarConfig(dep).config.admin.port,
        "the named port is the sidecar's admin port",
      );
      const intervalMs = Number(/^(\d+)s$/.exec(ep.interval)?.[1]) * 1000;
      assert.ok(
        intervalMs <= sidecarConfig(dep).config.shutdown.metricsLingerMs,
        `interval ${ep.interval}: a scrape lands inside the linger`,
      );
    });

    test(`${variant}: the dashboard is a ConfigMap Grafana discovers, holding a dashboard whose every panel has a query`, () => {
      const cm = dep.one('ConfigMap', 'pika-sidecar-dashboard');
      assert.equal(cm.metadata.labels?.['grafana_dashboard'], '1');
      const dashboard = JSON.parse(dep.configMapData('pika-sidecar-dashboard')['pika-sidecar.json'] ?? '') as {
        uid: string;
        panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
      };
      assert.equal(dashboard.uid, 'pika-sidecar');
      assert.ok(dashboard.panels.length >= 6);
      for (const p of dashboard.panels)
        assert.ok(p.targets.length > 0 && p.targets.every((t) => t.expr.includes('pika_sidecar_')), p.title);
    });
  }

  test('the hand check of the operator CRDs rejects a PodMonitor without endpoints and a rule without expr', () => {
    const dep = Deployment.load('regular');
    const pm = structuredClone(dep.one('PodMonitor')) as unknown as { spec: Record<string, unknown> };
    pm.spec['podMetricsEndpoints'] = [];
    assert.match(crdShapeErrors(pm as unknown as K8sObject) ?? 'accepted', /podMetricsEndpoints is empty/);
    const rule = structuredClone(dep.one('PrometheusRule')) as unknown as {
      spec: { groups: Array<{ rules: Array<Record<string, unknown>> }> };
    };
    delete rule.spec.groups[0]!.rules[0]!['expr'];
    assert.match(crdShapeErrors(rule as unknown as K8sObject) ?? 'accepted', /expr is not a string/);
  });
});

describe('deploy/Dockerfile', () => {
  const all = dockerfileInstructions();
  const froms = all.filter((d) => d.instruction === 'FROM');
  const finalStage = all.slice(all.lastIndexOf(froms.at(-1)!));

  test('builds in node:20-bookworm-slim and runs on a distroless or slim Node.js 20 image, every image tagged', () => {
    assert.ok(froms.length >= 2, 'multi-stage');
    assert.match(froms[0]!.args, /^node:20-bookworm-slim\s+AS\s+build$/i);
    assert.match(froms.at(-1)!.args, /^(gcr\.io\/distroless\/nodejs20-debian\d+(:[\w.-]+)?|node:20[\w.-]*-slim)$/);
    for (const f of froms) {
      const image = f.args.split(/\s+/)[0]!;
      assert.ok(/[:@]/.test(image.split('/').at(-1)!) && !image.endsWith(':latest'), `${image} is pinned to a tag`);
    }
  });

  test('the runtime stage runs as a non-root numeric user, with the CLI as ENTRYPOINT and run as CMD', () => {
    const user = finalStage.filter((d) => d.instruction === 'USER').at(-1)?.args;
    assert.match(user ?? '', /^[1-9]\d*(:\d+)?$/, 'USER is a numeric non-root uid (runAsNonRoot can check it)');
    const image = sidecarImage();
    assert.deepEqual(image.entrypoint, ['node', '/app/dist/src/cli.js']);
    assert.deepEqual(image.cmd, ['run']);
    assert.ok(
      finalStage.some((d) => d.instruction === 'COPY' && d.args.includes('--from=build')),
      'the runtime copies the build output',
    );
    assert.ok(!finalStage.some((d) => d.instruction === 'RUN'), 'the runtime stage runs nothing (no shell in distroless)');
  });

  test('the image holds the product only: the demo, the harness and the tests stay out', () => {
    const build = all
      .slice(0, all.lastIndexOf(froms.at(-1)!))
      .filter((d) => d.instruction === 'RUN')
      .map((d) => d.args)
      .join(' ');
    assert.match(build, /cp -r dist\/src \/app\/dist\/src\b/, 'the build copies dist/src into the image');
    assert.ok(!/cp -r dist\/? /.test(build), 'never the whole of dist/ (dist/harness, dist/demo, dist/test)');
    for (const dir of ['test', 'harness', 'demo']) {
      assert.ok(!all.some((d) => d.instruction === 'COPY' && new RegExp(`\\b${dir}\\b`).test(d.args)), `nothing of ${dir}/ is copied`);
      assert.ok(dockerignorePatterns(`${DOCKERFILE}.dockerignore`).includes(dir), `${dir}/ stays out of the build context`);
    }
  });

  test("the image's layout (dist/src without dist/demo): `pika-sidecar demo` says the demo is not in this build", (t) => {
    // Inside the repository, so the copied CLI still finds node_modules by walking up.
    const image = mkdtempSync(join(REPO_ROOT, 'dist', '.image-layout-'));
    t.after(() => rmSync(image, { recursive: true, force: true }));
    cpSync(join(REPO_ROOT, 'dist', 'src'), join(image, 'dist', 'src'), { recursive: true });
    const r = spawnSync(process.execPath, [join(image, 'dist', 'src', 'cli.js'), 'demo'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(r.status, 0, `exit code ${String(r.status)}; stdout: ${r.stdout}`);
    assert.match(r.stderr, /the demo is not available in this build/);
  });

  test('EXPOSE names the ports the manifests use', () => {
    const exposed = all
      .filter((d) => d.instruction === 'EXPOSE')
      .flatMap((d) => d.args.split(/\s+/))
      .map((p) => Number(p.split('/')[0]));
    const dep = Deployment.load('regular');
    for (const name of ['client', 'admin']) assert.ok(exposed.includes(dep.namedPort(SIDECAR_CONTAINER, name)), `port ${name} is exposed`);
  });

  test('everything COPY takes from the context exists and is not excluded by the dockerignore', () => {
    const ignored = dockerignorePatterns(`${DOCKERFILE}.dockerignore`);
    for (const d of all.filter((x) => x.instruction === 'COPY' && !x.args.includes('--from='))) {
      const parts = d.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(join(REPO_ROOT, src)), `COPY source ${src} (line ${d.line}) exists`);
        assert.ok(!ignored.includes(src.split('/')[0]!), `COPY source ${src} is not in the dockerignore`);
      }
    }
    for (const heavy of ['node_modules', 'dist']) assert.ok(ignored.includes(heavy), `${heavy} stays out of the build context`);
  });

  test('dependencies install from the lockfile, and no instruction fetches from the network by URL', () => {
    assert.ok(all.some((d) => d.instruction === 'RUN' && /\bnpm ci\b/.test(d.args)));
    assert.ok(!all.some((d) => d.instruction === 'ADD'), 'COPY, not ADD');
    assert.ok(!all.some((d) => d.instruction === 'RUN' && /\b(curl|wget)\b/.test(d.args)));
  });
});

/** A .dockerignore's patterns (comments and blanks dropped). */
function dockerignorePatterns(path: string): string[] {
  assert.ok(existsSync(path), `${relative(REPO_ROOT, path)} exists`);
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
