/**
 * The host API's operations (by operationId in openapi.yaml) mapped onto the supervisor. Bodies
 * arrive validated against the document; the supervisor and vm-spec check what a schema
 * cannot (files exist, names are free, the VM's state allows it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureDefaultImage, ImageBuildError } from '../../../images/build-image.js';
import { DEFAULT_APPEND } from '../../vmm/boot-files.js';
import { chooseBoot } from '../../vmm/default-boot.js';
import type { Cgroups, CgroupProbe } from '../cgroups.js';
import { UnavailableError } from '../errors.js';
import type { MemoryBalancer } from '../memory.js';
import type { ExitRecord, StateStore } from '../store.js';
import { copyRootDisk, type Supervisor, type VmHandle } from '../supervisor.js';
import { agentStatus, NoGuestAgentError, withAgent, type AgentVm } from '../guest-agent.js';
import { consolePoweroff } from '../shutdown-fallback.js';
import { diskIndex, growGuestFilesystem } from '../disk-resize.js';
import type { Allotment } from '../tenants.js';
import { vmmRequest } from '../vmm-client.js';
import { resizeVcpusLive, type VcpuChange } from '../vcpu-resize.js';
import type { UsageSampler } from '../usage.js';
import { DEFAULT_SPEC, SpecError, type DiskSpec, type RestartPolicy, type VmSpec } from '../vm-spec.js';
import type { Registry } from 'prom-client';
import { BadRequestError, type HostHandler, type HostRequest } from './server.js';
import { tenantScope, type TenantContext } from './tenant-scope.js';
import { growRootDisk } from '../disk-size.js';

export interface HostContext {
  supervisor: Supervisor;
  store: StateStore;
  usage: UsageSampler;
  memory: MemoryBalancer;
  registry: Registry;
  cgroups: Cgroups | null;
  cgroupProbe: CgroupProbe;
  stateDir: string;
  version: string;
  hostCpus: number;
  /** Tenants, quotas and metering (tenant-scope.ts). */
  tenancy: TenantContext;
}

interface VmCreateBody {
  name: string;
  vcpus?: number;
  max_vcpus?: number;
  memory_mib?: number;
  memory_min_mib?: number;
  memory_shares?: number;
  cpu_weight?: number;
  cpu_cap?: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  disks?: { path: string; readonly?: boolean }[];
  nets?: string[];
  rng?: boolean;
  restart?: RestartPolicy;
  start?: boolean;
  /** `initramfs`: the default image's kernel and initramfs without a root disk (tenant-scope.ts). */
  image?: 'default' | 'initramfs';
  /** The admin creates a VM for this tenant. */
  tenant?: string;
  /** The size of the VM's own root disk copy, grown with its file system before the first boot (disk-size.ts). */
  disk_mib?: number;
}

/** What the API shows of a VM. */
export function vmView(vm: VmHandle, lastExit: ExitRecord | null): Record<string, unknown> {
  const s = vm.record.spec;
  const startedAt = vm.proc?.startedAt ?? null;
  return {
    id: vm.id,
    name: vm.name,
    state: vm.state,
    desired_state: vm.record.desired,
    vcpus: s.vcpus,
    max_vcpus: s.max_vcpus ?? s.vcpus,
    memory_mib: s.memory_mib,
    memory_min_mib: s.memory_min_mib,
    memory_shares: s.memory_shares ?? DEFAULT_SPEC.memory_shares,
    memory_target: s.memory_manual_mib ?? 'auto',
    cpu_weight: s.cpu_weight,
    cpu_cap: s.cpu_cap,
    kernel: s.kernel,
    ...(s.initrd !== undefined ? { initrd: s.initrd } : {}),
    append: s.append,
    disks: s.disks.map((d) => ({ path: d.path, readonly: d.readonly, size_bytes: fileSize(d.path) })),
    nets: s.nets,
    rng: s.rng,
    restart: s.restart,
    pid: vm.proc?.pid ?? null,
    created_at: vm.record.createdAt,
    started_at: startedAt,
    uptime_s: startedAt ? Math.round((Date.now() - Date.parse(startedAt)) / 100) / 10 : 0,
    last_exit: lastExit,
    error: vm.error,
    console_socket: vm.files.consoleSock,
    api_socket: vm.files.apiSock,
  };
}

/** A disk image's size now (null when it cannot be read). */
function fileSize(p: string): number | null {
  try { return fs.statSync(p).size; } catch { return null; }
}

function flag(q: string | undefined, name: string): boolean {
  if (q === undefined || q === 'false' || q === '0') return false;
  if (q === '' || q === 'true' || q === '1') return true;
  throw new BadRequestError(`query parameter ${name} must be true or false, not "${q}"`);
}

