/**
 * Lifecycle handlers run the way the kubelet runs them, against targets already made local
 * (local-pod.ts turns a manifest's handler into one): httpGet, exec and sleep, each cut short
 * when the deadline (the end of the grace period) comes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { trackChild } from '../../../harness/processes.js';

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

/** An httpGet handler's request on this machine. */
export interface HttpGetTarget {
  host: string;
  port: number;
  path: string;
  headers: Record<string, string>;
}

/** An exec handler's command on this machine. */
export interface ExecTarget {
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

const base = (startedAt: number) => ({ status: undefined, exitCode: undefined, output: '', error: undefined, startedAt });

/** A container without the hook: nothing to run, and nothing failed. */
export function noHook(startedAt: number): HookResult {
  return { ...base(startedAt), kind: 'none', ok: true, endedAt: startedAt };
}

/** `deadline` and `startedAt` are Date.now() values. */
export async function sleepHook(seconds: number, deadline: number, startedAt: number): Promise<HookResult> {
  const ms = Math.min(seconds * 1000, Math.max(0, deadline - Date.now()));
  await new Promise((r) => setTimeout(r, ms));
  return { ...base(startedAt), kind: 'sleep', ok: true, endedAt: Date.now() };
}

/** ok on a 2xx answer; the request is destroyed at the deadline. */
export function httpGetHook(target: HttpGetTarget, deadline: number, startedAt: number): Promise<HookResult> {
  return new Promise((resolve) => {
    const finish = (r: Partial<HookResult>) => {
      clearTimeout(timer);
      resolve({
        kind: 'httpGet',
        ok: false,
        status: undefined,
        exitCode: undefined,
        output: '',
        error: undefined,
        startedAt,
        endedAt: Date.now(),
        ...r,
      });
    };
    const req = http.get({ host: target.host, port: target.port, path: target.path, headers: target.headers, agent: false }, (res) => {
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

/** ok on exit code 0; SIGKILL at the deadline. The child is in `running` while it runs. */
export function execHook(target: ExecTarget, deadline: number, startedAt: number, running: Set<ChildProcess>): Promise<HookResult> {
  const [file, ...args] = target.argv;
  if (file === undefined) throw new Error('exec hook: empty command');
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: target.cwd, env: target.env, stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    running.add(child);
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString('utf8')).slice(-100_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
    const done = (exitCode: number | null, error: string | undefined) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ kind: 'exec', ok: exitCode === 0, status: undefined, exitCode, output, error, startedAt, endedAt: Date.now() });
    };
    child.once('error', (err) => done(null, err.message));
    child.once('exit', (code, signal) => done(code, signal === null ? undefined : `killed by ${signal}`));
  });
}
