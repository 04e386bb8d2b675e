/**
 * The kubelet's part, played against local processes, from the manifests in deploy/ (so the play
 * and the manifests cannot drift apart):
 *
 *   Deployment     the objects of one variant (deploy/kubernetes/<variant>, kustomize resources
 *                  followed), with lookups: pod spec, containers, ConfigMaps, Secrets, ports
 *   sidecarImage   what deploy/Dockerfile puts in the image: ENTRYPOINT, CMD, WORKDIR
 *   LocalPod       one pod on this machine: every container port gets a loopback port, every
 *                  volume a directory; container commands, env and hooks are rewritten to them
 *   terminatePod   pod deletion as the kubelet does it: regular containers' preStop hooks run
 *                  together, each container gets SIGTERM after its own hook; native sidecars
 *                  (initContainers with restartPolicy Always) only after every regular container
 *                  exited, in reverse order; SIGKILL when the grace period runs out
 *
 * Only loopback addresses are used: a manifest's 0.0.0.0 becomes 127.0.0.1, and an address that is
 * neither loopback nor a wildcard is an error rather than something to dial.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { freePort } from './ports.js';

/** dist/test/support/kubelet.js -> the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');
export const DOCKERFILE = join(DEPLOY_DIR, 'Dockerfile');

/** regular and native-sidecar: the direct layout; fronted: replicas through the sidecar (replication.frontPikaPorts). */
export type Variant = 'regular' | 'native-sidecar' | 'fronted';
export const VARIANTS: readonly Variant[] = ['regular', 'native-sidecar', 'fronted'];
/** Container names the manifests use; the tests look containers up by these. */
export const SIDECAR_CONTAINER = 'pika-sidecar';
export const BACKEND_CONTAINER = 'pika';

// ---- the slice of the Kubernetes API the manifests use (field names as in the API) ----

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface HTTPGetAction {
  path?: string;
  port: number | string;
  host?: string;
  scheme?: string;
  httpHeaders?: Array<{ name: string; value: string }>;
}

export interface ExecAction {
  command: string[];
}

export interface LifecycleHandler {
  httpGet?: HTTPGetAction;
  exec?: ExecAction;
  sleep?: { seconds: number };
}

export interface Probe {
  httpGet?: HTTPGetAction;
  tcpSocket?: { port: number | string };
  exec?: ExecAction;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: LifecycleHandler; postStart?: LifecycleHandler };
  restartPolicy?: string;
  volumeMounts?: VolumeMount[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: SecurityContext;
}

export interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: { medium?: string; sizeLimit?: string };
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  enableServiceLinks?: boolean;
  securityContext?: SecurityContext & { fsGroup?: number; seccompProfile?: { type: string } };
}

export interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

/** One document of one manifest file. */
export interface Manifest {
  /** Relative to the repository root. */
  file: string;
  /** Position of the document in its file, from 0. */
  index: number;
  object: K8sObject;
}

// ---- reading deploy/ ----