/** Resolves a create request's boot choices the way `vessel run` does, the default image included. */
async function specFor(ctx: HostContext, body: VmCreateBody, vmDir: string): Promise<VmSpec> {
  const nets = body.nets ?? ['user'];
  if (nets.includes('none') && nets.length > 1) throw new SpecError('net "none" cannot be combined with other networks');
  for (const k of ['kernel', 'initrd'] as const) {
    if (body[k] !== undefined && !fs.existsSync(body[k] as string)) throw new SpecError(`${k} "${body[k]}" does not exist`);
  }
  let choice;
  try {
    choice = await chooseBoot(
      { kernel: body.kernel, initrd: body.initrd, disks: (body.disks ?? []).map((d) => ({ path: d.path, readonly: d.readonly ?? false })), append: body.append ?? DEFAULT_APPEND },
      () => ensureDefaultImage({ quiet: true }),
    );
  } catch (e) {
    if (e instanceof ImageBuildError) throw new UnavailableError(`the default guest image is not available: ${e.message}`);
    throw e;
  }
  const disks: DiskSpec[] = choice.disks.map((d) => ({ path: d.path, readonly: d.readonly }));
  if (body.disk_mib !== undefined && choice.defaultRootDisk === undefined) throw new SpecError('disk_mib sizes the VM\'s own copy of the default root disk: it needs the default image (no kernel, initrd or disks, and not "image": "initramfs")');
  if (choice.defaultRootDisk !== undefined) {
    // Each VM boots its own copy of the default root disk: never two VMs writing one file system.
    const copy = path.join(vmDir, 'rootfs.ext4');
    copyRootDisk(choice.defaultRootDisk, copy);
    if (body.disk_mib !== undefined) growRootDisk(copy, body.disk_mib);
    disks[0] = { path: copy, readonly: false, owned: true };
  }
  const memory = body.memory_mib ?? DEFAULT_SPEC.memory_mib;
  return {
    vcpus: body.vcpus ?? DEFAULT_SPEC.vcpus,
    ...(body.max_vcpus !== undefined ? { max_vcpus: body.max_vcpus } : {}),
    memory_mib: memory,
    memory_min_mib: body.memory_min_mib ?? memory,
    memory_shares: body.memory_shares ?? DEFAULT_SPEC.memory_shares,
    cpu_weight: body.cpu_weight ?? DEFAULT_SPEC.cpu_weight,
    cpu_cap: body.cpu_cap ?? DEFAULT_SPEC.cpu_cap,
    kernel: choice.kernel,
    ...(choice.initrd !== undefined ? { initrd: choice.initrd } : {}),
    append: choice.append,
    disks,
    nets: nets.filter((n) => n !== 'none'),
    rng: body.rng ?? DEFAULT_SPEC.rng,
    restart: body.restart ?? DEFAULT_SPEC.restart,
  };
}

