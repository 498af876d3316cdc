/**
 * One VM's process: a `vessel vmm` started detached (its own session, so that it outlives a
 * restarted host and no terminal signal reaches it), configured from a file and answering on
 * its API socket, with its files in the VM's folder of the state directory:
 *
 *   vmm.json      the configuration it was started with (`vessel vmm --config-file`)
 *   api.sock      its API socket            console.sock  its serial console (`vessel vm console`)
 *   console.log   every byte of serial output (`vessel vm logs`)
 *   exit.json     how it ended (written by the VMM as it exits)
 *   qga.sock      the guest agent channel (org.qemu.guest_agent.0; guest-agent.ts speaks QGA on it)
 *   vmm.log       its own stdout and stderr
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FullVmConfiguration } from '../vmm/config.js';
import type { ExitRecord } from './store.js';

/** dist/src/cli/main.js, next to this module's compiled file. */
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** sun_path's size on Linux, with its terminating NUL. */
const MAX_SOCKET_PATH = 107;

export interface VmFiles {
  dir: string;
  config: string;
  apiSock: string;
  consoleSock: string;
  qgaSock: string;
  consoleLog: string;
  exitFile: string;
  vmmLog: string;
}

export function vmFiles(vmsDir: string, vmId: string): VmFiles {
  const dir = path.join(vmsDir, vmId);
  return {
    dir,
    config: path.join(dir, 'vmm.json'),
    apiSock: path.join(dir, 'api.sock'),
    consoleSock: path.join(dir, 'console.sock'),
    qgaSock: path.join(dir, 'qga.sock'),
    consoleLog: path.join(dir, 'console.log'),
    exitFile: path.join(dir, 'exit.json'),
    vmmLog: path.join(dir, 'vmm.log'),
  };
}

/** Refuses a state directory so deep that its socket paths would not fit a Unix socket address. */
export function checkSocketPaths(files: VmFiles): void {
  for (const p of [files.apiSock, files.consoleSock, files.qgaSock]) {
    if (Buffer.byteLength(p) > MAX_SOCKET_PATH) throw new Error(`the socket path ${p} is longer than a Unix socket allows (${MAX_SOCKET_PATH} bytes): use a shorter --state-dir`);
  }
}

/**
 * Node's flags for a VM process. The main thread's young generation: V8 grows it to 32 MB for
 * the hart that runs there, where 4 MB cost no boot time and 23 MiB less RSS per VM (a flag of
 * the process: nothing inside can set it; docs/PERFORMANCE.md "Compiled once per VM").
 */
const VMM_NODE_FLAGS = ['--max-semi-space-size=4'];

/**
 * The vmm arguments for a VM; the host recognizes its processes by `--id <vmId>` in them.
 * Without `boot`, the VMM waits on its API (for a snapshot to load) instead of booting from its configuration.
 */
export function vmmArgs(vmId: string, files: VmFiles, boot = true): string[] {
  return [...VMM_NODE_FLAGS, CLI, 'vmm', '--id', vmId, ...(boot ? ['--config-file', files.config] : []), '--api-sock', files.apiSock,
    '--console', `unix:${files.consoleSock}`, '--console-log', files.consoleLog, '--exit-file', files.exitFile];
}

/** Whether a process's arguments are those of this VM's vmm. */
export function isVmmOf(args: string[], vmId: string): boolean {
  const i = args.indexOf('--id');
  return args.includes('vmm') && i >= 0 && args[i + 1] === vmId;
}

/** Writes the configuration and starts the process (booting it unless `boot` is false); the caller moves it into its cgroup. */
export function spawnVmm(vmId: string, files: VmFiles, config: FullVmConfiguration, boot = true): ChildProcess {
  fs.mkdirSync(files.dir, { recursive: true });
  checkSocketPaths(files);
  fs.writeFileSync(files.config, JSON.stringify(config, null, 2) + '\n');
  fs.rmSync(files.exitFile, { force: true });
  const log = fs.openSync(files.vmmLog, 'a');
  try {
    const child = spawn(process.execPath, vmmArgs(vmId, files, boot), { detached: true, stdio: ['ignore', log, log], cwd: files.dir });
    child.unref();
    return child;
  } finally {
    fs.closeSync(log);
  }
}

/** The VMM's own account of its end, if it wrote one. */
export function readExitFile(files: VmFiles): ExitRecord | null {
  try {
    const j = JSON.parse(fs.readFileSync(files.exitFile, 'utf8')) as { exit_code?: number; reason?: string; at?: string; stop?: string };
    return { exit_code: typeof j.exit_code === 'number' ? j.exit_code : null, reason: j.reason ?? 'the VM process exited', at: j.at ?? new Date().toISOString(), ...(j.stop ? { stop: j.stop } : {}) };
  } catch {
    return null;
  }
}

/**
 * The sentence that best says why the VMM failed, from the end of its own output: its last
 * `vessel ...:` message or error line (not the "Node.js vX" trailer an uncaught exception ends with).
 */
export function vmmLogReason(files: VmFiles): string {
  let text: string;
  try {
    text = fs.readFileSync(files.vmmLog, 'utf8');
  } catch {
    return '';
  }
  const lines = text.trimEnd().split('\n').slice(-40).map((l) => l.trim()).filter((l) => l !== '' && !/^Node\.js v\d/.test(l));
  const telling = [...lines].reverse().find((l) => /^vessel\b.*:|^\w*Error\b|\berror\b/i.test(l));
  return (telling ?? lines[lines.length - 1] ?? '').slice(0, 500);
}