/** Every YAML document of a file; a syntax error throws with the file named. */
export function readYamlDocuments(path: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      throw new Error(`${relative(REPO_ROOT, path)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function isK8sObject(value: unknown): value is K8sObject {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const meta = v['metadata'] as Record<string, unknown> | undefined;
  return typeof v['apiVersion'] === 'string' && typeof v['kind'] === 'string' && typeof meta?.['name'] === 'string';
}

/** The kustomization files of a directory tree, the directory's own first (kustomize's resource order). */
export function kustomizationResources(dir: string, seen = new Set<string>()): string[] {
  const file = join(dir, 'kustomization.yaml');
  if (seen.has(file)) throw new Error(`kustomization cycle at ${relative(REPO_ROOT, file)}`);
  seen.add(file);
  const [doc] = readYamlDocuments(file) as Array<{ resources?: unknown }>;
  const resources = doc?.resources;
  if (!Array.isArray(resources)) throw new Error(`${relative(REPO_ROOT, file)}: no resources list`);
  const files: string[] = [];
  for (const r of resources) {
    if (typeof r !== 'string') throw new Error(`${relative(REPO_ROOT, file)}: resource ${JSON.stringify(r)} is not a path`);
    const path = resolve(dir, r);
    if (!existsSync(path)) throw new Error(`${relative(REPO_ROOT, file)}: resource ${r} does not exist`);
    if (statSync(path).isDirectory()) files.push(...kustomizationResources(path, seen));
    else files.push(path);
  }
  return files;
}

/** The manifests a kustomization directory applies. */
export function loadManifests(dir: string): Manifest[] {
  const out: Manifest[] = [];
  for (const path of kustomizationResources(dir)) {
    readYamlDocuments(path).forEach((object, index) => {
      const file = relative(REPO_ROOT, path);
      if (!isK8sObject(object)) throw new Error(`${file} document ${index}: not a Kubernetes object (apiVersion, kind, metadata.name)`);
      out.push({ file, index, object });
    });
  }
  return out;
}

export class Deployment {
  private constructor(
    readonly variant: Variant,
    readonly manifests: readonly Manifest[],
  ) {}

  static load(variant: Variant): Deployment {
    return new Deployment(variant, loadManifests(join(DEPLOY_DIR, 'kubernetes', variant)));
  }

  objects(kind: string): K8sObject[] {
    return this.manifests.filter((m) => m.object.kind === kind).map((m) => m.object);
  }

  /** The one object of a kind (and name): anything else is an error. */
  one(kind: string, name?: string): K8sObject {
    const found = this.objects(kind).filter((o) => name === undefined || o.metadata.name === name);
    if (found.length !== 1) throw new Error(`${this.variant}: expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
    return found[0]!;
  }

  get statefulSet(): K8sObject & { spec: { serviceName: string; selector: { matchLabels: Record<string, string> }; template: PodTemplate } } {
    return this.one('StatefulSet') as never;
  }

  get podTemplate(): PodTemplate {
    return this.statefulSet.spec.template;
  }

  get podSpec(): PodSpec {
    return this.podTemplate.spec;
  }

  /** Every container of the pod: regular and init ones. */
  get allContainers(): Container[] {
    return [...(this.podSpec.initContainers ?? []), ...this.podSpec.containers];
  }

  container(name: string): { container: Container; init: boolean } {
    const init = this.podSpec.initContainers?.find((c) => c.name === name);
    if (init) return { container: init, init: true };
    const regular = this.podSpec.containers.find((c) => c.name === name);
    if (regular) return { container: regular, init: false };
    throw new Error(`${this.variant}: no container ${name}`);
  }

  /** initContainers with restartPolicy Always: started first, stopped last. */
  get nativeSidecars(): Container[] {
    return (this.podSpec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  }

  configMapData(name: string): Record<string, string> {
    return (this.one('ConfigMap', name)['data'] ?? {}) as Record<string, string>;
  }

  /** stringData and base64 data together, as the API server merges them. */
  secretData(name: string): Record<string, string> {
    const secret = this.one('Secret', name);
    const data = Object.entries((secret['data'] ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]);
    return { ...Object.fromEntries(data), ...((secret['stringData'] ?? {}) as Record<string, string>) };
  }

  /** A container's environment with secretKeyRef and configMapKeyRef resolved. */
  containerEnv(name: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of this.container(name).container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef) env[e.name] = required(this.secretData(e.valueFrom.secretKeyRef.name), e.valueFrom.secretKeyRef.key, e.name);
      else if (e.valueFrom?.configMapKeyRef) env[e.name] = required(this.configMapData(e.valueFrom.configMapKeyRef.name), e.valueFrom.configMapKeyRef.key, e.name);
      else throw new Error(`${this.variant}: env ${e.name} of ${name} has neither value nor a supported valueFrom`);
    }
    return env;
  }

  /**
   * A port as a container's probe or hook names it: a number as is, a name among that container's
   * own ports (the kubelet resolves names in the container only, not in the pod).
   */
  resolvePort(containerName: string, port: number | string): number {
    if (typeof port === 'number') return port;
    const found = this.container(containerName).container.ports?.find((p) => p.name === port);
    if (!found) throw new Error(`${this.variant}: container ${containerName} has no port named ${port}`);
    return found.containerPort;
  }

  /**
   * The volume behind a path in a container: the mount whose mountPath is the longest prefix of
   * it, and the rest of the path inside the volume. undefined when no mount covers the path.
   */
  volumeAt(containerName: string, path: string): { volume: Volume; mount: VolumeMount; inside: string } | undefined {
    const mounts = [...(this.container(containerName).container.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
    const mount = mounts.find((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
    if (!mount) return undefined;
    const volume = this.podSpec.volumes?.find((v) => v.name === mount.name) ?? (this.claimNames.includes(mount.name) ? { name: mount.name } : undefined);
    if (!volume) throw new Error(`${this.variant}: ${containerName} mounts ${mount.name}, which is neither a pod volume nor a volume claim`);
    return { volume, mount, inside: path.slice(mount.mountPath.length).replace(/^\//, '') };
  }

  /** The StatefulSet's volumeClaimTemplates: volumes every pod gets from its own claim. */
  get claimNames(): string[] {
    const claims = (this.statefulSet.spec as { volumeClaimTemplates?: Array<{ metadata: { name: string } }> }).volumeClaimTemplates ?? [];
    return claims.map((c) => c.metadata.name);
  }

  /** The content of a file a container sees through a ConfigMap or Secret volume. */
  mountedFile(containerName: string, path: string): string {
    const at = this.volumeAt(containerName, path);
    if (!at) throw new Error(`${this.variant}: no volume of ${containerName} holds ${path}`);
    const source = at.volume.configMap
      ? { data: this.configMapData(at.volume.configMap.name), items: at.volume.configMap.items }
      : at.volume.secret
        ? { data: this.secretData(at.volume.secret.secretName), items: at.volume.secret.items }
        : undefined;
    if (!source) throw new Error(`${this.variant}: ${path} is on volume ${at.volume.name}, which has no content in the manifests`);
    const key = source.items ? source.items.find((i) => i.path === at.inside)?.key : at.inside;
    if (key === undefined) throw new Error(`${this.variant}: volume ${at.volume.name} has no item at ${at.inside}`);
    return required(source.data, key, `${path} in ${containerName}`);
  }

  /** The container port with that name (e.g. the sidecar's `admin`). */
  namedPort(containerName: string, portName: string): number {
    return this.resolvePort(containerName, portName);
  }
}

function required(data: Record<string, string>, key: string, what: string): string {
  const value = data[key];
  if (value === undefined) throw new Error(`${what}: key ${key} not found`);
  return value;
}

// ---- the image ----

export interface DockerInstruction {
  instruction: string;
  args: string;
  line: number;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
export function dockerfileInstructions(path = DOCKERFILE): DockerInstruction[] {
  const out: DockerInstruction[] = [];
  let pending = '';
  let start = 0;
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.trim();
      if (pending === '' && (line === '' || line.startsWith('#'))) return;
      if (pending === '') start = i + 1;
      if (line.startsWith('#')) return; // a comment inside a continued instruction
      if (line.endsWith('\\')) {
        pending += `${line.slice(0, -1).trim()} `;
        return;
      }
      const text = pending + line;
      pending = '';
      const m = /^(\S+)\s*(.*)$/.exec(text);
      if (m) out.push({ instruction: m[1]!.toUpperCase(), args: m[2]!, line: start });
    });
  return out;
}

/** What a container of the sidecar image runs, and where the image's files are on this machine. */
export interface ImageLayout {
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  /** Image path prefix -> local directory (the image's /app is this repository, built). */
  roots: Record<string, string>;
}

/** The final stage of deploy/Dockerfile: exec-form ENTRYPOINT and CMD, WORKDIR. */
export function sidecarImage(path = DOCKERFILE): ImageLayout {
  const all = dockerfileInstructions(path);
  const lastFrom = all.map((d) => d.instruction).lastIndexOf('FROM');
  const stage = all.slice(lastFrom);
  const last = (name: string): DockerInstruction => {
    const found = stage.filter((d) => d.instruction === name).at(-1);
    if (!found) throw new Error(`${relative(REPO_ROOT, path)}: the final stage has no ${name}`);
    return found;
  };
  const execForm = (d: DockerInstruction): string[] => {
    const parsed: unknown = JSON.parse(d.args);
    if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
      throw new Error(`${relative(REPO_ROOT, path)}:${d.line}: ${d.instruction} is not in exec form`);
    }
    return parsed as string[];
  };
  const workdir = last('WORKDIR').args.trim();
  return { entrypoint: execForm(last('ENTRYPOINT')), cmd: execForm(last('CMD')), workdir, roots: { [workdir]: REPO_ROOT } };
}

// ---- processes ----

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when it exited. */
  at: number;
}

/** A container's main process on this machine: started by the pod, or a stand-in adopted by it. */
export class LocalProcess {
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;
  private out = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.out = (this.out + d.toString('utf8')).slice(-200_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        this.exit ??= { code, signal, at: Date.now() };
        resolve(this.exit);
      };
      if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode, child.signalCode);
      else child.once('exit', done);
    });
  }

  get running(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get exitInfo(): ProcessExit | undefined {
    return this.exit;
  }

  /** Last 200 kB of stdout and stderr (for failure messages). */
  get output(): string {
    return this.out;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }
}

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of started) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

