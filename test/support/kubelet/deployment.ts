/**
 * One variant of deploy/kubernetes as the kubelet would be handed it: the StatefulSet's pod spec,
 * its containers, and what they refer to (ConfigMaps, Secrets, volumes, named ports) resolved.
 */
import { join } from 'node:path';
import type {
  IConfigMap,
  IContainer,
  IKeyToPath,
  IObjectMeta,
  IPodSpec,
  IPodTemplateSpec,
  ISecret,
  IStatefulSet,
  IStatefulSetSpec,
  IVolume,
  IVolumeMount,
} from './k8s.js';
import { loadManifests, type K8sObject, type Manifest } from './manifests.js';
import { DEPLOY_DIR } from './paths.js';

/** regular and native-sidecar: the direct layout; fronted: replicas through the sidecar (replication.frontPikaPorts). */
export type Variant = 'regular' | 'native-sidecar' | 'fronted';
export const VARIANTS: readonly Variant[] = ['regular', 'native-sidecar', 'fronted'];
/** Container names the manifests use; the tests look containers up by these. */
export const SIDECAR_CONTAINER = 'pika-sidecar';
export const BACKEND_CONTAINER = 'pika';

/** A pod template a pod can be made from: both halves present. */
export interface PodTemplate extends IPodTemplateSpec {
  metadata: IObjectMeta;
  spec: IPodSpec;
}

/** A StatefulSet with a spec whose template a pod can be made from. */
export type PodStatefulSet = K8sObject & IStatefulSet & { spec: IStatefulSetSpec & { template: PodTemplate } };

/** The data a ConfigMap or Secret volume shows, and which keys it shows where (all of them when items is undefined). */
export interface VolumeContent {
  data: Record<string, string>;
  items: IKeyToPath[] | undefined;
}

// Kinds are told apart by apiVersion and kind only: the rest of each object's shape is the schema's
// to check, and test/unit/deploy-manifests.test.ts validates every manifest against it.
const isStatefulSet = (o: K8sObject): o is K8sObject & IStatefulSet => o.apiVersion === 'apps/v1' && o.kind === 'StatefulSet';
const isConfigMap = (o: K8sObject): o is K8sObject & IConfigMap => o.apiVersion === 'v1' && o.kind === 'ConfigMap';
const isSecret = (o: K8sObject): o is K8sObject & ISecret => o.apiVersion === 'v1' && o.kind === 'Secret';

function hasPodTemplate(s: K8sObject & IStatefulSet): s is PodStatefulSet {
  return s.spec?.template.metadata !== undefined && s.spec.template.spec !== undefined;
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

  get statefulSet(): PodStatefulSet {
    const set = this.one('StatefulSet');
    if (!isStatefulSet(set)) throw new Error(`${this.variant}: StatefulSet ${set.metadata.name} is ${set.apiVersion}, not apps/v1`);
    if (!hasPodTemplate(set))
      throw new Error(`${this.variant}: StatefulSet ${set.metadata.name} has no spec.template with metadata and spec`);
    return set;
  }

  get podTemplate(): PodTemplate {
    return this.statefulSet.spec.template;
  }

  get podSpec(): IPodSpec {
    return this.podTemplate.spec;
  }

  /** Every container of the pod: regular and init ones. */
  get allContainers(): IContainer[] {
    return [...(this.podSpec.initContainers ?? []), ...this.podSpec.containers];
  }

  container(name: string): { container: IContainer; init: boolean } {
    const init = this.podSpec.initContainers?.find((c) => c.name === name);
    if (init) return { container: init, init: true };
    const regular = this.podSpec.containers.find((c) => c.name === name);
    if (regular) return { container: regular, init: false };
    throw new Error(`${this.variant}: no container ${name}`);
  }

  /** initContainers with restartPolicy Always: started first, stopped last. */
  get nativeSidecars(): IContainer[] {
    return (this.podSpec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  }

  configMapData(name: string): Record<string, string> {
    const map = this.one('ConfigMap', name);
    if (!isConfigMap(map)) throw new Error(`${this.variant}: ConfigMap ${name} is ${map.apiVersion}, not v1`);
    return map.data ?? {};
  }

  /** stringData and base64 data together, as the API server merges them. */
  secretData(name: string): Record<string, string> {
    const secret = this.one('Secret', name);
    if (!isSecret(secret)) throw new Error(`${this.variant}: Secret ${name} is ${secret.apiVersion}, not v1`);
    const data = Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]);
    return { ...Object.fromEntries(data), ...(secret.stringData ?? {}) };
  }

  /** A container's environment with secretKeyRef and configMapKeyRef resolved. */
  containerEnv(name: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of this.container(name).container.env ?? []) {
      const secretRef = e.valueFrom?.secretKeyRef;
      const configMapRef = e.valueFrom?.configMapKeyRef;
      const refName = (ref: { name?: string; key: string }): string => {
        if (ref.name === undefined)
          throw new Error(`${this.variant}: env ${e.name} of ${name} refers to key ${ref.key} of an unnamed object`);
        return ref.name;
      };
      if (e.value !== undefined) env[e.name] = e.value;
      else if (secretRef) env[e.name] = required(this.secretData(refName(secretRef)), secretRef.key, e.name);
      else if (configMapRef) env[e.name] = required(this.configMapData(refName(configMapRef)), configMapRef.key, e.name);
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
  volumeAt(containerName: string, path: string): { volume: IVolume; mount: IVolumeMount; inside: string } | undefined {
    const mounts = [...(this.container(containerName).container.volumeMounts ?? [])].sort(
      (a, b) => b.mountPath.length - a.mountPath.length,
    );
    const mount = mounts.find((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
    if (!mount) return undefined;
    const volume =
      this.podSpec.volumes?.find((v) => v.name === mount.name) ?? (this.claimNames.includes(mount.name) ? { name: mount.name } : undefined);
    if (!volume)
      throw new Error(`${this.variant}: ${containerName} mounts ${mount.name}, which is neither a pod volume nor a volume claim`);
    return { volume, mount, inside: path.slice(mount.mountPath.length).replace(/^\//, '') };
  }

  /** The StatefulSet's volumeClaimTemplates: volumes every pod gets from its own claim. */
  get claimNames(): string[] {
    return (this.statefulSet.spec.volumeClaimTemplates ?? []).map((c, i) => {
      const name = c.metadata?.name;
      if (name === undefined) throw new Error(`${this.variant}: volumeClaimTemplates[${i}] has no metadata.name`);
      return name;
    });
  }

  /** What a ConfigMap or Secret volume holds; undefined for a volume the manifests give no content (emptyDir, claims). */
  volumeContent(volume: IVolume): VolumeContent | undefined {
    if (volume.configMap) {
      const { name, items } = volume.configMap;
      if (name === undefined) throw new Error(`${this.variant}: volume ${volume.name} is a configMap without a name`);
      return { data: this.configMapData(name), items };
    }
    if (volume.secret) {
      const { secretName, items } = volume.secret;
      if (secretName === undefined) throw new Error(`${this.variant}: volume ${volume.name} is a secret without a secretName`);
      return { data: this.secretData(secretName), items };
    }
    return undefined;
  }

  /** The content of a file a container sees through a ConfigMap or Secret volume. */
  mountedFile(containerName: string, path: string): string {
    const at = this.volumeAt(containerName, path);
    if (!at) throw new Error(`${this.variant}: no volume of ${containerName} holds ${path}`);
    const source = this.volumeContent(at.volume);
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

export function required(data: Record<string, string>, key: string, what: string): string {
  const value = data[key];
  if (value === undefined) throw new Error(`${what}: key ${key} not found`);
  return value;
}
