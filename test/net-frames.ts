// Test helper, not a test file: builds and parses Ethernet/ARP/IPv4/ICMP/UDP/TCP frames on its
// own (independently of src/net/user) so tests can act as a guest on the wire.

export const GUEST_MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
export const GATEWAY_MAC = Buffer.from([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
export const BROADCAST = Buffer.alloc(6, 0xff);

export function ip(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}
export function ipText(b: Buffer): string {
  return [...b].join('.');
}

export const GUEST_IP = ip('10.0.2.15');
export const GATEWAY_IP = ip('10.0.2.2');
export const DNS_IP = ip('10.0.2.3');

function checksum(data: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function pseudo(src: Buffer, dst: Buffer, proto: number, length: number): number {
  return src.readUInt16BE(0) + src.readUInt16BE(2) + dst.readUInt16BE(0) + dst.readUInt16BE(2) + proto + length;
}

export function ethernet(dst: Buffer, src: Buffer, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  src.copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

export function arpRequest(senderIp: Buffer, targetIp: Buffer, senderMac = GUEST_MAC): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  senderMac.copy(a, 8);
  senderIp.copy(a, 14);
  targetIp.copy(a, 24);
  return ethernet(BROADCAST, senderMac, 0x0806, a);
}

export function arpReply(senderIp: Buffer, targetMac: Buffer, targetIp: Buffer): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(2, 6);
  GUEST_MAC.copy(a, 8);
  senderIp.copy(a, 14);
  targetMac.copy(a, 18);
  targetIp.copy(a, 24);
  return ethernet(targetMac, GUEST_MAC, 0x0806, a);
}

export function ipv4(src: Buffer, dst: Buffer, proto: number, payload: Buffer, dstMac = GATEWAY_MAC): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(0x1234, 4);
  h[6] = 0x40;
  h[8] = 64;
  h[9] = proto;
  src.copy(h, 12);
  dst.copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return ethernet(dstMac, GUEST_MAC, 0x0800, Buffer.concat([h, payload]));
}

export function icmpEcho(src: Buffer, dst: Buffer, id: number, seq: number, data: Buffer): Buffer {
  const m = Buffer.concat([Buffer.from([8, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff]), data]);
  m.writeUInt16BE(checksum(m), 2);
  return ipv4(src, dst, 1, m);
}

export function udp(src: Buffer, dst: Buffer, srcPort: number, dstPort: number, payload: Buffer, dstMac = GATEWAY_MAC): Buffer {
  const u = Buffer.alloc(8 + payload.length);
  u.writeUInt16BE(srcPort, 0);
  u.writeUInt16BE(dstPort, 2);
  u.writeUInt16BE(u.length, 4);
  payload.copy(u, 8);
  u.writeUInt16BE(checksum(u, pseudo(src, dst, 17, u.length)) || 0xffff, 6);
  return ipv4(src, dst, 17, u, dstMac);
}

export const F = { fin: 1, syn: 2, rst: 4, psh: 8, ack: 16 } as const;

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options?: Buffer;
  payload?: Buffer;
}

export function tcp(src: Buffer, dst: Buffer, t: TcpFields): Buffer {
  const options = t.options ?? Buffer.alloc(0);
  const payload = t.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + options.length);
  h.writeUInt16BE(t.srcPort, 0);
  h.writeUInt16BE(t.dstPort, 2);
  h.writeUInt32BE(t.seq >>> 0, 4);
  h.writeUInt32BE(t.ack >>> 0, 8);
  h[12] = (h.length / 4) << 4;
  h[13] = t.flags;
  h.writeUInt16BE(t.window, 14);
  options.copy(h, 20);
  const seg = Buffer.concat([h, payload]);
  seg.writeUInt16BE(checksum(seg, pseudo(src, dst, 6, seg.length)), 16);
  return ipv4(src, dst, 6, seg);
}

/** MSS option (and optionally window scale) for a SYN. */
export function synOptions(mss: number, windowScale?: number): Buffer {
  const o = [2, 4, mss >> 8, mss & 0xff];
  if (windowScale !== undefined) o.push(1, 3, 3, windowScale);
  while (o.length % 4) o.push(0);
  return Buffer.from(o);
}

