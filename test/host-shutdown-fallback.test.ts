// The shutdown fallback's check of the serial console (src/host/shutdown-fallback.ts): `poweroff`
// is typed only when the console's output ends at a shell prompt, kernel messages after it aside.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { atShellPrompt } from '../src/host/shutdown-fallback.js';

test('shutdown fallback: a shell prompt at the end of the console output, with only kernel messages after it, is a prompt; anything else is not', () => {
  assert.equal(atShellPrompt('Welcome\r\n~ # ').prompt, true);
  assert.equal(atShellPrompt('~ # ls\r\nbin  etc\r\n\x1b[1;34m~\x1b[0m $ ').prompt, true, 'colours and $ prompts');
  assert.equal(atShellPrompt('~ # [   42.100000] virtio_blk virtio2: [vdb] new size: 4096 512-byte logical blocks\r\n[   42.200000] vdb: detected capacity change from 2048 to 4096\r\n').prompt, true, 'kernel messages after the prompt');
  assert.equal(atShellPrompt('~ # top\r\nMem: 12345K used\r\n').prompt, false, 'a program is running');
  assert.equal(atShellPrompt('vessel login: ').prompt, false, 'a login prompt is no shell');
  assert.equal(atShellPrompt('Please press Enter to activate this console. ').prompt, false);
  assert.equal(atShellPrompt('').prompt, false);
  assert.equal(atShellPrompt('#').prompt, false, 'a lone # is no prompt');
  assert.equal(atShellPrompt('~ # vi notes\r\n~\r\n~\r\n"notes" [New] ').last, '"notes" [New] ');
});
