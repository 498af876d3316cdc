// User-mode network benchmark: Vessel's `--net user` against QEMU's `-netdev user` (slirp) on
// the same kernel and initramfs, TCP throughput between the guest and a server on the host's
// loopback, reached from the guest as 10.0.2.2:
//   download  host -> guest: busybox `wget -O /dev/null` of --mib MiB from a node:http server
//   upload    guest -> host: `head -c ... /dev/zero | nc 10.0.2.2 PORT` into a node:net sink
// Each is timed with the guest's own clock and repeated --runs times in one boot per engine;
// the host side checks that every byte arrived.
//
//   npm run build && node dist/bench/net.js --runs 3      # the setting for recorded numbers
//   node dist/bench/net.js --help

import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { Guest, GuestError, GuestShell, withGuest } from './lib/guest.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { readOptions, runBench } from './lib/main.js';
import { engineList, ENGINES, intArg, type EngineName } from './lib/options.js';
import { fmtRatio, ratio, summarize, table, type Summary } from './lib/stats.js';

const VESSEL_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const APPEND = 'console=ttyS0';
const MEMORY_MIB = 256;
const RECORDED_RUNS = 3;

const ENGINE_LABEL: Record<EngineName, string> = { qemu: 'QEMU TCG (slirp)', vessel: 'Vessel (--net user)' };

const USAGE = `Usage: node dist/bench/net.js [options]

Boots Vessel (--net user) and QEMU (TCG, -netdev user) once each and measures TCP throughput
between the guest and a server on the host's loopback (10.0.2.2 in the guest), guest clock.

Options:
  --runs <r>          repetitions of each transfer per engine, in one boot (default 2; ${RECORDED_RUNS} for recorded numbers)
  --mib <m>           MiB per transfer (default 32)
  --engines <list>    qemu,vessel (default both; the ratio needs both)
  --timeout <s>       give up on a boot or one transfer after this many seconds (default 900)
  --json              print one JSON document instead of the table
  --verbose           copy the guests' console output to stderr
  -h, --help          this text
`;

interface Options {
  runs: number;
  mib: number;
  engines: EngineName[];
  timeoutS: number;
  json: boolean;
  verbose: boolean;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      runs: { type: 'string' },
      mib: { type: 'string' },
      engines: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  return {
    runs: intArg('runs', values.runs, 2, 1, 100),
    mib: intArg('mib', values.mib, 32, 1, 4096),
    engines: engineList(values.engines, ENGINES),
    timeoutS: intArg('timeout', values.timeout, 900, 1, 1e6),
    json: values.json ?? false,
    verbose: values.verbose ?? false,
  };
}

function progress(msg: string): void {
  process.stderr.write(`[bench net] ${msg}\n`);
}

/** The host's two servers on 127.0.0.1: an HTTP source of zeros and a TCP sink that counts. */
class HostServers {
  private constructor(
    private readonly source: http.Server,
    private readonly sink: net.Server,
    /** Byte counts of finished uploads, in order. */
    readonly uploads: number[],
  ) {}

