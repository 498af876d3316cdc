// Growing a tenant's disk is held to the tenant's disk quota, as a create is: `vessel vm set
// --disk` on a stopped VM (the image grown offline, no boot needed) past the quota is refused
// with the quota and the excess, and changes nothing; within it, the image grows. More vCPUs for
// a stopped VM (`--vcpus`) are held to the vCPU quota the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { ensureDefaultImage } from '../images/build-image.js';
import { TEST_MS } from './vessel-cli.js';
import { cli, removeStateDir, shortStateDir, startHost } from './host-cli.js';


test('host disk grow: a tenant\'s VM cannot grow past the tenant\'s disk quota; within it, it grows', { timeout: TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const dir = shortStateDir('vdq-');
  const host = await startHost(dir);
  t.after(() => { host.kill(); removeStateDir(dir); });
  let r = await cli(dir, ['tenant', 'create', 'acme', '--disk', '384M', '--vcpus', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const token = (JSON.parse(r.stdout) as { token: string }).token;
  r = await cli(dir, ['vm', 'create', 'web', '--no-start', '--net', 'none', '--json'], token);
  assert.equal(r.code, 0, r.stderr);
  const disk = (JSON.parse(r.stdout) as { disks: { path: string }[] }).disks[0].path;
  assert.equal(fs.statSync(disk).size, 256 << 20);

  r = await cli(dir, ['vm', 'set', 'web', '--disk', 'vda=512M'], token);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /tenant "acme" is over the disk quota of 0\.38 GiB \(it has 0\.25 GiB and growing vda of VM "web" needs 0\.25 GiB more: 0\.13 GiB over\)/);
  assert.equal(fs.statSync(disk).size, 256 << 20, 'nothing changed');
  // The admin growing the tenant's VM is held to the tenant's quota too.
  r = await cli(dir, ['vm', 'set', 'web', '--disk', 'vda=512M']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /over the disk quota/);

  r = await cli(dir, ['vm', 'set', 'web', '--disk', 'vda=320M'], token);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^web: vda grown from 256 MiB to 320 MiB offline: VM "web" is stopped/m);
  assert.equal(fs.statSync(disk).size, 320 << 20);
  // More vCPUs for the stopped VM count against the vCPU quota the same way.
  r = await cli(dir, ['vm', 'set', 'web', '--vcpus', '3'], token);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /tenant "acme" is over the vCPU quota of 2 vCPUs \(it has 1 vCPU and VM "web" with 3 vCPUs needs 2 vCPUs more: 1 vCPU over\)/);
  assert.match(await cli(dir, ['vm', 'set', 'web', '--vcpus', '2'], token).then((x) => x.stdout), /vcpus 2 \(from its next start\)/);
  r = await cli(dir, ['vm', 'show', 'web'], token);
  assert.match(r.stdout, /^Disk vda:\s+\S+rootfs\.ext4 \(320 MiB\)$/m, 'vessel vm show gives the disk\'s size');
});
