/**
 * The kubelet's part, played against local processes, from the manifests in deploy/ (so the play
 * and the manifests cannot drift apart):
 *
 *   manifests.ts          YAML documents of a kustomization, resources followed, as Kubernetes objects
 *   deployment.ts         Deployment: the objects of one variant (deploy/kubernetes/<variant>), with
 *                         lookups: pod spec, containers, ConfigMaps, Secrets, ports, volumes
 *   image.ts              sidecarImage: what deploy/Dockerfile puts in the image (ENTRYPOINT, CMD, WORKDIR)
 *   container-process.ts  LocalProcess: a container's process; every child is SIGKILLed at exit
 *   hooks.ts              lifecycle handlers (httpGet, exec, sleep) run locally, cut at a deadline
 *   local-pod.ts          LocalPod: one pod on this machine, ports and volumes local, containers started
 *   termination.ts        terminatePod: preStop, SIGTERM order, native sidecars last, SIGKILL at grace end
 *   k8s.ts                the Kubernetes API types, from kubernetes-models
 */
export { DEPLOY_DIR, DOCKERFILE, REPO_ROOT } from './paths.js';
export { kustomizationResources, loadManifests, readYamlDocuments, type K8sObject, type Manifest } from './manifests.js';
export {
  BACKEND_CONTAINER,
  Deployment,
  SIDECAR_CONTAINER,
  VARIANTS,
  type PodStatefulSet,
  type PodTemplate,
  type Variant,
  type VolumeContent,
} from './deployment.js';
export { dockerfileInstructions, sidecarImage, type DockerInstruction, type ImageLayout } from './image.js';
export { LocalProcess, type ProcessExit } from './container-process.js';
export type { ExecTarget, HookResult, HttpGetTarget } from './hooks.js';
export { LocalPod, type LocalPodOptions } from './local-pod.js';
export {
  MIN_GRACE_AFTER_SIGTERM_MS,
  formatTimeline,
  hookSummary,
  terminatePod,
  type ContainerTermination,
  type TerminationOptions,
  type TerminationResult,
  type TimelineEvent,
  type TimelineEventName,
} from './termination.js';
