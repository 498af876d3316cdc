/**
 * The request bodies of the VMM API as TypeScript types. They mirror the schemas of the same
 * name in api/openapi.yaml, which is what requests are validated against; a value of one of
 * these types has passed that validation.
 */

export interface BootSource {
  kernel_image_path: string;
  initrd_path?: string;
  boot_args?: string;
}

export interface MachineConfiguration {
  /** The harts the guest may run (the vCPU allotment); PUT /vm.resize changes it on a running VM. */
  vcpu_count: number;
  mem_size_mib: number;
  smt?: boolean;
  /** The harts the board has (its device tree lists them all; Cloud Hypervisor's name); vcpu_count when absent. */
  max_vcpus?: number;
}

export type MachineConfigurationUpdate = Partial<MachineConfiguration>;

export interface Drive {
  drive_id: string;
  path_on_host: string;
  is_root_device: boolean;
  is_read_only?: boolean;
}

export interface PartialDrive {
  drive_id: string;
  path_on_host?: string;
}

/** PUT /vm.resize-disk (Vessel; Cloud Hypervisor-like): a drive's new size in bytes. */
export interface DiskResize {
  id: string;
  desired_size: number;
}

/** PUT /vm.resize (Cloud Hypervisor's endpoint and fields): the new vCPU allotment and/or guest RAM in bytes (one at least). */
export interface VmResize {
  desired_vcpus?: number;
  desired_ram?: number;
}

export interface UserNetwork {
  host_forwards?: string[];
}

export interface NetworkInterface {
  iface_id: string;
  host_dev_name?: string;
  guest_mac?: string;
  vessel_user_network?: UserNetwork;
}

export type LogLevel = 'Error' | 'Warning' | 'Info' | 'Debug' | 'Trace' | 'Off';

export interface Logger {
  log_path?: string;
  /** Case-insensitive in requests. */
  level?: string;
  show_level?: boolean;
  show_log_origin?: boolean;
}

export interface Metrics {
  metrics_path: string;
}

export interface SerialDevice {
  serial_out_path?: string;
  vessel_console?: string;
}

export type EntropyDevice = Record<string, never>;

/**
 * PUT /guest-agent: a named virtio-console port `org.qemu.guest_agent.0` for the QEMU guest agent,
 * its host end a Unix socket server at `uds_path` (one client at a time), as QEMU's
 * `-chardev socket,server=on` with `-device virtserialport,name=org.qemu.guest_agent.0`.
 */
export interface GuestAgent { uds_path: string }

/** PUT /balloon (Firecracker's names). */
export interface Balloon {
  amount_mib: number;
  deflate_on_oom: boolean;
  /** 0 (the default) disables statistics for the VM's life. */
  stats_polling_interval_s?: number;
  free_page_reporting?: boolean;
}

/** PATCH /balloon */
export interface BalloonUpdate { amount_mib: number }

/** PATCH /balloon/statistics */
export interface BalloonStatsUpdate { stats_polling_interval_s: number }

/** GET /balloon: the configuration, and after InstanceStart the device's target and actual size. */
export interface BalloonInfo extends Required<Balloon> {
  target_pages?: number;
  actual_pages?: number;
  target_mib?: number;
  actual_mib?: number;
  /** Vessel's: whether the guest's balloon driver runs the device (DRIVER_OK); false before it loads, without one, and after rmmod. */
  driver_ok?: boolean;
  /** Vessel's: guest RAM the host holds now, by the host kernel's count (mincore); absent where it cannot tell. */
  resident_mib?: number;
}

/** GET /balloon/statistics: a statistic the guest did not send is absent. */
export interface BalloonStats {
  target_pages: number;
  actual_pages: number;
  target_mib: number;
  actual_mib: number;
  /** As in BalloonInfo. */
  driver_ok: boolean;
  resident_mib?: number;
  swap_in?: number;
  swap_out?: number;
  major_faults?: number;
  minor_faults?: number;
  free_memory?: number;
  total_memory?: number;
  available_memory?: number;
  disk_caches?: number;
  hugetlb_allocations?: number;
  hugetlb_failures?: number;
  oom_kill?: number;
  alloc_stall?: number;
  async_scan?: number;
  direct_scan?: number;
  async_reclaim?: number;
  direct_reclaim?: number;
}

export interface VmStateUpdate {
  state: 'Paused' | 'Resumed';
  vessel_advance_clock?: boolean;
}

export interface SnapshotCreateParams {
  snapshot_path: string;
  mem_file_path: string;
  snapshot_type?: 'Full' | 'Diff';
}

export interface MemoryBackend {
  backend_type: 'File' | 'Uffd';
  backend_path: string;
}

export interface SnapshotLoadParams {
  snapshot_path: string;
  /** Firecracker's older field; mem_backend replaces it. */
  mem_file_path?: string;
  mem_backend?: MemoryBackend;
  resume_vm?: boolean;
}

export type ActionType = 'FlushMetrics' | 'InstanceStart' | 'SendCtrlAltDel';

/** GET /vm/config and `vessel vmm --config-file`. */
export interface FullVmConfiguration {
  'boot-source'?: BootSource;
  'machine-config'?: MachineConfiguration;
  drives?: Drive[];
  'network-interfaces'?: NetworkInterface[];
  logger?: Logger;
  metrics?: Metrics;
  serial?: SerialDevice;
  entropy?: EntropyDevice;
  balloon?: Balloon;
  'guest-agent'?: GuestAgent;
}

/** GET / */
export interface InstanceInfo {
  app_name: 'vessel';
  id: string;
  state: VmState;
  vmm_version: string;
}

/** Firecracker's names for the lifecycle states, plus Stopped (the VMM exits right after it). */
export type VmState = 'Not started' | 'Running' | 'Paused' | 'Stopped';
