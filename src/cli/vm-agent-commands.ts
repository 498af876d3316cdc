/**
 * The `vessel vm` verbs that go through a VM's QEMU guest agent besides exec and shutdown, in
 * the habit of virsh: `file-read` and `file-write` (guest-file-*), `fsfreeze` (domfsfreeze,
 * domfsthaw), `ifaddr` (domifaddr --source agent) and `fsinfo` (domfsinfo).
 */
import { Argument, InvalidArgumentError, type Command } from 'commander';
import { call, HostCommandError, table, type Global } from './vm-commands.js';

/** What one POST /vms/{vm}/files/write takes (the host's MAX_WRITE_BYTES): bigger input goes in several, appended. */
const WRITE_REQUEST_BYTES = 8 * 1024 * 1024;
/** The most `file-write` reads from its standard input. */
const MAX_INPUT_BYTES = 1024 * 1024 * 1024;

const vmPath = (name: string, rest: string): string => `/vms/${encodeURIComponent(name)}${rest}`;

function guestPath(v: string): string {
  if (!v.startsWith('/')) throw new InvalidArgumentError(`"${v}" is not an absolute path in the guest`);
  return v;
}

async function readStdin(): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_INPUT_BYTES) throw new HostCommandError(`vessel vm file-write: the input is more than ${MAX_INPUT_BYTES / 1024 ** 3} GiB`, 2);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

const size = (b: number | null): string => (b === null ? '-' : b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(1)}G` : `${(b / 1024 ** 2).toFixed(1)}M`);

export function registerVmAgentCommands(vm: Command, g: () => Global): void {
  vm.command('file-read').description('print a file of the guest (through its guest agent) on standard output')
    .argument('<vm>', 'name or id').argument('<path>', 'an absolute path in the guest', guestPath)
    .option('--max-bytes <n>', 'print at most this many bytes (default and most 16 MiB; a longer file is an error without it)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 16 * 1024 * 1024) throw new InvalidArgumentError('--max-bytes must be an integer from 1 to 16777216');
      return n;
    })
    .action(async (name: string, file: string, o: { maxBytes?: number }) => {
      const r = await call<{ truncated: boolean; content_base64: string; size_bytes: number }>(g(), 'POST', vmPath(name, '/files/read'), { path: file, ...(o.maxBytes !== undefined ? { max_bytes: o.maxBytes } : {}) });
      process.stdout.write(Buffer.from(r.content_base64, 'base64'));
      if (r.truncated && o.maxBytes === undefined) throw new HostCommandError(`${file} in VM "${name}" is longer than 16 MiB: only its first ${r.size_bytes} bytes were printed (--max-bytes takes fewer without this error)`, 1);
    });

  vm.command('file-write').description('write standard input to a file of the guest (through its guest agent): created or truncated, or appended to')
    .argument('<vm>', 'name or id').argument('<path>', 'an absolute path in the guest', guestPath)
    .option('--append', 'append to the file')
    .action(async (name: string, file: string, o: { append?: boolean }) => {
      const data = await readStdin();
      let written = 0;
      // One request per 8 MiB; the second and later append to what the first wrote.
      do {
        const part = data.subarray(written, written + WRITE_REQUEST_BYTES);
        await call(g(), 'POST', vmPath(name, '/files/write'), { path: file, content_base64: part.toString('base64'), append: (o.append ?? false) || written > 0 });
        written += part.length;
      } while (written < data.length);
      process.stderr.write(`${name}: ${written} bytes ${o.append ? 'appended to' : 'written to'} ${file}\n`);
    });

  vm.command('fsfreeze').description('freeze the guest\'s file systems (writes wait; for a consistent copy of its disks), thaw them, or show which they are')
    .argument('<vm>', 'name or id').addArgument(new Argument('<action>', 'freeze, thaw or status').choices(['freeze', 'thaw', 'status']))
    .option('--json', 'as JSON')
    .action(async (name: string, action: string, o: { json?: boolean }) => {
      const r = await call<{ status: string; filesystems: number | null; message: string }>(g(), 'POST', vmPath(name, '/fsfreeze'), { action });
      process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : `${name}: ${r.message}\n`);
    });

  vm.command('ifaddr').description('the guest\'s network interfaces and addresses, from its guest agent')
    .argument('<vm>', 'name or id').option('--json', 'as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const r = await call<{ name: string; hardware_address: string | null; ip_addresses: { type: string; address: string; prefix: number }[] }[]>(g(), 'GET', vmPath(name, '/guest/interfaces'));
      if (o.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
      process.stdout.write(table(['NAME', 'MAC ADDRESS', 'PROTOCOL', 'ADDRESS'], r.flatMap((i) => (i.ip_addresses.length ? i.ip_addresses : [null]).map((a) => [
        i.name, i.hardware_address ?? '-', a?.type ?? '-', a ? `${a.address}/${a.prefix}` : '-',
      ]))));
    });

  vm.command('fsinfo').description('the guest\'s mounted file systems, from its guest agent')
    .argument('<vm>', 'name or id').option('--json', 'as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const r = await call<{ mount_point: string; device: string; type: string; total_bytes: number | null; used_bytes: number | null; disks: string[] }[]>(g(), 'GET', vmPath(name, '/guest/filesystems'));
      if (o.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
      process.stdout.write(table(['MOUNTPOINT', 'NAME', 'TYPE', 'TARGET', 'SIZE', 'USED'], r.map((f) => [f.mount_point, f.device, f.type, f.disks.join(',') || '-', size(f.total_bytes), size(f.used_bytes)])));
    });
}