export function hostOperations(ctx: HostContext): Record<string, HostHandler> {
  const { supervisor: sup, store } = ctx;
  const scope = tenantScope(ctx.tenancy, sup);
  const view = (vm: VmHandle): Record<string, unknown> => ({ ...vmView(vm, store.lastExit(vm.id)), tenant: scope.tenantName(vm.id) });
  // A tenant finds only its own VMs: another tenant's is "no such VM", word for word.
  const find = (req: HostRequest): VmHandle => scope.find(req.who, req.params.vm);
  const ok = (body: unknown) => ({ status: 200 as const, body });
  const tenantQuota = (vm: VmHandle, extra: Partial<Allotment>, what: string): void => scope.checkGrowth(vm, extra, what);
  return {
    getHost: (req) => ok({
      vessel_version: ctx.version,
      state_dir: ctx.stateDir,
      cgroups: { mode: ctx.cgroupProbe.mode, enforced: ctx.cgroups !== null, ...(ctx.cgroupProbe.reason ? { reason: ctx.cgroupProbe.reason } : {}) },
      ...ctx.usage.hostUsage(),
      vms: scope.visible(req.who).length,
      ...scope.hostExtras(req.who),
    }),
    listVms: (req) => ok(scope.visible(req.who).map(view)),
    createVm: async (req) => {
      const b = await scope.createBody(req.who, req.body as VmCreateBody);
      return scope.serialCreate(req.who, b.tenant, async (owner) => {
        const { id, dir } = sup.reserveVmDir();
        let spec: VmSpec;
        try {
          // What the request says is checked before any file is made; the disks' real size after.
          if (owner) scope.checkRequest(owner, b);
          spec = await specFor(ctx, b, dir);
          if (owner) scope.checkCreate(owner, spec, b.name);
        } catch (e) {
          fs.rmSync(dir, { recursive: true, force: true });
          throw e;
        }
        const vm = await sup.create({ id, name: b.name, spec, start: b.start ?? true, tenantId: owner?.id ?? null });
        return { status: 201, body: view(vm) };
      });
    },
    getVm: async (req) => {
      const vm = find(req);
      return ok({ ...view(vm), vcpus_online: await vcpusOnline(vm), guest_agent: await agentStatus(agentVm(vm), vmmRequest) });
    },
    execVm: async (req) => {
      const vm = find(req);
      const b = req.body as { command: string[]; timeout_s?: number };
      const result = await withAgent(agentVm(vm), vmmRequest, (c) => c.exec(b.command, { timeoutMs: (b.timeout_s ?? 60) * 1000 }));
      return ok(result);
    },
    shutdownVm: async (req) => {
      const vm = find(req);
      // Without an agent: `poweroff` typed at a shell prompt on the serial console, when there is one (shutdown-fallback.ts).
      let how = '';
      await sup.shutdown(vm, async () => {
        how = await withAgent(agentVm(vm), vmmRequest, (c) => c.shutdown('powerdown')).then(() => 'the guest agent ran guest-shutdown (powerdown)', (e: unknown) => {
          if (!(e instanceof NoGuestAgentError) || vm.state !== 'running' || !vm.proc) throw e;
          return consolePoweroff(vm.name, vm.files.consoleLog, vm.files.consoleSock, e.message);
        });
        return how;
      });
      return ok({ ...view(vm), shutdown: how });
    },
    updateVm: async (req) => {
      const vm = find(req);
      const startedAt = Date.now();
      const b = req.body as { cpu_weight?: number; cpu_cap?: number; restart?: RestartPolicy; memory_shares?: number; vcpus?: number; max_vcpus?: number };
      // More vCPUs for a tenant's VM count against the tenant's vCPU quota, as at create (the allotment counts, not max_vcpus).
      if (b.vcpus !== undefined && b.vcpus > vm.record.spec.vcpus) tenantQuota(vm, { vcpus: b.vcpus - vm.record.spec.vcpus }, `VM "${vm.name}" with ${b.vcpus} vCPUs`);
      // A running VM's vCPUs change live first (vcpu-resize.ts); a refusal there leaves the other fields as they were.
      let vcpusChange: VcpuChange | undefined;
      const { vcpus, ...rest } = b;
      if (vcpus !== undefined && vm.proc && (vcpus !== vm.record.spec.vcpus || vm.state === 'running')) {
        if (b.max_vcpus !== undefined) await sup.update(vm, { max_vcpus: b.max_vcpus });
        vcpusChange = await sup.resizeVcpus(vm, vcpus, () => resizeVcpusLive(agentVm(vm), vm.record.spec.vcpus, vcpus, vmmRequest, startedAt));
        await sup.update(vm, rest);
      } else {
        await sup.update(vm, b);
      }
      return ok({ ...view(vm), ...(vcpusChange ? { vcpus_change: vcpusChange } : {}) });
    },
    resizeVmDisk: async (req) => {
      const startedAt = Date.now();
      const vm = find(req);
      const disk = req.params.disk;
      // A tenant's VM may not take the tenant past its disk quota (apparent sizes, as at create).
      const quota = (addBytes: number): void => tenantQuota(vm, { disk_gib: addBytes / 2 ** 30 }, `growing ${disk} of VM "${vm.name}"`);
      const growth = await sup.growDisk(vm, disk, (req.body as { size_bytes: number }).size_bytes, quota);
      await growGuestFilesystem(agentVm(vm), growth, vmmRequest, startedAt, diskIndex({ name: vm.name, spec: vm.record.spec }, disk));
      return ok(growth);
    },
    deleteVm: async (req) => {
      await sup.delete(find(req), flag(req.query.force, 'force'));
      return { status: 204 };
    },
    startVm: async (req) => { const vm = find(req); await sup.start(vm); return ok(view(vm)); },
    stopVm: async (req) => { const vm = find(req); await sup.stop(vm, flag(req.query.force, 'force')); return ok(view(vm)); },
    pauseVm: async (req) => { const vm = find(req); await sup.pause(vm); return ok(view(vm)); },
    resumeVm: async (req) => { const vm = find(req); await sup.resume(vm); return ok(view(vm)); },
    getVmStats: async (req) => {
      const vm = find(req);
      const u = ctx.usage.vm(vm.id) ?? await ctx.usage.vmNow(vm);
      const base = u ?? { cpu: null, memory: { guest_mib: vm.record.spec.memory_mib, rss_bytes: null }, disk: {}, net: {} };
      // The balloon's side from the policy's last round (no request to the VM process here).
      const m = ctx.memory.cached(vm.id);
      const memory = {
        ...base.memory,
        target_mib: m?.targetMib ?? null,
        actual_mib: m?.actualMib ?? null,
        guest_used_mib: m?.guest && m.actualMib !== null ? Math.max(0, m.actualMib - m.guest.availableMib) : null,
        guest_available_mib: m?.guest?.availableMib ?? null,
        manual: vm.record.spec.memory_manual_mib !== undefined,
      };
      return ok({ id: vm.id, name: vm.name, state: vm.state, cpu_weight: vm.record.spec.cpu_weight, cpu_cap: vm.record.spec.cpu_cap, vcpus: vm.record.spec.vcpus, ...base, memory });
    },
    getVmMemory: async (req) => ok(await ctx.memory.view(find(req))),
    setVmMemory: async (req) => {
      const vm = find(req);
      const t = (req.body as { target_mib: number | 'auto' }).target_mib;
      await ctx.memory.setTarget(vm, t);
      return ok(await ctx.memory.view(vm));
    },
    getVmLogs: (req) => streamLogs(req, find(req)),
    getVmEvents: (req) => ok(store.events({ vmId: find(req).id, limit: limitOf(req.query.limit) })),
    listEvents: (req) => ok(scope.events(req.who, limitOf(req.query.limit))),
    getMetrics: async ({ reply, who }) => {
      scope.adminOnly(who, 'GET /metrics');
      const text = await ctx.registry.metrics();
      await reply.code(200).header('Content-Type', ctx.registry.contentType).send(text);
      return { status: 'sent' };
    },
  };
}

