// User-mode network benchmark: Vessel's `--net user` and `--net passt` (Debian's passt) against
// QEMU's `-netdev user` (slirp) on the same kernel and initramfs, TCP throughput between the
// guest and a server on the host's loopback, reached from the guest as 10.0.2.2:
//   download  host -> guest: busybox `wget -O /dev/null` of --mib MiB from a node:http server
//   upload    guest -> host: `head -c ... /dev/zero | nc 10.0.2.2 PORT` into a node:net sink
// Each is timed with the guest's own clock and repeated --runs times in one boot per engine;
// the host side checks that every byte arrived. Before the transfers each guest also tries what
// else a user network is for: ICMP echo to the gateway, a UDP exchange with a host echo server,
// a DNS query to the network's resolver, and IPv6 (an address, then HTTP to the host over it).
//
//   npm run build && node dist/bench/net.js --runs 3      # the setting for recorded numbers
//   node dist/bench/net.js --help

import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
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
import { engineList, intArg } from './lib/options.js';
import { fmtRatio, ratio, summarize, table, type Summary } from './lib/stats.js';

const VESSEL_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const APPEND = 'console=ttyS0';
const MEMORY_MIB = 256;
const RECORDED_RUNS = 3;

type EngineName = 'qemu' | 'vessel' | 'passt';
const ENGINES: readonly EngineName[] = ['qemu', 'vessel', 'passt'];
const ENGINE_LABEL: Record<EngineName, string> = { qemu: 'QEMU TCG (slirp)', vessel: 'Vessel (--net user)', passt: 'Vessel (--net passt)' };