// ---- the pod ----

export interface HookResult {
  kind: 'httpGet' | 'exec' | 'sleep' | 'none';
  /** httpGet: a 2xx answer; exec: exit code 0; none: true. */
  ok: boolean;
  status: number | undefined;
  exitCode: number | null | undefined;
  /** Response body or the command's output. */
  output: string;
  error: string | undefined;
  startedAt: number;
  endedAt: number;
}

export interface LocalPodOptions {
  /** Directory for the pod's volumes (one subdirectory per volume). */
  workDir: string;
  /** Container port -> a local port a stand-in already listens on; every other port gets a free one. */
  fixedPorts?: ReadonlyMap<number, number>;
  /** Containers that run an image whose layout is known here (entrypoint, files), by name. */
  images?: Readonly<Record<string, ImageLayout>>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const WILDCARD_HOSTS: Readonly<Record<string, string>> = { '0.0.0.0': '127.0.0.1', '[::]': '[::1]' };
// host:port where the host is an IPv4 address, localhost or a bracketed IPv6 address, or `:port`.
const ADDRESS_RE = /(?<![\w.-])((?:\d{1,3}\.){3}\d{1,3}|localhost|\[[0-9a-fA-F:]*\])?:(\d{1,5})(?![\w])/g;

export class LocalPod {
  private readonly processes = new Map<string, LocalProcess>();
  private readonly ownProcesses = new Set<LocalProcess>();
  private readonly hookProcesses = new Set<ChildProcess>();

