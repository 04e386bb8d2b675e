/** `pika-sidecar run` as a child process of the bench, ready once GET /readyz answers 200. */
import type { ChildProcess } from 'node:child_process';
import { httpGet } from '../../harness/http.js';
import { freePort } from '../../harness/ports.js';
import { spawnTracked, stopChild, tail, whenReady } from '../../harness/processes.js';
import { LOOPBACK } from './processes.js';
import type { SidecarLaunch } from './settings.js';

export interface SidecarProcess {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  output(): string;
}

/** The node command line of a sidecar, with ports as given (names in the report, numbers when run). */
export function sidecarCommand(launch: SidecarLaunch, port: number | string, backendPort: number | string, adminPort: number | string, logLevel: string): string[] {
  return [
    ...launch.nodeFlags,
    launch.cli,
    'run',
    '--listen', `${LOOPBACK}:${port}`,
    '--backend', `${LOOPBACK}:${backendPort}`,
    '--admin', `${LOOPBACK}:${adminPort}`,
    '--log-level', logLevel,
    ...launch.args,
  ];
}

export async function startSidecarProcess(backendPort: number, launch: SidecarLaunch, logLevel = 'warn'): Promise<SidecarProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const args = sidecarCommand(launch, port, backendPort, adminPort, logLevel);
  const proc = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = tail(proc.stdout, 64_000);
  const err = tail(proc.stderr);
  const output = (): string => `${err()}${out()}`;
  try {
    const ready = async (): Promise<boolean> => (await httpGet(LOOPBACK, adminPort, '/readyz', 1000)).status === 200;
    await whenReady(proc, ready, `sidecar GET /readyz = 200 on admin port ${adminPort}`, 15_000);
  } catch (e) {
    await stopChild(proc, 1000);
    throw new Error(
      `${(e as Error).message}\ncommand: node ${args.join(' ')}\n${output()}\n` +
        '(to bench without the sidecar: BENCH_TARGETS=direct,pipe)',
    );
  }
  return { proc, port, adminPort, output };
}
