// The default root disk (rootfs.ext4): its contents read on the host with debugfs, then one boot
// of a copy through the CLI (`vessel run --disk copy`, so the default root=/dev/vda rw is added)
// that reaches the disk's own init and shell, writes a file the host reads back, and finds a
// second, readonly disk mounted read-only. The cached image itself is never booted here: other
// test files read it at the same time.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { BOOT_MARKER, ensureDefaultImage, GUEST_MODULES, ROOTFS_MARKER } from '../images/build-image.js';
import { ROOTFS_SIZE_MIB } from '../images/rootfs.js';
import { chooseBoot, explainDefaultRootDisk, withRootDisk } from '../src/vmm/default-boot.js';
import { lockDisk, releaseDisks } from '../src/vmm/disks.js';
import { BOOT_MS, COMMAND_MS, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const running: VesselProcess[] = [];
after(() => { for (const vm of running) vm.kill(); });

function tool(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 16 * 1024 * 1024 });
  if (r.error) assert.fail(`${cmd} could not be run (${r.error.message}): run \`bash test/setup.sh\` (installs e2fsprogs)`);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Runs debugfs commands on an image; returns each command's output by command. */
function debugfs(image: string, commands: string[]): Map<string, string> {
  const out = tool('debugfs', ['-f', '-', image], commands.join('\n') + '\n');
  const result = new Map<string, string>();
  for (const section of out.split(/^debugfs: /m).slice(1)) {
    const nl = section.indexOf('\n');
    result.set(section.slice(0, nl), section.slice(nl + 1));
  }
  return result;
}

test('rootfs.ext4 is an ext4 file system with busybox, an autologin getty in inittab, the modules, all owned by root', async () => {
  const img = await ensureDefaultImage({ quiet: true });
  assert.equal(path.dirname(img.rootfs), path.dirname(img.kernel), 'rootfs.ext4 sits next to the kernel');
  const st = fs.statSync(img.rootfs);
  assert.equal(st.size, ROOTFS_SIZE_MIB * 2 ** 20, `rootfs.ext4 is ${ROOTFS_SIZE_MIB} MiB`);
  assert.ok(st.blocks * 512 < st.size / 4, `rootfs.ext4 is sparse (${st.blocks * 512} bytes allocated)`);

  const sb = tool('dumpe2fs', ['-h', img.rootfs]);
  assert.match(sb, /^Filesystem features:.*\bextent\b/m, 'ext4 features');
  assert.match(sb, /^Filesystem features:.*\bhas_journal\b/m, 'a journal');
  assert.match(sb, /^Filesystem volume name:\s+vessel-root$/m, 'label vessel-root');

  const paths = ['/sbin/init', '/usr/bin/busybox', '/etc/inittab', '/etc/init.d/rcS', '/etc/shadow', '/root', '/tmp', '/usr/share/udhcpc/default.script',
    '/usr/sbin/dropbear', '/lib/ld-linux-riscv64-lp64d.so.1'];
  const release = img.version;
  const cmds = [
    ...paths.map((p) => `stat ${p}`),
    'cat /etc/inittab', 'cat /sbin/autologin', 'cat /etc/shadow', 'cat /etc/hostname', 'cat /etc/profile',
    `ls /lib/modules/${release}`, `cat /lib/modules/${release}/modules.dep`,
    'stat /bin', 'ls -l /usr/bin',
  ];
  const r = debugfs(img.rootfs, cmds);
  for (const p of paths) {
    const stat = r.get(`stat ${p}`) ?? '';
    assert.match(stat, /^User:\s+0\s+Group:\s+0\b/m, `${p} is owned by root:root: ${stat.slice(0, 200)}`);
  }
  assert.match(r.get('stat /sbin/init')!, /Type: symlink[\s\S]*Fast link dest: "busybox"/, '/sbin/init is busybox');
  assert.match(r.get('stat /usr/bin/busybox')!, /Type: regular\s+Mode:\s+0755/, 'busybox is executable');
  assert.match(r.get('stat /etc/shadow')!, /Mode:\s+0600/, '/etc/shadow is 0600');
  assert.match(r.get('stat /tmp')!, /Mode:\s+01777/, '/tmp is 1777');
  assert.match(r.get('stat /root')!, /Mode:\s+0700/, '/root is 0700');

  assert.match(r.get('cat /etc/inittab')!, /^ttyS0::respawn:\/sbin\/getty -n -l \/sbin\/autologin .*ttyS0/m, 'a getty with autologin on ttyS0');
  assert.match(r.get('cat /etc/inittab')!, /^::sysinit:\/etc\/init\.d\/rcS$/m, 'rcS at sysinit');
  assert.match(r.get('cat /sbin/autologin')!, /^exec \/bin\/login -f root$/m);
  assert.match(r.get('cat /etc/shadow')!, /^root::/m, 'root has no password');
  assert.equal(r.get('cat /etc/hostname'), 'vessel\n');
  assert.match(r.get('cat /etc/profile')!, /^export PS1=/m);

  const modules = r.get(`ls /lib/modules/${release}`)!;
  for (const m of GUEST_MODULES) assert.match(modules, new RegExp(`\\b${m}\\.ko\\b`), `module ${m}.ko is on the disk`);
  assert.match(r.get(`cat /lib/modules/${release}/modules.dep`)!, /^ext4\.ko:.*\bjbd2\.ko\b.*$/m, 'modules.dep lists ext4\'s dependencies');
  // Applet links: /bin is /usr/bin, where every applet links to busybox.
  assert.match(r.get('stat /bin')!, /Fast link dest: "usr\/bin"/, '/bin is a symlink to usr/bin');
  for (const applet of ['sh', 'getty', 'login', 'udhcpc', 'ip', 'ping', 'wget', 'vi', 'switch_root']) {
    assert.match(r.get('ls -l /usr/bin')!, new RegExp(`^\\s*\\d+\\s+120777 .* ${applet}$`, 'm'), `applet ${applet} is a symlink in /usr/bin`);
  }
});