  private constructor(
    readonly deployment: Deployment,
    private readonly opts: LocalPodOptions,
    /** Manifest container port -> local loopback port. */
    readonly ports: ReadonlyMap<number, number>,
    private readonly volumes: ReadonlyMap<string, string>,
  ) {}

  /** Gives every container port a loopback port and every volume a directory with its content. */
  static async create(deployment: Deployment, opts: LocalPodOptions): Promise<LocalPod> {
    const ports = new Map<number, number>(opts.fixedPorts ?? []);
    for (const c of deployment.allContainers) {
      for (const p of c.ports ?? []) if (!ports.has(p.containerPort)) ports.set(p.containerPort, await freePort());
    }
    const volumes = new Map<string, string>();
    for (const name of [...(deployment.podSpec.volumes ?? []).map((v) => v.name), ...deployment.claimNames]) {
      const dir = join(opts.workDir, `volume-${name}`);
      mkdirSync(dir, { recursive: true });
      volumes.set(name, dir);
    }
    for (const v of deployment.podSpec.volumes ?? []) {
      const dir = volumes.get(v.name)!;
      const source = v.configMap
        ? { data: deployment.configMapData(v.configMap.name), items: v.configMap.items }
        : v.secret
          ? { data: deployment.secretData(v.secret.secretName), items: v.secret.items }
          : undefined;
      if (!source) continue;
      const items = source.items ?? Object.keys(source.data).map((key) => ({ key, path: key }));
      for (const item of items) writeFileSync(join(dir, item.path), required(source.data, item.key, `volume ${v.name}`));
    }
    return new LocalPod(deployment, opts, ports, volumes);
  }

  /** The loopback port standing in for a manifest port. */
  localPort(manifestPort: number): number {
    const p = this.ports.get(manifestPort);
    if (p === undefined) throw new Error(`port ${manifestPort} is not a container port of this pod`);
    return p;
  }

  volumeDir(name: string): string {
    const dir = this.volumes.get(name);
    if (dir === undefined) throw new Error(`no volume ${name} in this pod`);
    return dir;
  }

