/**
 * `vessel vmm`: one VM monitor process. It starts empty; the VM is configured and started
 * through the REST API on a Unix socket (--api-sock) and/or from a JSON file of the same shape
 * as GET /vm/config (--config-file, which starts the VM at once). The process exits when the
 * guest stops (with `vessel run`'s exit codes; a guest reboot ends it too, as in Firecracker),
 * or on SIGINT/SIGTERM/SIGHUP (128 + the signal's number), removing its socket files.
 * --console-log appends the guest's serial output to a file whatever the console is;
 * --exit-file records why the process ended (exit-file.ts).
 */
import * as fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { StopReason } from '../machine/machine.js';
import type { ActionType, FullVmConfiguration, InstanceInfo, Logger, Metrics } from './config.js';
import { ConfigError, RequestError } from './errors.js';
import { describeStop, ExitCode } from './exit.js';
import { ExitFile } from './exit-file.js';
import { VmmLogger } from './logger.js';
import { MetricsSink } from './metrics.js';
import { checkSerialSpec, parseSerialSpec, SerialSpecError, type SerialSpec } from './serial.js';
import { Vm, VmError } from './vm.js';
import { apiOperations } from './api/operations.js';
import { ApiServer } from './api/server.js';
import { ApiSpec, describeValidationError } from './api/spec.js';

export const VMM_VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

/** Firecracker's id when none is given. */
export const DEFAULT_INSTANCE_ID = 'anonymous-instance';

export class Vmm {
  readonly logger: VmmLogger;
  readonly vm: Vm;
  private metricsSink: MetricsSink | null = null;
  private metricsConfig: Metrics | null = null;

  constructor(readonly id: string, serial: SerialSpec, onStopped: (exitCode: number, reason: StopReason) => void, consoleLog?: (data: Uint8Array) => void) {
    this.logger = new VmmLogger(id);
    this.vm = new Vm({
      log: this.logger.component('vm'),
      onStopped: (reason, exitCode) => {
        this.metricsSink?.flush();
        this.metricsSink?.close();
        onStopped(exitCode, reason);
      },
      consoleLog,
    }, serial);
  }

  instanceInfo(): InstanceInfo {
    return { app_name: 'vessel', id: this.id, state: this.vm.state, vmm_version: VMM_VERSION };
  }

  configureLogger(cfg: Logger): void {
    this.logger.configure(cfg);
  }

  /** PUT /metrics: can be set once, as in Firecracker. */
  configureMetrics(cfg: Metrics): void {
    if (this.metricsSink) throw new RequestError(`metrics are already written to "${this.metricsSink.path}"; the sink can be set once`);
    this.metricsSink = new MetricsSink(cfg.metrics_path, () => this.vm.metrics());
    this.metricsConfig = { ...cfg };
  }

  async action(type: ActionType): Promise<void> {
    switch (type) {
      case 'InstanceStart':
        await this.vm.start();
        return;
      case 'FlushMetrics':
        if (!this.metricsSink) throw new RequestError('FlushMetrics: no metrics sink: PUT /metrics first (GET /metrics reads the counters directly)');
        this.metricsSink.flush();
        return;
      case 'SendCtrlAltDel':
        throw new VmError('SendCtrlAltDel is an x86 keyboard action; a RISC-V guest has no i8042 (use the guest\'s poweroff or reboot)');
    }
  }

  vmConfig(): FullVmConfiguration {
    const cfg = this.vm.config();
    if (this.logger.current) cfg.logger = { ...this.logger.current };
    if (this.metricsConfig) cfg.metrics = { ...this.metricsConfig };
    return cfg;
  }

