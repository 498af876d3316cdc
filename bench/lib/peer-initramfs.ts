// The initramfs every engine of bench/peers.ts boots: the same /init, inittab, profile and the
// benchmark program, for either ISA.
//
// riscv64: the default image's initramfs with this archive appended (Linux unpacks concatenated
// gzip'd cpio archives in order, and a later file replaces an earlier one), so its busybox is
// reused and its /init replaced by one that loads no modules (but virtio_mmio for hvc0). i386:
// this archive alone, with busybox in it. Either way the guest prints PEER_MARKER as soon as
// /proc, /sys and /dev are mounted and then runs busybox init, which gives a root shell on the
// console (ttyS0; hvc0 for TinyEMU) with the prompt `~ # `.
import { cpioNewc, busyboxApplets } from '../../images/build-image.js';

export const PEER_MARKER = 'VESSEL-PEERS-INIT-OK';

/** Where the program lands in the guest. */
export const PEER_PROGRAM = '/bin/coremark-like';

type CpioEntries = Parameters<typeof cpioNewc>[0];

/**
 * The console the shell runs on. ttyS0: the first 16550A (QEMU virt and Vessel's board, the PC's
 * COM1 in v86). hvc0: a virtio console (TinyEMU has no UART), which needs the virtio_mmio module
 * of the default riscv64 initramfs loaded first (Debian builds it as a module).
 */
export type PeerConsole = 'ttyS0' | 'hvc0';

const VIRTIO_CONSOLE_SETUP = `# No UART: load virtio_mmio so the virtio console appears, and make it /init's output.
for m in /lib/modules/*/virtio_mmio.ko*; do insmod "$m"; done
i=0
while [ ! -c /dev/hvc0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
exec </dev/hvc0 >/dev/hvc0 2>&1
`;

function initScript(console: PeerConsole): string {
  return `#!/bin/sh
# bench/peers.ts guest /init (bench/lib/peer-initramfs.ts): the same on every engine.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
${console === 'hvc0' ? VIRTIO_CONSOLE_SETUP : ''}echo ${PEER_MARKER}
exec /bin/busybox init
`;
}
// ash prints `~` for the cwd when it is the home directory of the user in /etc/passwd.
const PROFILE = "export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport HOME=/root\nexport PS1='\\w \\$ '\ncd \"$HOME\"\n";
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\n';

/**
 * The cpio archive (uncompressed) with the init files and `program`; with `busybox`, also busybox,
 * a symlink per applet it lists and the directories and device nodes a standalone root needs.
 */
export function peerInitramfs(program: Buffer, console: PeerConsole, busybox?: Buffer): Buffer {
  const entries: CpioEntries = [];
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root']) {
    entries.push({ kind: 'dir', path: d, mode: d === 'tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755 });
  }
  if (busybox) {
    const applets = busyboxApplets(busybox);
    if (applets.length === 0) throw new Error('the i386 busybox lists no applets (not a busybox binary?)');
    entries.push({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1 });
    entries.push({ kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
    entries.push({ kind: 'symlink', path: 'sbin', target: 'bin' });
    entries.push({ kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 });
    for (const a of applets) {
      if (a !== 'busybox' && !a.includes('/')) entries.push({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' });
    }
  }
  entries.push({ kind: 'file', path: 'init', data: Buffer.from(initScript(console)), mode: 0o755 });
  entries.push({ kind: 'file', path: 'etc/inittab', data: Buffer.from(`${console}::respawn:-/bin/sh\n`) });
  entries.push({ kind: 'file', path: 'etc/profile', data: Buffer.from(PROFILE) });
  entries.push({ kind: 'file', path: 'etc/passwd', data: Buffer.from(PASSWD) });
  entries.push({ kind: 'file', path: PEER_PROGRAM.slice(1), data: program, mode: 0o755 });
  return cpioNewc(entries);
}