  /** Image paths and mount paths of a container -> local directories, longest first. */
  private pathMap(containerName: string): Array<[string, string]> {
    const { container } = this.deployment.container(containerName);
    const map: Array<[string, string]> = Object.entries(this.opts.images?.[containerName]?.roots ?? {});
    for (const m of container.volumeMounts ?? []) {
      const dir = this.volumeDir(m.name);
      map.push([m.mountPath, m.subPath ? join(dir, m.subPath) : dir]);
    }
    return map.sort((a, b) => b[0].length - a[0].length);
  }

  /** A string from a container's spec, with its paths and addresses made local. */
  mapText(containerName: string, text: string): string {
    let out = text;
    const paths = this.pathMap(containerName);
    if (paths.length > 0) {
      const alternatives = paths.map(([p]) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
      const re = new RegExp(`(?<![\\w./-])(${alternatives})(?=/|$|[^\\w.-])`, 'g');
      out = out.replace(re, (prefix) => paths.find(([p]) => p === prefix)![1]);
    }
    return out.replace(ADDRESS_RE, (whole, host: string | undefined, port: string) => {
      if (host !== undefined && !LOOPBACK_HOSTS.has(host) && WILDCARD_HOSTS[host] === undefined) {
        throw new Error(`${containerName}: ${JSON.stringify(text)} names ${whole}, which is neither loopback nor a wildcard address`);
      }
      const local = this.localPort(Number(port));
      return `${host === undefined ? '' : (WILDCARD_HOSTS[host] ?? host)}:${local}`;
    });
  }

  /** argv of a container's process or exec hook, made local: `node` is this Node.js. */
  localArgv(containerName: string, argv: readonly string[]): string[] {
    const [file, ...rest] = argv;
    if (file === undefined) throw new Error(`${containerName}: empty command`);
    const local = file === 'node' ? process.execPath : this.mapText(containerName, file);
    return [local, ...rest.map((a) => this.mapText(containerName, a))];
  }

  /** The container's environment as the kubelet would set it, plus PATH to find `sh` and friends. */
  env(containerName: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NODE_ENV: 'production' };
    for (const [k, v] of Object.entries(this.deployment.containerEnv(containerName))) env[k] = this.mapText(containerName, v);
    return env;
  }

  private cwd(containerName: string): string {
    const image = this.opts.images?.[containerName];
    return image ? this.mapText(containerName, image.workdir) : this.opts.workDir;
  }

  /**
   * Starts a container's main process as the runtime would: `command` or the image's ENTRYPOINT,
   * then `args` or the image's CMD, then `extraArgs` (a test's overrides, e.g. a short announce delay).
   */
  start(containerName: string, extraArgs: readonly string[] = []): LocalProcess {
    const { container } = this.deployment.container(containerName);
    const image = this.opts.images?.[containerName];
    const entry = container.command ?? image?.entrypoint;
    if (entry === undefined) throw new Error(`${containerName}: no command and no known image entrypoint`);
    const argv = this.localArgv(containerName, [...entry, ...(container.args ?? image?.cmd ?? []), ...extraArgs]);
    const child = spawn(argv[0]!, argv.slice(1), { cwd: this.cwd(containerName), env: this.env(containerName), stdio: ['ignore', 'pipe', 'pipe'] });
    started.add(child);
    child.once('exit', () => started.delete(child));
    const proc = new LocalProcess(containerName, child);
    this.processes.set(containerName, proc);
    this.ownProcesses.add(proc);
    return proc;
  }

  /** A stand-in for a container (e.g. redis-server for Pika), started by the test. */
  adopt(containerName: string, child: ChildProcess): LocalProcess {
    this.deployment.container(containerName);
    const proc = new LocalProcess(containerName, child);
    this.processes.set(containerName, proc);
    return proc;
  }

  process(containerName: string): LocalProcess {
    const p = this.processes.get(containerName);
    if (!p) throw new Error(`container ${containerName} has no process in this pod`);
    return p;
  }

  /** Runs a container's preStop hook locally; `deadline` (Date.now() value) aborts it. */
  async runPreStop(containerName: string, deadline: number): Promise<HookResult> {
    const handler = this.deployment.container(containerName).container.lifecycle?.preStop;
    const startedAt = Date.now();
    const base = { status: undefined, exitCode: undefined, output: '', error: undefined, startedAt };
    if (!handler) return { ...base, kind: 'none', ok: true, endedAt: startedAt };
    if (handler.httpGet) return this.runHttpGet(containerName, handler.httpGet, deadline, startedAt);
    if (handler.exec) return this.runExec(containerName, handler.exec, deadline, startedAt);
    if (handler.sleep) {
      const ms = Math.min(handler.sleep.seconds * 1000, Math.max(0, deadline - Date.now()));
      await new Promise((r) => setTimeout(r, ms));
      return { ...base, kind: 'sleep', ok: true, endedAt: Date.now() };
    }
    throw new Error(`${containerName}: preStop has no handler this play knows`);
  }