const USAGE = `Usage: node dist/bench/net.js [options]

Boots QEMU (TCG, -netdev user), Vessel --net user and Vessel --net passt once each, checks ICMP,
UDP, DNS and IPv6 in each guest, and measures TCP throughput between the guest and a server on
the host's loopback (10.0.2.2 in the guest), guest clock.

Options:
  --runs <r>          repetitions of each transfer per engine, in one boot (default 2; ${RECORDED_RUNS} for recorded numbers)
  --mib <m>           MiB per transfer (default 32)
  --engines <list>    qemu,vessel,passt (default all; the ratios need qemu)
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

/**
 * The host's servers, all on loopback: an HTTP source of zeros and a TCP sink that counts (both
 * on 127.0.0.1), a UDP echo server on 127.0.0.1, and an HTTP server on ::1 for the IPv6 check.
 */
class HostServers {
  private constructor(
    private readonly source: http.Server,
    private readonly sink: net.Server,
    private readonly echo: dgram.Socket,
    private readonly source6: http.Server | null,
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
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, from) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), from.port, from.address));
    await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
    // A host without IPv6 loopback still runs the benchmark; the IPv6 check then fails for all.
    const source6 = http.createServer((req, res) => res.end('BENCH_IPV6=reached\n'));
    const listening6 = await new Promise<boolean>((resolve) => {
      source6.once('error', () => resolve(false));
      source6.listen(0, '::1', () => resolve(true));
    });
    return new HostServers(source, sink, echo, listening6 ? source6 : null, uploads);
  }

  get sourcePort(): number { return (this.source.address() as net.AddressInfo).port; }
  get sinkPort(): number { return (this.sink.address() as net.AddressInfo).port; }
  get echoPort(): number { return this.echo.address().port; }
  get source6Port(): number { return this.source6 ? (this.source6.address() as net.AddressInfo).port : 0; }

  close(): void {
    this.source.close();
    this.sink.close();
    this.echo.close();
    this.source6?.close();
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
  if (engine !== 'qemu') {
    return Guest.spawn(ENGINE_LABEL[engine], process.execPath, [
      VESSEL_CLI, 'run', '--kernel', kernel, '--initrd', initrd, '--append', APPEND, '--memory', `${MEMORY_MIB}M`, '--net', engine === 'passt' ? 'passt' : 'user',
    ], verbose);
  }
  return Guest.spawn(ENGINE_LABEL.qemu, QEMU, [
    '-M', 'virt', '-m', String(MEMORY_MIB), '-smp', '1', '-nographic', '-kernel', kernel, '-initrd', initrd, '-append', APPEND,
    '-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0',
  ], verbose);
}

/** What works through an engine's network besides TCP to the host: each check's outcome in a word or two. */
interface Checks { icmp: string; udp: string; dns: string; ipv6: string }

/**
 * The checks in the guest, each bounded by its own timeout: ping the gateway, a datagram to the
 * host's echo server and its answer (if busybox's nc has -u), a DNS query for localhost at the
 * network's resolver (10.0.2.3, the host's resolver behind it: any answer, NXDOMAIN included,
 * is a UDP round trip), and IPv6: an address other than link-local from the network (SLAAC or
 * DHCPv6), then HTTP to the host's ::1 at the address each network maps to the host (slirp's
 * fec0::2; passt's: the host's own IPv6 default router).
 */
async function runChecks(shell: GuestShell, servers: HostServers): Promise<Checks> {
  const said = async (line: string, re: RegExp): Promise<RegExpExecArray | null> => re.exec(await shell.run(line));
  const icmp = await said('ping -c 2 -W 5 10.0.2.2 >/dev/null 2>&1; echo BENCH_ICMP=$?', /BENCH_ICMP=(\d+)/);
  const udpOut = await shell.run(`echo ping | nc -u -w 3 10.0.2.2 ${servers.echoPort} 2>&1 | head -c 64; echo; echo BENCH_UDP_DONE`);
  const udp = /echo:ping/.test(udpOut) ? 'yes (echo server)' : /invalid option|unrecognized option|Usage/i.test(udpOut) ? 'not tried (no nc -u)' : 'no';
  const dns = await said('nslookup localhost 10.0.2.3 2>&1 | tail -n 3; echo BENCH_DNS_DONE', /Address:?\s+(127\.0\.0\.1|::1)|NXDOMAIN|can't find/);
  // Router advertisements and DHCPv6 take a moment after the link came up (it has been up since the boot's setup).
  const address6 = await said('for i in $(seq 1 20); do a=$(ip -6 addr show dev eth0 scope global | grep -o "inet6 [0-9a-f:]*"); [ -n "$a" ] && break; sleep 1; done; echo "BENCH_ADDR6=$a."', /BENCH_ADDR6=inet6 ([0-9a-f:]+)\./);
  let ipv6 = 'no address';
  if (address6 && !servers.source6Port) ipv6 = `address ${address6[1]}; the host has no ::1`;
  else if (address6) {
    ipv6 = `address ${address6[1]}, host not reached`;
    for (const host of hostAddresses6()) {
      const reached = await said(`wget -q -T 10 -O - "http://[${host}]:${servers.source6Port}/" 2>&1 | head -c 80; echo`, /BENCH_IPV6=reached/);
      if (reached) {
        ipv6 = `yes (${address6[1]}, host at ${host})`;
        break;
      }
    }
  }
  return {
    icmp: icmp?.[1] === '0' ? 'yes (gateway)' : 'no',
    udp,
    dns: dns ? 'yes (answered)' : 'no',
    ipv6,
  };
}

/** Where a guest may find the host over IPv6: slirp's fec0::2, and the host's own default router, which passt maps to the host. */
function hostAddresses6(): string[] {
  const route = spawnSync('ip', ['-6', 'route', 'show', 'default'], { encoding: 'utf8' }).stdout ?? '';
  const router = /via ([0-9a-f:]+)/.exec(route)?.[1];
  return ['fec0::2', ...(router && !router.startsWith('fe80:') ? [router] : [])];
}

/** Seconds per run of each workload, the checks, and why a workload failed (its later runs are skipped). */
type EngineResult = Record<Workload['id'], number[]> & { checks: Checks; failed: Partial<Record<Workload['id'], string>> };

async function benchEngine(engine: EngineName, o: Options, kernel: string, initrd: string, servers: HostServers): Promise<EngineResult> {
  const label = ENGINE_LABEL[engine];
  const bytes = o.mib << 20;
  return withGuest(startGuest(engine, kernel, initrd, o.verbose), async (guest) => {
    const { shell, bootS } = await GuestShell.boot(guest, BOOT_MARKER, o.timeoutS);
    progress(`${label}: booted in ${bootS.toFixed(1)} s`);
    // The same static configuration in both engines (DHCP is not what is measured).
    const up = await shell.run('ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo BENCH_NET=$((1))up');
    if (!/BENCH_NET=1up/.test(up)) throw new GuestError(`${label}: eth0 could not be configured`);
    const checks = await runChecks(shell, servers);
    progress(`${label}: ICMP ${checks.icmp}, UDP ${checks.udp}, DNS ${checks.dns}, IPv6 ${checks.ipv6}`);

    const result: EngineResult = { download: [], upload: [], checks, failed: {} };
    for (let r = 1; r <= o.runs; r++) {
      for (const w of workloadList(o)) {
        if (result.failed[w.id]) continue;
        const uploadsBefore = servers.uploads.length;
        const m = await shell.result(w.command(servers), new RegExp(`BENCH_${w.id}_NS=(\\d+) rc=(\\d+)\\s*\\n`), `result of ${w.id}`);
        const got = servers.uploads[uploadsBefore];
        // A failed transfer is a result too (the table says so); the other workloads go on.
        const failure = m[2] !== '0' ? `failed in the guest (exit ${m[2]})`
          : w.id === 'upload' && got !== bytes ? `the host received ${got ?? 'no'} bytes of ${bytes}` : null;
        if (failure) {
          result.failed[w.id] = `run ${r}: ${failure}`;
          progress(`${label} run ${r}: ${w.id} ${failure}`);
          continue;
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
    const compared = o.engines.includes('qemu') ? o.engines.filter((e) => e !== 'qemu') : [];
    const summary = workloadList(o).map((w) => {
      const per: Partial<Record<EngineName, Summary | null>> = {};
      for (const e of o!.engines) per[e] = summarize(results[e]![w.id].map((s) => bytes / s / 1e6));
      // Engine/QEMU above 1 means the engine is faster.
      const toQemu: Partial<Record<EngineName, ReturnType<typeof ratio>>> = {};
      for (const e of compared) toQemu[e] = ratio(per[e], per.qemu);
      return { id: w.id, label: w.label, rate: per, toQemu };
    });
    const env = {
      date: new Date().toISOString(),
      host: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
      qemu: qemuVersion,
      vessel: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: path.dirname(VESSEL_CLI) }).stdout.trim() || 'unknown',
    };
    if (o.json) {
      process.stdout.write(JSON.stringify({ command: ['node', 'dist/bench/net.js', ...process.argv.slice(2)].join(' '), environment: env, settings: o, workloads: summary, results }, null, 2) + '\n');
      return 0;
    }
    const rows: string[][] = [['transfer', ...o.engines.map((e) => `${ENGINE_LABEL[e]} MB/s min / median`), ...compared.map((e) => `${ENGINE_LABEL[e]} / QEMU (median)`)]];
    for (const s of summary) {
      rows.push([s.label, ...o.engines.map((e) => {
        const r = s.rate[e];
        const failed = results[e]!.failed[s.id];
        return (r ? `${r.min.toFixed(2)} / ${r.median.toFixed(2)}` : '-') + (failed ? ` (${failed})` : '');
      }),
        ...compared.map((e) => { const r = s.toQemu[e]; return r ? fmtRatio(r.median) : '-'; })]);
    }
    const checkRows: string[][] = [['engine', 'ICMP echo', 'UDP to the host', 'DNS (10.0.2.3)', 'IPv6']];
    for (const e of o.engines) {
      const c = results[e]!.checks;
      checkRows.push([ENGINE_LABEL[e], c.icmp, c.udp, c.dns, c.ipv6]);
    }
    process.stdout.write([
      `Vessel user-mode network benchmark, ${env.date}`,
      `host: ${env.host}; ${env.qemu ?? 'QEMU not used'}; Vessel ${env.vessel}`,
      `guest: ${image.kernel} + initramfs, 1 cpu, ${MEMORY_MIB} MiB, virtio-net; ${o.runs} run(s) per transfer` +
        (o.runs < RECORDED_RUNS ? ` (fewer than the ${RECORDED_RUNS} documented for recorded numbers)` : ''),
      '',
      'TCP throughput, guest clock (higher is better; min is the slowest run)',
      table(rows, rows[0].map((_, i) => i > 0)),
      '',
      'What else works through each network',
      table(checkRows, checkRows[0].map(() => false)),
    ].join('\n') + '\n');
    return 0;
  } finally {
    servers.close();
  }
}

runBench(main);