  /** Applies a --config-file in the order a client would: logging first, the VM's parts, then the devices. */
  applyConfig(cfg: FullVmConfiguration): void {
    if (cfg.logger) this.configureLogger(cfg.logger);
    if (cfg.metrics) this.configureMetrics(cfg.metrics);
    if (cfg['machine-config']) this.vm.setMachineConfig(cfg['machine-config']);
    if (cfg['boot-source']) this.vm.setBootSource(cfg['boot-source']);
    for (const d of cfg.drives ?? []) this.vm.putDrive(d.drive_id, d);
    for (const n of cfg['network-interfaces'] ?? []) this.vm.putNetworkInterface(n.iface_id, n);
    if (cfg.serial) this.vm.setSerial(cfg.serial);
    if (cfg.entropy) this.vm.setEntropy();
    if (cfg.balloon) this.vm.balloon.put(cfg.balloon);
    if (cfg['guest-agent']) this.vm.setGuestAgent(cfg['guest-agent']);
  }

  /** Last metrics line and closed files, before the process exits on a signal. */
  close(): void {
    this.metricsSink?.flush();
    this.metricsSink?.close();
    this.logger.close();
  }
}

export interface VmmOptions {
  /** GET /'s id; DEFAULT_INSTANCE_ID when absent. */
  id?: string;
  apiSock?: string;
  configFile?: string;
  /** --console: stdio (default), file:PATH, unix:PATH, pty or pty:LINK. */
  console?: string;
  /** --console-log: every byte of the guest's serial output is also appended to this file. */
  consoleLog?: string;
  /** --exit-file: why the process ended, as one JSON line (exit-file.ts). */
  exitFile?: string;
}

