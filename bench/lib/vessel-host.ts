// A `vessel host` daemon of the benchmark's own, on a temporary state directory, driven over its
// API socket (src/host/api/openapi.yaml): create, change and delete VMs, follow their console
// logs, type into their serial consoles. `stop()` deletes every VM it made and ends the daemon;
// VM processes that outlive a failed delete are killed by pid (they run detached from the host).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { Cgroups } from '../../src/host/cgroups.js';
import { processArgs } from '../../src/host/proc.js';
import { api } from '../../test/vmm-client.js';
import { CLI, VesselProcess } from '../../test/vessel-cli.js';
import { GuestError } from './guest.js';

/** The fields of GET /vms/{name} the benchmark uses. */
export interface VmInfo {
  id: string;
  name: string;
  state: string;
  pid?: number;
  console_socket?: string;
  cpu_weight: number;
  cpu_cap: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class VesselHost {
  /** The VMs this benchmark created and has not deleted, by name (with the pid they started with). */
  readonly vms = new Map<string, VmInfo>();

  private constructor(readonly dir: string, readonly proc: VesselProcess) {}

  get socket(): string { return path.join(this.dir, 'host.sock'); }

  /** Starts `vessel host --state-dir <new temporary dir>` and waits until GET /host answers. */
  static async start(timeoutMs = 60_000): Promise<VesselHost> {
    // Short: a VM's socket paths (<dir>/vms/<id>/console.sock) must fit a Unix socket address.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhb-'));
    const host = new VesselHost(dir, new VesselProcess(process.execPath, [CLI, 'host', '--state-dir', dir]));
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (host.proc.exit) throw new GuestError(`vessel host exited (code ${host.proc.exit.code}) before its API answered\n${host.proc.describe()}`);
      try {
        if ((await api(host.socket, 'GET', '/host')).status === 200) return host;
      } catch { /* not listening yet */ }
      if (performance.now() > deadline) throw new GuestError(`vessel host: no API on ${host.socket} within ${timeoutMs / 1000} s`);
      await sleep(50);
    }
  }

  /** One API request; fails unless the reply has one of the `ok` statuses. */
  async request<T>(method: string, url: string, body?: unknown, ok = [200, 201, 204]): Promise<T> {
    const r = await api(this.socket, method, url, body);
    if (!ok.includes(r.status)) throw new GuestError(`vessel host: ${method} ${url} -> ${r.status} ${r.text}`);
    return r.body as T;
  }

  async create(spec: Record<string, unknown> & { name: string }): Promise<VmInfo> {
    const vm = await this.request<VmInfo>('POST', '/vms', spec);
    this.vms.set(vm.name, vm);
    return vm;
  }

  async update(name: string, patch: { cpu_weight?: number; cpu_cap?: number }): Promise<VmInfo> {
    return this.request<VmInfo>('PATCH', `/vms/${name}`, patch);
  }

  async delete(name: string): Promise<void> {
    await this.request('DELETE', `/vms/${name}?force=true`);
    this.vms.delete(name);
  }

  /**
   * Follows GET /vms/{name}/logs?follow=true until each of `patterns` has appeared, in order
   * (each after the previous one); resolves with the performance.now() at which each arrived.
   * The host polls the console log every 200 ms, so the times are that coarse.
   */
  waitForLog(name: string, patterns: string[], timeoutMs: number): Promise<number[]> {
    return new Promise((resolve, reject) => {
      let text = '';
      let from = 0;
      const times: number[] = [];
      const timer = setTimeout(() => done(new GuestError(`VM ${name}: no "${patterns[times.length]}" in its log within ${timeoutMs / 1000} s; last lines:\n${text.slice(-800)}`)), timeoutMs);
      const req = http.get({ socketPath: this.socket, path: `/vms/${name}/logs?follow=true` }, (res) => {
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => {
          text += chunk;
          while (times.length < patterns.length) {
            const i = text.indexOf(patterns[times.length], from);
            if (i < 0) break;
            from = i + patterns[times.length].length;
            times.push(performance.now());
          }
          if (times.length === patterns.length) done(null);
        });
        res.on('end', () => done(new GuestError(`VM ${name}: its log ended (the VM stopped) before "${patterns[times.length]}"; last lines:\n${text.slice(-800)}`)));
      });
      req.on('error', (e) => done(e));
      let finished = false;
      function done(e: Error | null): void {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        req.destroy();
        if (e) reject(e); else resolve(times);
      }
    });
  }

  /** Types `text` into the VM's serial console (its Unix socket) and hangs up. */
  async type(vm: VmInfo, text: string): Promise<void> {
    if (!vm.console_socket) throw new GuestError(`VM ${vm.name} has no console socket`);
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(vm.console_socket!, () => {
        s.write(text, () => setTimeout(() => { s.end(); resolve(); }, 200));
      });
      s.on('data', () => { /* the console's output so far: not needed here */ });
      s.on('error', reject);
    });
  }

  /**
   * Deletes the VMs this benchmark made, ends the host, then kills (by pid) any VM process the
   * host could not stop and removes its cgroups, and removes the state directory.
   */
  async stop(): Promise<void> {
    const left = [...this.vms.values()];
    for (const vm of left) {
      try {
        await this.delete(vm.name);
      } catch (e) {
        process.stderr.write(`bench: deleting VM ${vm.name} failed: ${(e as Error).message}\n`);
      }
    }
    if (!this.proc.exit) {
      this.proc.child.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill(), 10_000);
      await this.proc.exited.catch(() => undefined);
      clearTimeout(t);
    }
    const cg = Cgroups.probe().cgroups;
    for (const vm of this.vms.values()) {
      if (vm.pid && processArgs(vm.pid).includes(vm.id)) {
        process.stderr.write(`bench: killing the process ${vm.pid} of VM ${vm.name}, left running\n`);
        try { process.kill(vm.pid, 'SIGKILL'); } catch { /* gone */ }
        await sleep(200);
      }
      await cg?.remove(vm.id).catch(() => undefined);
    }
    this.vms.clear();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
