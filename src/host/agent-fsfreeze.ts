/**
 * Freezing the guest's file systems through its agent (`vessel vm fsfreeze NAME freeze|thaw|status`,
 * POST /vms/{vm}/fsfreeze; libvirt's domfsfreeze/domfsthaw): qemu-ga syncs and freezes every
 * mounted file system it can (FIFREEZE), so a snapshot or a copy of the disk taken meanwhile is
 * consistent. While frozen, writes in the guest wait and qemu-ga refuses most commands (exec,
 * files) with its own sentence; thaw ends it. Nothing thaws by itself: a freeze is the caller's
 * to undo.
 */
import type { QgaClient } from './guest-agent.js';

export type FsfreezeAction = 'freeze' | 'thaw' | 'status';

export interface FsfreezeResult {
  status: 'frozen' | 'thawed';
  /** File systems frozen or thawed by this request (null for status, or nothing to do). */
  filesystems: number | null;
  message: string;
}

const plural = (n: number): string => `${n} file system${n === 1 ? '' : 's'}`;

/** Carries out one fsfreeze action; freezing a frozen guest changes nothing and says so. */
export async function fsfreeze(c: QgaClient, vmName: string, action: FsfreezeAction): Promise<FsfreezeResult> {
  const status = await c.execute<'frozen' | 'thawed'>('guest-fsfreeze-status');
  if (action === 'status') return { status, filesystems: null, message: `the file systems of VM "${vmName}" are ${status}` };
  if (action === 'freeze') {
    if (status === 'frozen') return { status, filesystems: null, message: `the file systems of VM "${vmName}" were already frozen; nothing was changed` };
    const n = await c.execute<number>('guest-fsfreeze-freeze', undefined, 60_000);
    return { status: 'frozen', filesystems: n, message: `${plural(n)} of VM "${vmName}" frozen: writes in the guest wait until vessel vm fsfreeze ${vmName} thaw` };
  }
  const n = await c.execute<number>('guest-fsfreeze-thaw', undefined, 60_000);
  return { status: 'thawed', filesystems: n, message: status === 'thawed' ? `the file systems of VM "${vmName}" were not frozen; nothing was changed` : `${plural(n)} of VM "${vmName}" thawed` };
}
