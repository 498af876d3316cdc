/**
 * The VM's counters (GET /metrics) and the metrics sink (PUT /metrics): one JSON line appended
 * to a file or named pipe every 60 seconds, on FlushMetrics and when the VM stops, as
 * Firecracker does. Counters are totals since InstanceStart, not deltas.
 */
import * as fs from 'node:fs';
import { RequestError } from './errors.js';

export interface BlockMetrics { read_bytes: number; write_bytes: number; read_ops: number; write_ops: number; flush_ops: number }
export interface NetMetrics { rx_bytes: number; tx_bytes: number; rx_packets: number; tx_packets: number }
export interface BalloonMetrics {
  target_pages: number; actual_pages: number;
  inflate_count: number; deflate_count: number; report_count: number;
  inflated_pages: number; deflated_pages: number;
  /** Bytes given back to the host (MADV_DONTNEED) by inflation and free page reporting. */
  released_bytes: number;
  bad_pfns: number; malformed_requests: number; stats_updates: number;
}

export interface VmMetrics {
  utc_timestamp_ms: number;
  state: string;
  /** Host time since InstanceStart, paused time included (0 before it). */
  uptime_ms: number;
  /** Host time spent paused. */
  paused_ms: number;
  vcpu: { hart: number; instructions_retired: number }[];
  /** The board's harts (max_vcpus), the allotment (vcpu_count) and the harts online in the guest (started through SBI HSM); 0s before InstanceStart. */
  vcpus: { max: number; allotted: number; online: number };
  /** Hart loads and stores that reached a device register. */
  mmio_exits: number;
  block: Record<string, BlockMetrics>;
  net: Record<string, NetMetrics>;
  /** Only with a balloon. */
  balloon?: BalloonMetrics;
}

/** Firecracker's metrics period. */
export const METRICS_PERIOD_MS = 60_000;

export class MetricsSinkError extends RequestError {
  override name = 'MetricsSinkError';
}

export class MetricsSink {
  private fd: number;
  private readonly timer: NodeJS.Timeout;

  /** Opens `path` for appending (creating it) and writes a line every period until closed. */
  constructor(readonly path: string, private readonly collect: () => VmMetrics, periodMs = METRICS_PERIOD_MS) {
    try {
      // O_NONBLOCK so that opening a named pipe with no reader yet does not block the VMM.
      this.fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK, 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw new MetricsSinkError(`metrics file "${path}" is a directory`);
      throw new MetricsSinkError(`metrics file "${path}" cannot be opened: ${(e as Error).message}`);
    }
    this.timer = setInterval(() => this.flush(), periodMs);
    this.timer.unref();
  }

  /** Appends the current counters as one line; a write error closes the sink (the VM goes on). */
  flush(): void {
    if (this.fd < 0) return;
    try {
      fs.writeSync(this.fd, JSON.stringify(this.collect()) + '\n');
    } catch {
      this.close();
    }
  }

  close(): void {
    clearInterval(this.timer);
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
