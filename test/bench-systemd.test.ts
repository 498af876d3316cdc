// bench/systemd.ts's pieces that need no VM: reading systemd-analyze's output, and the files the
// Debian systemd disk gets (images/debian-systemd.ts), including the marker unit's command run
// on the host and matched as the bench matches it. Building or booting the disk is not tested
// here: it takes minutes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { parseAnalyzeTime, parseBlame, parseGuestCounters, parseSpan } from '../bench/lib/systemd-analyze.js';
import { SYSTEMD_MARKER_RE, systemdImageFiles } from '../images/debian-systemd.js';

test('systemd time spans', () => {
  assert.equal(parseSpan('812ms'), 0.812);
  assert.equal(parseSpan('3.5s'), 3.5);
  assert.ok(Math.abs(parseSpan('1min 2.345s')! - 62.345) < 1e-9);
  assert.equal(parseSpan('1h 2min'), 3720);
  assert.ok(Math.abs(parseSpan('50us')! - 50e-6) < 1e-12);
  assert.equal(parseSpan('fast'), null);
  assert.equal(parseSpan(''), null);
});

test('systemd-analyze time, with and without an initrd phase', () => {
  const plain = 'Startup finished in 3.512s (kernel) + 1min 9.873s (userspace) = 1min 13.385s \r\nmulti-user.target reached after 1min 9.801s in userspace.\r\n';
  const t = parseAnalyzeTime(plain)!;
  assert.equal(t.kernelS, 3.512);
  assert.ok(Math.abs(t.userspaceS - 69.873) < 1e-9);
  assert.ok(Math.abs(t.totalS - 73.385) < 1e-9);
  assert.equal(t.target!.unit, 'multi-user.target');
  assert.ok(Math.abs(t.target!.seconds - 69.801) < 1e-9);
  const initrd = parseAnalyzeTime('Startup finished in 1.200s (kernel) + 2.300s (initrd) + 5s (userspace) = 8.500s\ngraphical.target reached after 4.9s in userspace.\n')!;
  assert.ok(Math.abs(initrd.kernelS - 3.5) < 1e-9);
  assert.deepEqual(initrd.target, { unit: 'graphical.target', seconds: 4.9 });
  assert.equal(parseAnalyzeTime('Startup finished in 1s (kernel) + 2s (userspace) = 3s\n')!.target, null);
  assert.equal(parseAnalyzeTime('Bootup is not yet finished (org.freedesktop.systemd1.Manager.FinishTimestampMonotonic=0).\n'), null);
});

test('systemd-analyze blame lines, in order, other lines skipped', () => {
  const b = parseBlame('$ systemd-analyze blame\n  1min 2.100s systemd-udev-trigger.service\r\n   812ms dev-vda.device\n     50us sys-kernel-config.mount\nroot@x:~# ');
  assert.deepEqual(b.map((e) => e.unit), ['systemd-udev-trigger.service', 'dev-vda.device', 'sys-kernel-config.mount']);
  assert.ok(Math.abs(b[0].seconds - 62.1) < 1e-9);
  assert.equal(b[1].seconds, 0.812);
});

test('guest kernel counters from /proc/stat, /proc/vmstat and /proc/interrupts', () => {
  const text = [
    'cpu  1200 30 800 5000 150 10 40 0 0 0', 'cpu0 600 15 400 2500 75 5 20 0 0 0', 'intr 12345 0 1', 'ctxt 98765', 'btime 1', 'processes 432',
    'nr_free_pages 1000', 'pgpgin 81920', 'pgpgout 12', 'pgfault 250000', 'pgmajfault 1500',
    '           CPU0       CPU1', ' 10:       1234          0  RISC-V INTC   5 Edge      riscv-timer',
    'IPI0:        12         34  Rescheduling interrupts', 'IPI1:         5          6  Function call interrupts', 'IPI2:         0          0  CPU stop interrupts',
  ].join('\r\n');
  const c = parseGuestCounters(text)!;
  assert.deepEqual(c.cpu, { user: 12.3, system: 8, idle: 50, iowait: 1.5, irq: 0.1, softirq: 0.4 });
  assert.equal(c.ctxt, 98765);
  assert.equal(c.processes, 432);
  assert.equal(c.pgfault, 250000);
  assert.equal(c.pgmajfault, 1500);
  assert.equal(c.pgpginKiB, 81920);
  assert.deepEqual(c.ipis, { 'Rescheduling interrupts': 46, 'Function call interrupts': 11, 'CPU stop interrupts': 0 });
  assert.equal(parseGuestCounters('no stat here'), null);
});

test('the disk files: a valid machine id, the marker unit wanted by multi-user.target and ordered after it', () => {
  assert.throws(() => systemdImageFiles('not-hex', 0n), /32 lowercase hex/);
  const files = systemdImageFiles('0123456789abcdef0123456789abcdef', 1765152000123456789n);
  const byPath = new Map(files.map((f) => [f.path, f]));
  const id = byPath.get('etc/machine-id');
  assert.ok(id && 'data' in id && id.data === '0123456789abcdef0123456789abcdef\n');
  for (const p of ['etc/.updated', 'var/.updated']) {
    const u = byPath.get(p);
    assert.ok(u && 'data' in u, p);
    assert.match(u.data, /^TIMESTAMP_NSEC=1765152000123456789$/m);
    assert.equal(u.mtimeS, 1765152001, 'a second after /usr');
  }
  const unit = byPath.get('etc/systemd/system/vessel-boot-marker.service');
  assert.ok(unit && 'data' in unit);
  assert.match(unit.data, /^After=multi-user\.target$/m);
  assert.match(unit.data, /^WantedBy=multi-user\.target$/m);
  const link = byPath.get('etc/systemd/system/multi-user.target.wants/vessel-boot-marker.service');
  assert.ok(link && 'symlink' in link && link.symlink === '/etc/systemd/system/vessel-boot-marker.service');

  // The unit's command, run by a host shell with its output to stdout instead of /dev/console,
  // prints the line the bench waits for.
  const exec = /^ExecStart=\/bin\/sh -c '(.*)'$/m.exec(unit.data);
  assert.ok(exec, 'ExecStart is a /bin/sh -c line');
  const r = spawnSync('sh', ['-c', exec[1].replace('>/dev/console', '')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = SYSTEMD_MARKER_RE.exec(r.stdout);
  assert.ok(m, `marker line not matched in ${JSON.stringify(r.stdout)}`);
  assert.ok(Number(m[1]) > 0, 'the uptime is a positive number');
  assert.equal(SYSTEMD_MARKER_RE.exec(r.stdout.replace(/\.\d+\n$/, '')), null, 'a line cut short after the first digits does not match');
});
