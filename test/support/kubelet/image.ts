/**
 * What deploy/Dockerfile puts in the sidecar image, read from the Dockerfile itself: the final
 * stage's ENTRYPOINT, CMD and WORKDIR, and where the image's files are on this machine.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { DOCKERFILE, REPO_ROOT } from './paths.js';

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