function readConfigFile(file: string, spec: ApiSpec): FullVmConfiguration {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`--config-file "${file}" cannot be read: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`--config-file "${file}" is not valid JSON: ${(e as Error).message}`);
  }
  const validate = spec.validator('FullVmConfiguration');
  if (!validate(json)) throw new ConfigError(`--config-file "${file}": ${describeValidationError(validate.errors, 'the configuration')}`);
  return resolveConfigPaths(json as FullVmConfiguration, path.dirname(path.resolve(file)));
}

/** The file's relative paths (boot files, drives, console, log and metrics files) taken from `dir`, the file's folder. */
export function resolveConfigPaths(cfg: FullVmConfiguration, dir: string): FullVmConfiguration {
  const at = (p: string): string => path.resolve(dir, p);
  const out: FullVmConfiguration = { ...cfg };
  if (cfg['boot-source']) {
    const b = { ...cfg['boot-source'], kernel_image_path: at(cfg['boot-source'].kernel_image_path) };
    if (b.initrd_path !== undefined) b.initrd_path = at(b.initrd_path);
    out['boot-source'] = b;
  }
  if (cfg.drives) out.drives = cfg.drives.map((d) => ({ ...d, path_on_host: at(d.path_on_host) }));
  if (cfg.serial) {
    const s = { ...cfg.serial };
    if (s.serial_out_path !== undefined) s.serial_out_path = at(s.serial_out_path);
    if (s.vessel_console !== undefined) {
      const m = /^(file|unix|pty):(.+)$/.exec(s.vessel_console);
      if (m) s.vessel_console = `${m[1]}:${at(m[2])}`;
    }
    out.serial = s;
  }
  if (cfg.logger?.log_path !== undefined) out.logger = { ...cfg.logger, log_path: at(cfg.logger.log_path) };
  if (cfg.metrics) out.metrics = { ...cfg.metrics, metrics_path: at(cfg.metrics.metrics_path) };
  if (cfg['guest-agent']) out['guest-agent'] = { uds_path: at(cfg['guest-agent'].uds_path) };
  return out;
}

/** Opens --console-log for appending (created with mode 0644); the writer stops at the first error. */
function openConsoleLog(file: string): { write: (data: Uint8Array) => void; close: () => void } {
  let fd: number;
  try {
    const existed = fs.existsSync(file);
    fd = fs.openSync(file, 'a', 0o644);
    if (!existed) fs.fchmodSync(fd, 0o644); // whatever the umask
  } catch (e) {
    throw new ConfigError(`--console-log "${file}" cannot be opened: ${(e as Error).message}`);
  }
  return {
    write: (data) => {
      if (fd < 0) return;
      try {
        fs.writeSync(fd, data);
      } catch (e) {
        process.stderr.write(`vessel vmm: --console-log "${file}" cannot be written, no more output goes there: ${(e as Error).message}\n`);
        fs.closeSync(fd);
        fd = -1;
      }
    },
    close: () => { if (fd >= 0) fs.closeSync(fd); fd = -1; },
  };
}

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

/**
 * Runs the VMM until the guest stops or a signal arrives; resolves with the exit code. With
 * --exit-file, every way out that can be caught records its code and reason there.
 */
export async function runVmm(opts: VmmOptions): Promise<number> {
  const exitFile = opts.exitFile !== undefined ? new ExitFile(opts.exitFile) : undefined;
  try {
    return await runVmmInner(opts, exitFile);
  } catch (e) {
    if (e instanceof ConfigError) exitFile?.record(ExitCode.badInput, e.message, 'error');
    else exitFile?.record(ExitCode.error, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'error');
    throw e;
  }
}

async function runVmmInner(opts: VmmOptions, exitFile: ExitFile | undefined): Promise<number> {
  if (opts.apiSock === undefined && opts.configFile === undefined) throw new ConfigError('vessel vmm needs --api-sock PATH, --config-file FILE, or both');
  if (opts.apiSock === '') throw new ConfigError('--api-sock names no socket path');
  let serial: SerialSpec = { kind: 'stdio' };
  if (opts.console !== undefined) {
    try {
      serial = parseSerialSpec(opts.console);
      checkSerialSpec(serial);
    } catch (e) {
      if (e instanceof SerialSpecError) throw new ConfigError(`--console: ${e.message}`);
      throw e;
    }
  }
  const spec = new ApiSpec();
  const config = opts.configFile !== undefined ? readConfigFile(opts.configFile, spec) : undefined;
  if (config?.serial && opts.console !== undefined) throw new ConfigError(`give the console either with --console or in the "serial" section of --config-file "${opts.configFile}", not both`);
  const consoleLog = opts.consoleLog !== undefined ? openConsoleLog(opts.consoleLog) : undefined;

  let stopped: (code: number) => void = () => {};
  const exitCode = new Promise<number>((resolve) => { stopped = resolve; });
  const vmm = new Vmm(opts.id ?? DEFAULT_INSTANCE_ID, serial, (code, reason) => {
    exitFile?.record(code, describeStop(reason), reason.kind);
    stopped(code);
  }, consoleLog?.write);
  const close = (): void => { vmm.close(); consoleLog?.close(); };
  const configError = (e: unknown): never => {
    if (e instanceof RequestError) throw new ConfigError(`--config-file "${opts.configFile}": ${e.message}`);
    throw e;
  };
  if (config) {
    try { vmm.applyConfig(config); } catch (e) { close(); configError(e); }
  }

  let server: ApiServer | null = null;
  if (opts.apiSock !== undefined) {
    try {
      server = await ApiServer.listen(opts.apiSock, spec, apiOperations(vmm), vmm.logger.component('api'));
    } catch (e) {
      close();
      if (e instanceof RequestError) throw new ConfigError(e.message);
      throw e;
    }
  }
  const onSignal = (signal: keyof typeof SIGNALS): void => {
    vmm.logger.component('vmm').warn({ signal }, 'exiting on signal');
    exitFile?.record(128 + SIGNALS[signal], `the VMM was stopped by ${signal}`, 'signal');
    close();
    server?.removeSocketFile();
    // 'exit' handlers restore the terminal and remove the console socket.
    process.exit(128 + SIGNALS[signal]);
  };
  for (const s of Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]) process.once(s, onSignal);

  if (config) {
    try {
      await vmm.action('InstanceStart');
    } catch (e) {
      for (const s of Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]) process.off(s, onSignal);
      await server?.close();
      close();
      configError(e);
    }
  }
  const code = await exitCode;
  for (const s of Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]) process.off(s, onSignal);
  await server?.close();
  close();
  return code;
}
