/**
 * `vessel run --net user[,hostfwd=...]`: the user-mode network backend.
 *
 *   createUserNetwork('')                                   // DHCP, DNS, outbound NAT
 *   createUserNetwork('hostfwd=tcp:127.0.0.1:2222-:22')     // plus a host port into the guest
 *
 * Throws UserNetOptionsError (a usage error: exit 2 in the CLI) for a malformed setting.
 */
import { parseUserNetOptions } from './options.js';
import { UserNetwork, type UserNetworkHooks } from './stack.js';

export { UserNetOptionsError, type HostForward, type UserNetOptions } from './options.js';
export { UserNetwork, type UserNetworkHooks } from './stack.js';
export { HostForwardError, type ForwardAddress } from './tcp.js';

/** `options` is what followed `user` in `--net user,...` ("" for none). */
export function createUserNetwork(options: string, hooks: UserNetworkHooks = {}): UserNetwork {
  return new UserNetwork(parseUserNetOptions(options), hooks);
}