/** CPUs online in a running VM's guest (its VMM's count of started harts); null without a process or an answer. */
async function vcpusOnline(vm: VmHandle): Promise<number | null> {
  if (!vm.proc || vm.state === 'starting' || vm.state === 'stopping') return null;
  try {
    const m = await vmmRequest(vm.files.apiSock, 'GET', '/metrics', undefined, 2000) as { vcpus?: { online: number } };
    return m.vcpus?.online ?? null;
  } catch {
    return null;
  }
}

/** What the guest agent helpers need of a VM. */
export function agentVm(vm: VmHandle): AgentVm {
  return { name: vm.name, state: vm.state, running: vm.proc !== null && vm.state !== 'stopping', apiSock: vm.files.apiSock, qgaSock: vm.files.qgaSock };
}

function limitOf(q: string | undefined): number {
  if (q === undefined) return 100;
  const n = Number(q);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new BadRequestError(`query parameter limit must be an integer from 1 to 10000, not "${q}"`);
  return n;
}

/** The last `n` lines of `text`. */
function tailLines(text: Buffer, n: number): Buffer {
  let end = text.length;
  if (end > 0 && text[end - 1] === 0x0a) end--;
  let i = end;
  for (let seen = 0; i > 0; i--) {
    if (text[i - 1] === 0x0a && ++seen === n) break;
  }
  return text.subarray(i);
}

/**
 * GET /vms/{vm}/logs: the console log so far; with follow, what the guest prints next, until
 * the VM's process ends or the client goes away (as `docker logs -f`).
 */
async function streamLogs(req: HostRequest, vm: VmHandle) {
  const follow = flag(req.query.follow, 'follow');
  let tail: number | undefined;
  if (req.query.tail !== undefined) {
    tail = Number(req.query.tail);
    if (!Number.isInteger(tail) || tail < 0) throw new BadRequestError(`query parameter tail must be a whole number of lines, not "${req.query.tail}"`);
  }
  const file = vm.files.consoleLog;
  const readFrom = (offset: number): Buffer => {
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        if (size <= offset) return Buffer.alloc(0);
        const buf = Buffer.alloc(size - offset);
        fs.readSync(fd, buf, 0, buf.length, offset);
        return buf;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return Buffer.alloc(0);
    }
  };
  const first = readFrom(0);
  const initial = tail !== undefined ? tailLines(first, tail) : first;
  if (!follow) {
    await req.reply.code(200).header('Content-Type', 'text/plain; charset=utf-8').send(initial);
    return { status: 'sent' as const };
  }
  req.reply.hijack();
  const res = req.reply.raw;
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache' });
  res.write(initial);
  let offset = first.length;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const more = readFrom(offset);
      if (more.length > 0) {
        offset += more.length;
        res.write(more);
      } else if (!vm.proc && vm.state !== 'starting') {
        finish();
      }
    }, 200);
    const finish = (): void => { clearInterval(timer); res.end(); resolve(); };
    req.raw.raw.on('close', finish);
  });
  return { status: 'sent' as const };
}