  static async start(bytes: number): Promise<HostServers> {
    const chunk = Buffer.alloc(64 * 1024);
    const source = http.createServer((req, res) => {
      res.writeHead(200, { 'content-length': bytes });
      let left = bytes;
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const uploads: number[] = [];
    const sink = net.createServer({ allowHalfOpen: true }, (socket) => {
      let n = 0;
      socket.on('data', (d: Buffer) => { n += d.length; });
      socket.on('end', () => { uploads.push(n); socket.end(); });
      socket.on('error', () => { /* reported as a missing or short upload */ });
    });
    await Promise.all([source, sink].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
    return new HostServers(source, sink, uploads);
  }

  get sourcePort(): number { return (this.source.address() as net.AddressInfo).port; }
  get sinkPort(): number { return (this.sink.address() as net.AddressInfo).port; }

  close(): void {
    this.source.close();
    this.sink.close();
  }
}

interface Workload {
  id: 'download' | 'upload';
  label: string;
  command: (servers: HostServers) => string;
}

function workloadList(o: Options): Workload[] {
  const bytes = o.mib << 20;
  return [
    {
      id: 'download', label: `download host -> guest, ${o.mib} MiB (wget -O /dev/null)`,
      command: (s) => `t; s=$T; wget -q -O /dev/null http://10.0.2.2:${s.sourcePort}/; r=$?; t; echo BENCH_download_NS=$((T-s)) rc=$r`,
    },
    {
      id: 'upload', label: `upload guest -> host, ${o.mib} MiB (nc)`,
      command: (s) => `t; s=$T; head -c ${bytes} /dev/zero | nc 10.0.2.2 ${s.sinkPort}; r=$?; t; echo BENCH_upload_NS=$((T-s)) rc=$r`,
    },
  ];
}

function startGuest(engine: EngineName, kernel: string, initrd: string, verbose: boolean): Guest {
  if (engine === 'vessel') {
    return Guest.spawn(ENGINE_LABEL.vessel, process.execPath, [
      VESSEL_CLI, 'run', '--kernel', kernel, '--initrd', initrd, '--append', APPEND, '--memory', `${MEMORY_MIB}M`, '--net', 'user',
    ], verbose);
  }
  return Guest.spawn(ENGINE_LABEL.qemu, QEMU, [
    '-M', 'virt', '-m', String(MEMORY_MIB), '-smp', '1', '-nographic', '-kernel', kernel, '-initrd', initrd, '-append', APPEND,
    '-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0',
  ], verbose);
}

/** Seconds per run of each workload. */
type EngineResult = Record<Workload['id'], number[]>;

async function benchEngine(engine: EngineName, o: Options, kernel: string, initrd: string, servers: HostServers): Promise<EngineResult> {
  const label = ENGINE_LABEL[engine];
  const bytes = o.mib << 20;
  return withGuest(startGuest(engine, kernel, initrd, o.verbose), async (guest) => {
    const { shell, bootS } = await GuestShell.boot(guest, BOOT_MARKER, o.timeoutS);
    progress(`${label}: booted in ${bootS.toFixed(1)} s`);
    // The same static configuration in both engines (DHCP is not what is measured).
    const up = await shell.run('ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo BENCH_NET=$((1))up');
    if (!/BENCH_NET=1up/.test(up)) throw new GuestError(`${label}: eth0 could not be configured`);

    const result: EngineResult = { download: [], upload: [] };
    for (let r = 1; r <= o.runs; r++) {
      for (const w of workloadList(o)) {
        const uploadsBefore = servers.uploads.length;
        const m = await shell.result(w.command(servers), new RegExp(`BENCH_${w.id}_NS=(\\d+) rc=(\\d+)\\s*\\n`), `result of ${w.id}`);
        if (m[2] !== '0') throw new GuestError(`${label}: ${w.id} failed in the guest (exit ${m[2]})`);
        if (w.id === 'upload') {
          const got = servers.uploads[uploadsBefore];
          if (got !== bytes) throw new GuestError(`${label}: the host received ${got ?? 'no'} bytes of a ${bytes}-byte upload`);
        }
        const seconds = Number(m[1]) / 1e9;
        result[w.id].push(seconds);
        progress(`${label} run ${r}: ${w.id} ${seconds.toFixed(2)} s = ${(bytes / seconds / 1e6).toFixed(2)} MB/s`);
      }
    }
    await shell.powerOff();
    return result;
  });
}

async function main(): Promise<number> {
  const o = readOptions(parseOptions, USAGE);
  if (typeof o === 'number') return o;
  const qemuVersion = o.engines.includes('qemu') ? ensureQemu() : null;
  const image = await ensureDefaultImage({ quiet: true });
  const servers = await HostServers.start(o.mib << 20);
  try {
    progress(`${o.mib} MiB per transfer, ${o.runs} run(s) each per engine, engines ${o.engines.join(', ')}`);
    const results: Partial<Record<EngineName, EngineResult>> = {};
    for (const engine of o.engines) results[engine] = await benchEngine(engine, o, image.kernel, image.initrd, servers);

    const bytes = o.mib << 20;
    const summary = workloadList(o).map((w) => {
      const per: Partial<Record<EngineName, Summary | null>> = {};
      for (const e of o!.engines) per[e] = summarize(results[e]![w.id].map((s) => bytes / s / 1e6));
      // Vessel/QEMU above 1 means Vessel is faster.
      return { id: w.id, label: w.label, rate: per, ratioVesselToQemu: ratio(per.vessel, per.qemu) };
    });
    const env = {
      date: new Date().toISOString(),
      host: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
      qemu: qemuVersion,
      vessel: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: path.dirname(VESSEL_CLI) }).stdout.trim() || 'unknown',
    };
    if (o.json) {
      process.stdout.write(JSON.stringify({ command: ['node', 'dist/bench/net.js', ...process.argv.slice(2)].join(' '), environment: env, settings: o, workloads: summary, seconds: results }, null, 2) + '\n');
      return 0;
    }
    const rows: string[][] = [['transfer', ...o.engines.map((e) => `${ENGINE_LABEL[e]} MB/s min / median`), ...(o.engines.length === 2 ? ['Vessel/QEMU (median)'] : [])]];
    for (const s of summary) {
      rows.push([s.label, ...o.engines.map((e) => { const r = s.rate[e]; return r ? `${r.min.toFixed(2)} / ${r.median.toFixed(2)}` : '-'; }),
        ...(o.engines.length === 2 ? [s.ratioVesselToQemu ? fmtRatio(s.ratioVesselToQemu.median) : '-'] : [])]);
    }
    process.stdout.write([
      `Vessel user-mode network benchmark, ${env.date}`,
      `host: ${env.host}; ${env.qemu ?? 'QEMU not used'}; Vessel ${env.vessel}`,
      `guest: ${image.kernel} + initramfs, 1 cpu, ${MEMORY_MIB} MiB, virtio-net; ${o.runs} run(s) per transfer` +
        (o.runs < RECORDED_RUNS ? ` (fewer than the ${RECORDED_RUNS} documented for recorded numbers)` : ''),
      '',
      'TCP throughput, guest clock (higher is better; min is the slowest run)',
      table(rows, rows[0].map((_, i) => i > 0)),
    ].join('\n') + '\n');
    return 0;
  } finally {
    servers.close();
  }
}

runBench(main);
