/**
 * The Kubernetes API types the play reads, from kubernetes-models (type-only: nothing of the
 * package is loaded at run time). Optional fields stay optional; the code that reads them says
 * what happens when one is missing.
 */
import type { IStatefulSet } from 'kubernetes-models/apps/v1';

export type { IStatefulSet, IStatefulSetSpec } from 'kubernetes-models/apps/v1';
export type {
  IConfigMap,
  IContainer,
  IExecAction,
  IHTTPGetAction,
  IKeyToPath,
  ILifecycleHandler,
  IPodSpec,
  IPodTemplateSpec,
  ISecret,
  IVolume,
  IVolumeMount,
} from 'kubernetes-models/v1';

/** metav1.ObjectMeta (kubernetes-models has it from its apimachinery package, not a dependency of ours). */
export type IObjectMeta = NonNullable<IStatefulSet['metadata']>;