export interface Parsed {
  raw: Buffer;
  dstMac: Buffer;
  srcMac: Buffer;
  type: number;
  arp?: { op: number; senderMac: Buffer; senderIp: string; targetIp: string };
  ip?: { src: string; dst: string; proto: number; headerOk: boolean };
  icmp?: { type: number; id: number; seq: number; data: Buffer; checksumOk: boolean };
  udp?: { srcPort: number; dstPort: number; payload: Buffer; checksumOk: boolean };
  tcp?: TcpFields & { payload: Buffer; mss: number | null; windowScale: number | null; checksumOk: boolean };
}

export function parse(frame: Uint8Array): Parsed {
  const raw = Buffer.from(frame);
  const p: Parsed = { raw, dstMac: raw.subarray(0, 6), srcMac: raw.subarray(6, 12), type: raw.readUInt16BE(12) };
  const body = raw.subarray(14);
  if (p.type === 0x0806) {
    p.arp = { op: body.readUInt16BE(6), senderMac: body.subarray(8, 14), senderIp: ipText(body.subarray(14, 18)), targetIp: ipText(body.subarray(24, 28)) };
  } else if (p.type === 0x0800) {
    const ihl = (body[0] & 15) * 4;
    const total = body.readUInt16BE(2);
    const src = body.subarray(12, 16);
    const dst = body.subarray(16, 20);
    p.ip = { src: ipText(src), dst: ipText(dst), proto: body[9], headerOk: checksum(body.subarray(0, ihl)) === 0 };
    const l4 = body.subarray(ihl, total);
    if (p.ip.proto === 1) {
      p.icmp = { type: l4[0], id: l4.readUInt16BE(4), seq: l4.readUInt16BE(6), data: l4.subarray(8), checksumOk: checksum(l4) === 0 };
    } else if (p.ip.proto === 17) {
      p.udp = { srcPort: l4.readUInt16BE(0), dstPort: l4.readUInt16BE(2), payload: l4.subarray(8), checksumOk: checksum(l4, pseudo(src, dst, 17, l4.length)) === 0 };
    } else if (p.ip.proto === 6) {
      const off = (l4[12] >> 4) * 4;
      let mss: number | null = null;
      let windowScale: number | null = null;
      for (let i = 20; i < off;) {
        const kind = l4[i];
        if (kind === 0) break;
        if (kind === 1) { i++; continue; }
        if (kind === 2) mss = l4.readUInt16BE(i + 2);
        if (kind === 3) windowScale = l4[i + 2];
        i += l4[i + 1];
      }
      p.tcp = {
        srcPort: l4.readUInt16BE(0), dstPort: l4.readUInt16BE(2), seq: l4.readUInt32BE(4), ack: l4.readUInt32BE(8),
        flags: l4[13] & 0x3f, window: l4.readUInt16BE(14), payload: l4.subarray(off), mss, windowScale,
        checksumOk: checksum(l4, pseudo(src, dst, 6, l4.length)) === 0,
      };
    }
  }
  return p;
}

/** Builds a DHCP client message (BOOTREQUEST) with the given options (code -> bytes). */
export function dhcpMessage(xid: number, options: Array<[number, number[]]>, ciaddr = Buffer.alloc(4)): Buffer {
  const m = Buffer.alloc(240);
  m[0] = 1;
  m[1] = 1;
  m[2] = 6;
  m.writeUInt32BE(xid, 4);
  m.writeUInt16BE(0x8000, 10);
  ciaddr.copy(m, 12);
  GUEST_MAC.copy(m, 28);
  m.writeUInt32BE(0x63825363, 236);
  const opts: number[] = [];
  for (const [code, data] of options) opts.push(code, data.length, ...data);
  opts.push(255);
  return Buffer.concat([m, Buffer.from(opts)]);
}

export function dhcpOptions(payload: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let i = 240; i < payload.length;) {
    const code = payload[i++];
    if (code === 0) continue;
    if (code === 255) break;
    const len = payload[i++];
    out.set(code, payload.subarray(i, i + len));
    i += len;
  }
  return out;
}