test('vessel run picks the default root disk only when no kernel, initrd or disk is given', async () => {
  const image = async () => ({ kernel: '/img/Image', initrd: '/img/initramfs.cpio.gz', rootfs: '/img/rootfs.ext4' });
  const base = 'console=ttyS0 earlycon=sbi';
  assert.deepEqual(await chooseBoot({ disks: [], append: base }, image), {
    kernel: '/img/Image', initrd: '/img/initramfs.cpio.gz', disks: [{ path: '/img/rootfs.ext4', readonly: false }], append: `${base} root=/dev/vda rw`,
    defaultRootDisk: '/img/rootfs.ext4',
  });
  assert.deepEqual(await chooseBoot({ disks: [{ path: 'a.img', readonly: true }, { path: 'b.img', readonly: false }], append: base }, image), {
    kernel: '/img/Image', initrd: '/img/initramfs.cpio.gz', disks: [{ path: 'a.img', readonly: true }, { path: 'b.img', readonly: false }], append: `${base} root=/dev/vda ro`,
  });
  assert.deepEqual(await chooseBoot({ initrd: 'my.cpio', disks: [], append: base }, image), {
    kernel: '/img/Image', initrd: 'my.cpio', disks: [], append: base,
  });
  let asked = false;
  assert.deepEqual(await chooseBoot({ kernel: 'K', disks: [], append: base }, async () => { asked = true; return image(); }), {
    kernel: 'K', initrd: undefined, disks: [], append: base,
  });
  assert.equal(asked, false, 'with --kernel the default image is not even looked up');
  assert.equal(withRootDisk('console=ttyS0 root=/dev/vdb', { path: 'x', readonly: false }), 'console=ttyS0 root=/dev/vdb', 'a root= of the user wins');
  assert.equal(withRootDisk('console=ttyS0 ro', { path: 'x', readonly: false }), 'console=ttyS0 ro root=/dev/vda', 'so does a ro/rw of the user');
  assert.equal(withRootDisk('console=ttyS0 rootdelay=3', { path: 'x', readonly: false }), 'console=ttyS0 rootdelay=3 root=/dev/vda rw', 'rootdelay= is not root=');
});

