/** `pika-sidecar run` as a child process of the bench (harness/sidecar-process.ts), ready once GET /readyz answers 200. */
import { freePort } from '../../harness/ports.js';
import { SidecarProcess, sidecarArgv } from '../../harness/sidecar-process.js';
import { LOOPBACK } from './processes.js';
import type { SidecarLaunch } from './settings.js';

function launchOptions(
  launch: SidecarLaunch,
  port: number | string,
  backendPort: number | string,
  adminPort: number | string,
  logLevel: string,
) {
  return {
    nodeFlags: launch.nodeFlags,
    cli: launch.cli,
    listen: `${LOOPBACK}:${port}`,
    backend: `${LOOPBACK}:${backendPort}`,
    admin: `${LOOPBACK}:${adminPort}`,
    args: ['--log-level', logLevel, ...launch.args],
  };
}

/** The node command line of a sidecar, with ports as given (names in the report, numbers when run). */
export function sidecarCommand(
  launch: SidecarLaunch,
  port: number | string,
  backendPort: number | string,
  adminPort: number | string,
  logLevel: string,
): string[] {
  return sidecarArgv(launchOptions(launch, port, backendPort, adminPort, logLevel));
}

export type BenchSidecar = SidecarProcess & { port: number; adminPort: number };

export async function startSidecarProcess(backendPort: number, launch: SidecarLaunch, logLevel = 'warn'): Promise<BenchSidecar> {
  const port = await freePort();
  const adminPort = await freePort();
  // The bench reads the shutdown report from output() (the raw stdout tail); few parsed lines are kept.
  const s = SidecarProcess.start({ ...launchOptions(launch, port, backendPort, adminPort, logLevel), maxLines: 2000 });
  try {
    await s.waitReady({ host: LOOPBACK, port: adminPort });
  } catch (e) {
    await s.stop(1000);
    throw new Error(
      `${(e as Error).message}\ncommand: node ${sidecarCommand(launch, port, backendPort, adminPort, logLevel).join(' ')}\n${s.output()}\n` +
        '(to bench without the sidecar: BENCH_TARGETS=direct,pipe)',
    );
  }
  return Object.assign(s, { port, adminPort });
}