  private runHttpGet(containerName: string, action: HTTPGetAction, deadline: number, startedAt: number): Promise<HookResult> {
    // The kubelet dials the pod's IP (the `host` field is rarely set); here that is loopback.
    const host = action.host === undefined ? '127.0.0.1' : this.mapText(containerName, `${action.host}:1`).split(':')[0]!;
    if (!LOOPBACK_HOSTS.has(host)) throw new Error(`${containerName}: httpGet host ${host} is not loopback`);
    if ((action.scheme ?? 'HTTP') !== 'HTTP') throw new Error(`${containerName}: httpGet scheme ${action.scheme ?? ''} is not played`);
    const port = this.localPort(this.deployment.resolvePort(containerName, action.port));
    const headers = Object.fromEntries((action.httpHeaders ?? []).map((h) => [h.name, h.value]));
    return new Promise((resolve) => {
      const finish = (r: Partial<HookResult>) => {
        clearTimeout(timer);
        resolve({ kind: 'httpGet', ok: false, status: undefined, exitCode: undefined, output: '', error: undefined, startedAt, endedAt: Date.now(), ...r });
      };
      const req = http.get({ host, port, path: action.path ?? '/', headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body = (body + d).slice(-100_000)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          finish({ ok: status >= 200 && status < 300, status, output: body });
        });
        res.on('error', (err) => finish({ error: err.message, output: body }));
      });
      req.on('error', (err) => finish({ error: err.message }));
      const timer = setTimeout(() => req.destroy(new Error('grace period over')), Math.max(0, deadline - Date.now()));
    });
  }

  private runExec(containerName: string, action: ExecAction, deadline: number, startedAt: number): Promise<HookResult> {
    const argv = this.localArgv(containerName, action.command);
    return new Promise((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: this.cwd(containerName), env: this.env(containerName), stdio: ['ignore', 'pipe', 'pipe'] });
      started.add(child);
      this.hookProcesses.add(child);
      let output = '';
      const keep = (d: Buffer) => (output = (output + d.toString('utf8')).slice(-100_000));
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
      const done = (exitCode: number | null, error: string | undefined) => {
        clearTimeout(timer);
        started.delete(child);
        this.hookProcesses.delete(child);
        resolve({ kind: 'exec', ok: exitCode === 0, status: undefined, exitCode, output, error, startedAt, endedAt: Date.now() });
      };
      child.once('error', (err) => done(null, err.message));
      child.once('exit', (code, signal) => done(code, signal === null ? undefined : `killed by ${signal}`));
    });
  }

  /** SIGKILL for every process this pod started, hooks included (not adopted stand-ins); for test cleanup. */
  async destroy(): Promise<void> {
    for (const hook of this.hookProcesses) hook.kill('SIGKILL');
    await Promise.all(
      [...this.ownProcesses].map(async (p) => {
        p.signal('SIGKILL');
        await p.exited;
      }),
    );
  }
}

// ---- pod deletion ----

export type TimelineEventName = 'preStop:start' | 'preStop:end' | 'SIGTERM' | 'SIGKILL' | 'exited' | 'already-exited';

export interface TimelineEvent {
  /** Milliseconds since the pod's deletion. */
  at: number;
  container: string;
  event: TimelineEventName;
  detail: string;
}

export interface ContainerTermination {
  name: string;
  /** undefined when the container had already exited and the kubelet ran nothing. */
  hook: HookResult | undefined;
  /** The main process was still running when its preStop hook returned. */
  runningAfterHook: boolean;
  /** Date.now() when SIGTERM was sent; undefined if it exited before. */
  sigtermAt: number | undefined;
  killed: boolean;
  exit: ProcessExit;
}

export interface TerminationResult {
  /** Date.now() at the deletion. */
  deletedAt: number;
  gracePeriodMs: number;
  timeline: TimelineEvent[];
  containers: Map<string, ContainerTermination>;
}

