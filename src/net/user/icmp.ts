/** ICMP (RFC 792): the stack answers echo requests addressed to its own addresses. */
import { internetChecksum } from './checksum.js';

const ECHO_REPLY = 0;
const ECHO_REQUEST = 8;
const ICMP_HEADER = 8;

/** The echo reply to an echo request (same identifier, sequence and data), or a drop reason. */
export function echoReply(message: Uint8Array): Uint8Array | string {
  if (message.length < ICMP_HEADER) return 'icmp-short';
  if (internetChecksum(message, 0, message.length) !== 0) return 'icmp-checksum';
  if (message[0] !== ECHO_REQUEST || message[1] !== 0) return 'icmp-not-echo-request';
  const reply = message.slice();
  reply[0] = ECHO_REPLY;
  reply[2] = 0;
  reply[3] = 0;
  const sum = internetChecksum(reply, 0, reply.length);
  reply[2] = sum >>> 8;
  reply[3] = sum;
  return reply;
}
