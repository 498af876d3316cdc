/**
 * The host's and every VM's use as Prometheus text (GET /metrics), through prom-client: gauges
 * and counters are filled from the usage sampler's latest values when scraped.
 */
import { Gauge, Registry } from 'prom-client';
import type { MemoryBalancer } from './memory.js';
import type { VmHandle } from './supervisor.js';
import type { UsageSampler } from './usage.js';

export function prometheusRegistry(vms: () => VmHandle[], usage: UsageSampler, memory?: MemoryBalancer): Registry {
  const registry = new Registry();
  const labels = ['vm', 'id'] as const;
  type Setter = (v: number, extra?: Record<string, string>) => void;
  const each = (f: (vm: VmHandle, set: Setter) => void) => function collect(this: Gauge<string>): void {
    this.reset();
    for (const vm of vms()) f(vm, (v, extra = {}) => this.set({ vm: vm.name, id: vm.id, ...extra }, v));
  };
  const gauge = (name: string, help: string, f: (vm: VmHandle, set: Setter) => void, extraLabels: string[] = []): void => {
    new Gauge({ name, help, labelNames: [...labels, ...extraLabels], registers: [registry], collect: each(f) });
  };
  gauge('vessel_vm_up', 'The VM has a running or paused process (1) or not (0)', (vm, set) => set(vm.proc ? 1 : 0));
  gauge('vessel_vm_state', 'The VM\'s state, as a label with value 1', (vm, set) => set(1, { state: vm.state }), ['state']);
  gauge('vessel_vm_vcpus', 'vCPUs given to the VM', (vm, set) => set(vm.record.spec.vcpus));
  gauge('vessel_vm_cpu_weight', 'The VM\'s relative CPU share (cgroup v2 scale)', (vm, set) => set(vm.record.spec.cpu_weight));
  gauge('vessel_vm_cpu_cap_percent', 'The VM\'s CPU cap in percent of one core (0 = none)', (vm, set) => set(vm.record.spec.cpu_cap));
  gauge('vessel_vm_cpu_seconds_total', 'CPU time used by the VM\'s process', (vm, set) => { const u = usage.vm(vm.id); if (u) set(u.cpu.usage_s); });
  gauge('vessel_vm_cpu_throttled_seconds_total', 'Time the VM was held back by its cap', (vm, set) => { const u = usage.vm(vm.id); if (u?.cpu.throttled_s != null) set(u.cpu.throttled_s); });
  gauge('vessel_vm_cpu_wait_seconds_total', 'Time the VM\'s threads were runnable but waited for a core', (vm, set) => { const u = usage.vm(vm.id); if (u?.cpu.wait_s != null) set(u.cpu.wait_s); });
  gauge('vessel_vm_memory_bytes', 'Guest RAM given to the VM', (vm, set) => set(vm.record.spec.memory_mib * 1024 * 1024));
  gauge('vessel_vm_rss_bytes', 'Resident memory of the VM\'s process on the host', (vm, set) => { const u = usage.vm(vm.id); if (u?.memory.rss_bytes != null) set(u.memory.rss_bytes); });
  const mem = (vm: VmHandle) => memory?.cached(vm.id) ?? null;
  gauge('vessel_vm_memory_target_bytes', 'Guest memory the balloon is to leave the VM (memory minus the balloon\'s target)', (vm, set) => { const m = mem(vm); if (m?.targetMib != null) set(m.targetMib * 1048576); });
  gauge('vessel_vm_memory_actual_bytes', 'Guest memory the VM has now (memory minus what its balloon holds)', (vm, set) => { const m = mem(vm); if (m?.actualMib != null) set(m.actualMib * 1048576); });
  gauge('vessel_vm_guest_memory_available_bytes', 'MemAvailable as the guest reports it through its balloon', (vm, set) => { const m = mem(vm); if (m?.guest) set(m.guest.availableMib * 1048576); });
  gauge('vessel_vm_disk_read_bytes_total', 'Bytes read by the guest from a disk', (vm, set) => { for (const [d, b] of Object.entries(usage.vm(vm.id)?.disk ?? {})) set(b.read_bytes, { drive: d }); }, ['drive']);
  gauge('vessel_vm_disk_write_bytes_total', 'Bytes written by the guest to a disk', (vm, set) => { for (const [d, b] of Object.entries(usage.vm(vm.id)?.disk ?? {})) set(b.write_bytes, { drive: d }); }, ['drive']);
  gauge('vessel_vm_disk_ops_total', 'Disk requests of the guest', (vm, set) => { for (const [d, b] of Object.entries(usage.vm(vm.id)?.disk ?? {})) { set(b.read_ops, { drive: d, op: 'read' }); set(b.write_ops, { drive: d, op: 'write' }); } }, ['drive', 'op']);
  gauge('vessel_vm_net_rx_bytes_total', 'Bytes received by the guest', (vm, set) => { for (const [i, n] of Object.entries(usage.vm(vm.id)?.net ?? {})) set(n.rx_bytes, { iface: i }); }, ['iface']);
  gauge('vessel_vm_net_tx_bytes_total', 'Bytes sent by the guest', (vm, set) => { for (const [i, n] of Object.entries(usage.vm(vm.id)?.net ?? {})) set(n.tx_bytes, { iface: i }); }, ['iface']);
  new Gauge({ name: 'vessel_host_cpus', help: 'Host CPUs', registers: [registry], collect() { this.set(usage.hostUsage().cpus); } });
  new Gauge({ name: 'vessel_host_cpu_percent', help: 'Host CPU busy, 100 = one core', registers: [registry], collect() { this.set(usage.hostUsage().cpu_percent); } });
  new Gauge({ name: 'vessel_host_memory_total_bytes', help: 'Host memory', registers: [registry], collect() { this.set(usage.hostUsage().memory.total_bytes); } });
  new Gauge({ name: 'vessel_host_memory_available_bytes', help: 'Host memory available (MemAvailable)', registers: [registry], collect() { this.set(usage.hostUsage().memory.available_bytes); } });
  return registry;
}
