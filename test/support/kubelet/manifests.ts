/**
 * Reading deploy/: YAML documents, kustomization resources followed in kustomize's order, and the
 * Kubernetes objects they hold. Nothing here knows one kind from another (deployment.ts does).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { IObjectMeta } from './k8s.js';
import { REPO_ROOT } from './paths.js';

/**
 * Any object of a manifest, as far as the reader checked it: apiVersion, kind and metadata.name
 * are there; the rest is the kind's (deployment.ts narrows the kinds it reads).
 */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: IObjectMeta & { name: string };
  [field: string]: unknown;
}

/** One document of one manifest file. */
export interface Manifest {
  /** Relative to the repository root. */
  file: string;
  /** Position of the document in its file, from 0. */
  index: number;
  object: K8sObject;
}

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