test('the default root disk in use by another process: what to boot instead; a lock dies with its holder', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-lock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const disk = path.join(dir, 'rootfs.ext4');
  fs.writeFileSync(disk, Buffer.alloc(4096));
  // A python process holds a POSIX write lock on it (fcntl.lockf), then exits: the lock goes with it.
  const holder = spawnSync('python3', ['-c', `import fcntl, time; f = open(${JSON.stringify(disk)}, "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(0.1)`], { encoding: 'utf8' });
  assert.equal(holder.status, 0, holder.stderr);
  const free = await lockDisk({ path: disk, readonly: false });
  releaseDisks([free]);
  const { spawn } = await import('node:child_process');
  const py = spawn('python3', ['-c', `import fcntl, sys; f = open(${JSON.stringify(disk)}, "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => py.kill());
  await new Promise<void>((resolve) => py.stdout.once('data', () => resolve()));
  const refused = await lockDisk({ path: disk, readonly: false }).then(() => null, (e: unknown) => e);
  const explained = explainDefaultRootDisk(refused, disk) as Error;
  assert.match(explained.message, new RegExp(`^the default root disk "${disk}" is in use by another process \\(a running VM or QEMU\\): it is locked read-write by pid ${py.pid}; boot a copy with --disk <copy>, or the initramfs alone with --kernel/--initrd$`));
  py.stdin.end();
});

test('booting a copy of the root disk: its init and shell come up, / is /dev/vda ext4 rw, a synced file reaches the image; a readonly disk mounts read-only', { timeout: TEST_MS }, async (t) => {
  const img = await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-rootfs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const disk = path.join(dir, 'rootfs.ext4');
  tool('cp', ['--sparse=always', img.rootfs, disk]);
  const roContent = path.join(dir, 'ro-content');
  fs.mkdirSync(roContent);
  fs.writeFileSync(path.join(roContent, 'ro.txt'), 'read-only-content\n');
  const roDisk = path.join(dir, 'ro.ext4');
  tool('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', roContent, roDisk, '8M']);
  const token = `rootfs-${process.pid}-${Date.now()}`;

  const vm = VesselProcess.cli(['run', '--disk', disk, '--disk', `${roDisk},readonly`]);
  running.push(vm);
  const shell = new ShellSession(vm, ROOTFS_MARKER);
  await shell.waitForShell(BOOT_MS);
  const initramfsMarker = vm.stdout.indexOf(BOOT_MARKER);
  assert.ok(initramfsMarker >= 0 && initramfsMarker < vm.stdout.indexOf(ROOTFS_MARKER), `the initramfs marker comes first\n${vm.describe()}`);
  assert.doesNotMatch(vm.stdout, /vessel-init: (cannot|root)/, 'the initramfs reported no problem with the root disk');

  const cmdline = await shell.run('cat /proc/cmdline', COMMAND_MS);
  assert.match(cmdline, /\broot=\/dev\/vda rw\b/, `vessel added root=/dev/vda rw: ${cmdline}`);
  const mounts = await shell.run('cat /proc/mounts', COMMAND_MS);
  assert.match(mounts, /^\/dev\/vda \/ ext4 rw[, ]/m, `/ is /dev/vda, ext4, read-write: ${mounts}`);
  for (const m of ['/proc proc', '/sys sysfs', '/dev devtmpfs', '/dev/pts devpts', '/run tmpfs', '/tmp tmpfs']) {
    assert.match(mounts, new RegExp(`^\\S+ ${m} `, 'm'), `rcS mounted ${m}: ${mounts}`);
  }
  const who = await shell.run('id; hostname; pidof dropbear >/dev/null && echo dropbear-running', COMMAND_MS);
  assert.match(who, /^uid=0\(root\) gid=0\(root\)/m, `autologin as root: ${who}`);
  assert.match(who, /^vessel$/m, `hostname: ${who}`);
  assert.match(who, /^dropbear-running$/m, `the SSH server (dynamically linked against the disk's libc) runs: ${who}`);
  // modprobe finds modules.dep on the disk: unload an idle module and load it again.
  const modprobe = await shell.run('modprobe -r virtio_balloon && modprobe virtio_balloon && grep -c "^virtio_balloon " /proc/modules', COMMAND_MS);
  assert.match(modprobe, /^1$/m, `modprobe -r / modprobe virtio_balloon: ${modprobe}`);

  const write = await shell.run(`echo ${token} > /root/token.txt && sync && echo sync-rc=$?`, COMMAND_MS);
  assert.match(write, /^sync-rc=0$/m, `write and sync: ${write}`);

  const ro = await shell.run('mount /dev/vdb /mnt 2>&1; grep "^/dev/vdb " /proc/mounts; cat /mnt/ro.txt; touch /mnt/new 2>&1; echo touch-rc=$?', COMMAND_MS);
  assert.match(ro, /^\/dev\/vdb \/mnt ext4 ro[, ]/m, `a mount of the readonly disk ends up read-only: ${ro}`);
  assert.match(ro, /^read-only-content$/m, `its file reads: ${ro}`);
  assert.match(ro, /Read-only file system/, `writing to it fails with EROFS: ${ro}`);
  assert.match(ro, /^touch-rc=1$/m, ro);

  shell.sendLast('poweroff');
  const exit = await vm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, `poweroff exits 0\n${vm.describe()}`);
  assert.doesNotMatch(vm.stdout, /Kernel panic|Oops|BUG:/);

  assert.equal(tool('debugfs', ['-R', 'cat /root/token.txt', disk]), `${token}\n`, 'the guest\'s file is in the image');
  tool('e2fsck', ['-f', '-n', disk]); // the shutdown left the file system clean
  t.diagnostic(`root disk boot: ${ROOTFS_MARKER} at ${shell.markerSeconds.toFixed(1)} s, prompt at ${shell.promptSeconds.toFixed(1)} s, exit at ${exit.seconds.toFixed(1)} s`);
});
