/**
 * `vessel run --net <spec>`, QEMU-like:
 *
 *   user[,hostfwd=...][,mac=52:54:00:12:34:56]   the user-mode TCP/IP stack (no root needed)
 *   tap=NAME[,mac=...]                           a Linux TAP device (root)
 *   passt[,mac=...]                              Debian's passt, a process per VM (src/net/passt.ts)
 *
 * Parsing checks everything it can without touching the host; `openNetBackend` then creates
 * the backend (binds sockets, starts the TAP relay). Both throw `NetOptionError` for what the
 * user should fix.
 */
import type { NetBackend } from '../net/backend.js';
import { parseMac } from '../net/mac.js';
import { PasstBackend, PasstError } from '../net/passt.js';
import { TapBackend, TapError, checkTapName } from '../net/tap.js';
import { createUserNetwork, HostForwardError, UserNetOptionsError } from '../net/user/index.js';

export type NetOption =
  /** `settings` is the text after `user,` without `mac=` (handed to the user stack as is). */
  | { kind: 'user'; settings: string; mac?: string }
  | { kind: 'tap'; ifname: string; mac?: string }
  | { kind: 'passt'; mac?: string };

export class NetOptionError extends Error {
  override name = 'NetOptionError';
}

const SYNTAX = 'expected user[,hostfwd=...][,mac=...], tap=NAME[,mac=...] or passt[,mac=...]';

export function parseNetOption(spec: string): NetOption {
  const [kind, ...settings] = spec.split(',');
  let mac: string | undefined;
  const rest: string[] = [];
  for (const setting of settings) {
    if (!setting.startsWith('mac=')) {
      rest.push(setting);
      continue;
    }
    if (mac !== undefined) throw new NetOptionError(`--net "${spec}": mac= is given twice`);
    mac = setting.slice('mac='.length);
    try {
      parseMac(mac);
    } catch (e) {
      throw new NetOptionError(`--net "${spec}": ${(e as Error).message}`);
    }
  }
  if (kind === 'user') return { kind: 'user', settings: rest.join(','), mac };
  if (kind === 'passt') {
    if (rest.length > 0) throw new NetOptionError(`--net "${spec}": unknown setting "${rest[0]}" for passt (${SYNTAX})`);
    return { kind: 'passt', mac };
  }
  if (kind.startsWith('tap=')) {
    if (rest.length > 0) throw new NetOptionError(`--net "${spec}": unknown setting "${rest[0]}" for tap (${SYNTAX})`);
    const ifname = kind.slice('tap='.length);
    try {
      checkTapName(ifname);
    } catch (e) {
      throw new NetOptionError(`--net "${spec}": ${(e as Error).message}`);
    }
    return { kind: 'tap', ifname, mac };
  }
  if (kind === 'tap') throw new NetOptionError(`--net "${spec}": tap needs a device name, tap=NAME`);
  throw new NetOptionError(`--net "${spec}": unknown network "${kind}" (${SYNTAX})`);
}

/** Creates the backend an option names, once it works: hostfwd ports listen, the TAP relay runs, passt runs. */
export async function openNetBackend(option: NetOption): Promise<NetBackend> {
  try {
    if (option.kind === 'tap') return await TapBackend.open(option.ifname);
    if (option.kind === 'passt') return await PasstBackend.open();
    const user = createUserNetwork(option.settings);
    try {
      await user.listening;
    } catch (e) {
      user.close();
      throw e;
    }
    return user;
  } catch (e) {
    if (e instanceof UserNetOptionsError || e instanceof HostForwardError || e instanceof TapError || e instanceof PasstError) throw new NetOptionError(e.message);
    throw e;
  }
}

/**
 * A view of `backend` whose `close()` only detaches the receiver: for a Machine that closes its
 * backends, when the backend must outlive it (a guest reboot starts a new Machine on the same
 * TAP or user network, as QEMU keeps its netdev).
 */
export function lendBackend(backend: NetBackend): NetBackend {
  return {
    name: backend.name,
    offloads: backend.offloads,
    send: (frame, offload) => backend.send(frame, offload),
    attach: (receive, guestOffloads) => backend.attach(receive, guestOffloads),
    close: () => backend.attach(() => {}),
  };
}