export interface TerminationOptions {
  gracePeriodSeconds: number;
  /**
   * Regular containers: the order of their SIGTERMs (each still waits for its own preStop hook).
   * The kubelet promises no order; a test names one to cover each. Default: as hooks return.
   */
  sigtermOrder?: readonly string[];
  /** Called with each event as it happens (the result has them all too). */
  onEvent?: (e: TimelineEvent) => void;
}

/** The kubelet gives a container at least this long after SIGTERM, even past the grace period. */
export const MIN_GRACE_AFTER_SIGTERM_MS = 2000;

/**
 * Deletes the pod as the kubelet does: regular containers together (preStop, then SIGTERM, then
 * SIGKILL at the end of the grace period); once they have all exited, native sidecars one by one
 * in reverse order, the same way. Every container of the pod must have a process.
 */
export async function terminatePod(pod: LocalPod, opts: TerminationOptions): Promise<TerminationResult> {
  const deletedAt = Date.now();
  const gracePeriodMs = opts.gracePeriodSeconds * 1000;
  const deadline = deletedAt + gracePeriodMs;
  const timeline: TimelineEvent[] = [];
  const record = (container: string, event: TimelineEventName, detail = '') => {
    const e = { at: Date.now() - deletedAt, container, event, detail };
    timeline.push(e);
    opts.onEvent?.(e);
  };
  const spec = pod.deployment.podSpec;
  const sidecars = pod.deployment.nativeSidecars.map((c) => c.name).reverse();
  const regular = spec.containers.map((c) => c.name);
  const order = opts.sigtermOrder ?? [];
  for (const name of order) if (!regular.includes(name)) throw new Error(`sigtermOrder names ${name}, not a regular container`);

  for (const name of [...regular, ...sidecars]) {
    void pod.process(name).exited.then((e) => record(name, 'exited', `code=${e.code} signal=${e.signal}`));
  }
  const sigtermSent = new Map(order.map((name) => [name, deferred()]));

  const stop = async (name: string): Promise<ContainerTermination> => {
    const proc = pod.process(name);
    if (!proc.running) {
      record(name, 'already-exited');
      sigtermSent.get(name)?.resolve();
      return { name, hook: undefined, runningAfterHook: false, sigtermAt: undefined, killed: false, exit: await proc.exited };
    }
    record(name, 'preStop:start');
    const hook = await pod.runPreStop(name, deadline);
    record(name, 'preStop:end', hookSummary(hook));
    const runningAfterHook = proc.running;
    const before = order.indexOf(name) > 0 ? sigtermSent.get(order[order.indexOf(name) - 1]!) : undefined;
    if (before) await before.promise;
    let sigtermAt: number | undefined;
    if (proc.running) {
      sigtermAt = Date.now();
      record(name, 'SIGTERM');
      proc.signal('SIGTERM');
    }
    sigtermSent.get(name)?.resolve();
    const waitMs = Math.max(deadline - Date.now(), MIN_GRACE_AFTER_SIGTERM_MS);
    const inTime = await Promise.race([proc.exited.then(() => true), delay(waitMs).then(() => false)]);
    let killed = false;
    if (!inTime && proc.running) {
      killed = true;
      record(name, 'SIGKILL', 'grace period over');
      proc.signal('SIGKILL');
    }
    return { name, hook, runningAfterHook, sigtermAt, killed, exit: await proc.exited };
  };

  const containers = new Map<string, ContainerTermination>();
  for (const r of await Promise.all(regular.map(stop))) containers.set(r.name, r);
  for (const name of sidecars) containers.set(name, await stop(name));
  timeline.sort((a, b) => a.at - b.at);
  return { deletedAt, gracePeriodMs, timeline, containers };
}

export function hookSummary(h: HookResult): string {
  if (h.kind === 'httpGet') return `httpGet ${h.status ?? h.error ?? '?'}`;
  if (h.kind === 'exec') return `exec exit=${h.exitCode ?? h.error ?? '?'}`;
  return h.kind;
}

/** The timeline as text, for failure messages. */
export function formatTimeline(timeline: readonly TimelineEvent[]): string {
  return timeline.map((e) => `${String(e.at).padStart(6)} ms  ${e.container.padEnd(14)} ${e.event}${e.detail ? `  ${e.detail}` : ''}`).join('\n');
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
