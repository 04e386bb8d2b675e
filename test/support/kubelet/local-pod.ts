/**
 * One pod on this machine: every container port gets a loopback port, every volume a directory
 * with its content; a container's command, env and hooks are rewritten to them, its process
 * started or a test's stand-in adopted.
 *
 * Only loopback addresses are used: a manifest's 0.0.0.0 becomes 127.0.0.1, and an address that is
 * neither loopback nor a wildcard is an error rather than something to dial.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../../harness/ports.js';
import { LocalProcess } from './container-process.js';
import { trackChild } from '../../../harness/processes.js';
import { required, type Deployment } from './deployment.js';
import { execHook, httpGetHook, noHook, sleepHook, type ExecTarget, type HookResult, type HttpGetTarget } from './hooks.js';
import type { ImageLayout } from './image.js';
import type { IExecAction, IHTTPGetAction } from './k8s.js';

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
      const source = deployment.volumeContent(v);
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
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.cwd(containerName),
      env: this.env(containerName),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child);
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
    if (!handler) return noHook(startedAt);
    if (handler.httpGet) return httpGetHook(this.httpGetTarget(containerName, handler.httpGet), deadline, startedAt);
    if (handler.exec) return execHook(this.execTarget(containerName, handler.exec), deadline, startedAt, this.hookProcesses);
    if (handler.sleep) return sleepHook(handler.sleep.seconds, deadline, startedAt);
    throw new Error(`${containerName}: preStop has no handler this play knows`);
  }

  /** A container's httpGet handler as a request on this machine. */
  private httpGetTarget(containerName: string, action: IHTTPGetAction): HttpGetTarget {
    // The kubelet dials the pod's IP (the `host` field is rarely set); here that is loopback.
    const host = action.host === undefined ? '127.0.0.1' : this.mapText(containerName, `${action.host}:1`).split(':')[0]!;
    if (!LOOPBACK_HOSTS.has(host)) throw new Error(`${containerName}: httpGet host ${host} is not loopback`);
    if ((action.scheme ?? 'HTTP') !== 'HTTP') throw new Error(`${containerName}: httpGet scheme ${action.scheme ?? ''} is not played`);
    const port = this.localPort(this.deployment.resolvePort(containerName, action.port));
    const headers = Object.fromEntries((action.httpHeaders ?? []).map((h) => [h.name, h.value]));
    return { host, port, path: action.path ?? '/', headers };
  }

  /** A container's exec handler as a command on this machine, run where and as its main process runs. */
  private execTarget(containerName: string, action: IExecAction): ExecTarget {
    if (action.command === undefined) throw new Error(`${containerName}: exec handler without a command`);
    return { argv: this.localArgv(containerName, action.command), cwd: this.cwd(containerName), env: this.env(containerName) };
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
