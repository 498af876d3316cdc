/**
 * `vessel host`: the daemon that owns this machine's VMs. It takes the state directory for
 * itself (one host per directory), opens the state store, finds a CPU controller, re-adopts
 * the VM processes still running, and serves the host API until SIGINT/SIGTERM. Stopping the
 * host leaves the VMs running, as libvirtd does; the next host adopts them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { flockSync } from 'fs-ext';
import { pino } from 'pino';
import { hostOperations } from './api/operations.js';
import { HostStartError } from './errors.js';
import { HostApiServer } from './api/server.js';
import { Cgroups } from './cgroups.js';
import { MemoryBalancer } from './memory.js';
import { hostCpuCount } from './proc.js';
import { prometheusRegistry } from './prometheus.js';
import { StateStore } from './store.js';
import { Supervisor } from './supervisor.js';
import { UsageSampler } from './usage.js';
import { Tenants } from './tenants.js';
import { loadPrices, Metering } from './metering.js';
import { tenantOperations } from './api/tenant-operations.js';
import { liveOperations, liveWsOperations } from './api/live-operations.js';
import { snapshotOperations } from './api/snapshot-operations.js';
import { sessionOperations } from './api/session-operations.js';
import { Sessions } from './sessions.js';
import { agentOperations } from './api/agent-operations.js';
import { StatsHistory } from './stats-history.js';
import { ADMIN } from './tenants.js';

export const VESSEL_VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

export interface HostOptions {
  stateDir: string;
  /** ADDR:PORT for the API over TCP (bearer token). */
  listen?: string;
  /** The admin's token; by default the one kept in <state dir>/token (made on first use). */
  token?: string;
  /** A JSON or YAML file of prices for GET /usage (metering.ts); built-in defaults without. */
  prices?: string;
  /** Called once the API listens (tests and the CLI print from it). */
  onReady?: (info: { socketPath: string; url: string | null }) => void;
}

/**
 * Holds an exclusive flock on <dir>/host.lock for the life of the process: a second host on
 * the same directory is refused (the lock is the kernel's, so it ends with the process).
 */
function lockStateDir(dir: string): number {
  const file = path.join(dir, 'host.lock');
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    flockSync(fd, 'exnb');
  } catch (e) {
    let holder = '';
    try { holder = fs.readFileSync(file, 'utf8').trim(); } catch { /* unreadable */ }
    fs.closeSync(fd);
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN' || (e as NodeJS.ErrnoException).code === 'EWOULDBLOCK') {
      throw new HostStartError(`another vessel host${holder ? ` (pid ${holder})` : ''} is using the state directory ${dir}`);
    }
    throw new HostStartError(`cannot lock the state directory ${dir}: ${(e as Error).message}`);
  }
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  return fd;
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new HostStartError(`--listen "${text}" is not ADDR:PORT (e.g. 127.0.0.1:8080)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function hostToken(dir: string, given?: string): string {
  if (given) return given;
  const file = path.join(dir, 'token');
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return t;
  } catch { /* make one */ }
  const t = randomBytes(24).toString('base64url');
  fs.writeFileSync(file, `${t}\n`, { mode: 0o600 });
  return t;
}

export interface RunningHost {
  close(): Promise<void>;
  readonly supervisor: Supervisor;
}

export async function startHost(opts: HostOptions): Promise<RunningHost> {
  const dir = path.resolve(opts.stateDir);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new HostStartError(`cannot create the state directory ${dir}: ${(e as Error).message}`);
  }
  const tcp = opts.listen !== undefined ? parseListen(opts.listen) : undefined;
  const prices = loadPrices(opts.prices);
  const lockFd = lockStateDir(dir);
  const log = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime, level: process.env['VESSEL_LOG'] ?? 'info' }, pino.destination(2));
  let store: StateStore;
  try {
    store = new StateStore(path.join(dir, 'host.db'));
  } catch (e) {
    fs.closeSync(lockFd);
    throw new HostStartError((e as Error).message);
  }
  const { cgroups, probe } = Cgroups.probe();
  if (!cgroups) log.warn(`CPU weights and caps are NOT enforced on this host: ${probe.reason}`);
  const hostCpus = hostCpuCount();
  const supervisor = new Supervisor({ store, cgroups, stateDir: dir, hostCpus, log });
  await supervisor.adopt();
  const usage = new UsageSampler(cgroups, () => supervisor.list(), hostCpus);
  usage.start();
  const memory = new MemoryBalancer(supervisor, store, log);
  memory.start();
  const registry = prometheusRegistry(() => supervisor.list(), usage, memory);
  const tenants = new Tenants(store);
  const metering = new Metering(store, supervisor, usage, memory, tenants, prices);
  metering.start();
  const socketPath = path.join(dir, 'host.sock');
  const token = hostToken(dir, opts.token);
  const tenancy = { tenants, metering, store };
  const sessions = new Sessions(store, tenants, token);
  let server: HostApiServer;
  let history: StatsHistory | null = null;
  try {
    const ctx = { supervisor, store, usage, memory, registry, cgroups, cgroupProbe: probe, stateDir: dir, version: VESSEL_VERSION, hostCpus, tenancy };
    const ops = hostOperations(ctx);
    history = new StatsHistory(supervisor, async (id) => {
      const r = await ops.getVmStats({ params: { vm: id }, query: {}, body: undefined, who: ADMIN } as unknown as Parameters<typeof ops.getVmStats>[0]);
      return 'body' in r ? r.body : null;
    });
    history.start();
    server = await HostApiServer.listen(
      { socketPath, tcp, authenticate: (t) => tenants.authenticate(t, token), session: (id) => sessions.who(id) },
      { ...ops, ...agentOperations(ctx), ...tenantOperations(tenants, metering, supervisor), ...snapshotOperations(ctx), ...sessionOperations(sessions), ...liveOperations(ctx, history) },
      log,
      liveWsOperations(ctx),
    );
  } catch (e) {
    history?.stop();
    metering.stop();
    usage.stop();
    memory.stop();
    supervisor.close();
    store.close();
    fs.closeSync(lockFd);
    throw new HostStartError((e as Error).message);
  }
  const url = server.tcpAddress && token ? `${server.tcpAddress.replace('0.0.0.0', '127.0.0.1')}/?token=${token}` : null;
  log.info({ stateDir: dir, socket: socketPath, tcp: server.tcpAddress, cgroups: probe.mode, vms: supervisor.list().length }, 'vessel host ready');
  opts.onReady?.({ socketPath, url });
  return {
    supervisor,
    async close() {
      history?.stop();
      metering.stop();
      usage.stop();
      memory.stop();
      supervisor.close();
      await server.close();
      store.close();
      fs.closeSync(lockFd);
    },
  };
}

/** Runs the host in the foreground until SIGINT or SIGTERM; resolves with the exit code. */
export async function runHost(opts: HostOptions): Promise<number> {
  const host = await startHost(opts);
  await new Promise<void>((resolve) => {
    const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await host.close();
  return 0;
}
