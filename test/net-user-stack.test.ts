// The user-mode network stack through its NetBackend interface: the test plays the guest with
// hand-built frames against real host sockets (a node:http server, a UDP echo server, a TCP
// client on a forwarded port) on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as http from 'node:http';
import * as net from 'node:net';
import fc from 'fast-check';

import { freePort } from './vessel-cli.js';
import { createUserNetwork, HostForwardError, UserNetOptionsError, type UserNetwork } from '../src/net/user/index.js';
import {
  BROADCAST, DNS_IP, F, GATEWAY_IP, GATEWAY_MAC, GUEST_IP, GUEST_MAC, arpReply, arpRequest, dhcpMessage, dhcpOptions, icmpEcho, ip, parse,
  synOptions, tcp, udp, type Parsed,
} from './net-frames.js';

/** The guest's side of the wire: every frame the stack delivers, and a way to wait for one. */
class Wire {
  readonly frames: Parsed[] = [];
  private consumed = new Set<Parsed>();
  private waiters: Array<() => void> = [];
  private listeners: Array<(p: Parsed) => void> = [];

  constructor(readonly net: UserNetwork) {
    net.attach((frame) => {
      const p = parse(frame);
      this.frames.push(p);
      for (const l of this.listeners) l(p);
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  send(frame: Buffer): void {
    this.net.send(frame);
  }

  onFrame(listener: (p: Parsed) => void): void {
    this.listeners.push(listener);
  }

  /** The first frame not yet taken that matches; fails after `ms` with what did arrive. */
  async expect(what: string, match: (p: Parsed) => boolean, ms = 5000): Promise<Parsed> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.find((p) => !this.consumed.has(p) && match(p));
      if (found) {
        this.consumed.add(found);
        return found;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.frames.map((p) => (p.tcp ? `tcp ${p.tcp.srcPort}->${p.tcp.dstPort} flags=${p.tcp.flags} len=${p.tcp.payload.length}` : p.arp ? 'arp' : `type ${p.type}`));
        assert.fail(`no ${what} within ${ms} ms; frames seen: ${seen.slice(-20).join(', ')}; stats ${JSON.stringify(this.net.stats())}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
}

function quietNetwork(options = ''): { net: UserNetwork; log: string[] } {
  const log: string[] = [];
  return { net: createUserNetwork(options, { log: (line) => log.push(line) }), log };
}

/**
 * A guest TCP endpoint driven by hand: in-order receive with an ACK per segment, duplicate ACKs
 * for gaps. Optionally it models virtio-net's receive ring: at most `ring` frames wait to be
 * processed (on the next event-loop turn) and frames arriving at a full ring are lost; and a
 * loss plan can pretend further frames never arrived.
 */
interface GuestTcpOptions {
  /** Called with each data segment's sequence number: true pretends the frame was lost. */
  loses?: (seq: number) => boolean;
  ring?: number;
  isn?: number;
}

class GuestTcp {
  rcvNxt = 0;
  /** The peer's first data sequence number (its ISN + 1). */
  firstSeq = 0;
  sndNxt: number;
  readonly received: Buffer[] = [];
  finReceived = false;
  reset = false;
  lost = 0;
  private done: Array<() => void> = [];
  private ringFrames: Parsed[] = [];

  constructor(
    private readonly wire: Wire,
    readonly localPort: number,
    readonly remoteIp: Buffer,
    readonly remotePort: number,
    private readonly options: GuestTcpOptions = {},
  ) {
    this.sndNxt = options.isn ?? 1000;
    wire.onFrame((p) => {
      if (!this.mine(p) || !p.tcp || p.tcp.flags & F.syn) return;
      if (options.ring === undefined) return this.process(p);
      if (this.ringFrames.length >= options.ring) {
        this.lost++;
        return;
      }
      this.ringFrames.push(p);
      if (this.ringFrames.length === 1) {
        setImmediate(() => {
          const frames = this.ringFrames;
          this.ringFrames = [];
          for (const f of frames) this.process(f);
        });
      }
    });
  }

  private process(p: Parsed): void {
    const t = p.tcp!;
    if (t.flags & F.rst) {
      this.reset = true;
      return this.settle();
    }
    const len = t.payload.length + (t.flags & F.fin ? 1 : 0);
    if (len === 0) return;
    if (t.payload.length > 0 && this.options.loses?.(t.seq)) {
      this.lost++;
      return;
    }
    if (t.seq === this.rcvNxt) {
      this.received.push(Buffer.from(t.payload));
      this.rcvNxt = (this.rcvNxt + len) >>> 0;
      if (t.flags & F.fin) {
        this.finReceived = true;
        this.settle();
      }
    }
    this.sendSegment(F.ack);
  }

  mine(p: Parsed): boolean {
    return !!p.tcp && p.tcp.dstPort === this.localPort && p.tcp.srcPort === this.remotePort && p.ip!.src === this.remoteIpText;
  }

  get remoteIpText(): string {
    return [...this.remoteIp].join('.');
  }

  sendSegment(flags: number, payload?: Buffer, window = 65535): void {
    this.wire.send(tcp(GUEST_IP, this.remoteIp, { srcPort: this.localPort, dstPort: this.remotePort, seq: this.sndNxt, ack: this.rcvNxt, flags, window, payload }));
    this.sndNxt = (this.sndNxt + (payload?.length ?? 0) + (flags & (F.syn | F.fin) ? 1 : 0)) >>> 0;
  }

  /** SYN (MSS 1460, window scale 2), then the ACK of the SYN-ACK. Returns the SYN-ACK. */
  async connect(): Promise<Parsed> {
    this.wire.send(tcp(GUEST_IP, this.remoteIp, { srcPort: this.localPort, dstPort: this.remotePort, seq: this.sndNxt, ack: 0, flags: F.syn, window: 65535, options: synOptions(1460, 2) }));
    this.sndNxt = (this.sndNxt + 1) >>> 0;
    const synAck = await this.wire.expect('SYN-ACK', (p) => this.mine(p) && !!(p.tcp!.flags & F.syn));
    this.rcvNxt = this.firstSeq = (synAck.tcp!.seq + 1) >>> 0;
    this.sendSegment(F.ack);
    return synAck;
  }

  private settle(): void {
    const d = this.done;
    this.done = [];
    for (const f of d) f();
  }

  async untilFinOrReset(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.finReceived && !this.reset) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`no FIN within ${ms} ms after ${Buffer.concat(this.received).length} bytes (lost ${this.lost}); stats ${JSON.stringify(this.wire.net.stats())}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.done.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
}

async function httpServer(body: Buffer): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, connection: 'close' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

function bodyOf(response: Buffer): Buffer {
  const end = response.indexOf('\r\n\r\n');
  assert.ok(end > 0, `an HTTP header: ${response.subarray(0, 200).toString('latin1')}`);
  return response.subarray(end + 4);
}

test('option strings: hostfwd forms parse; malformed settings throw UserNetOptionsError with the reason', () => {
  const n = createUserNetwork('hostfwd=tcp:127.0.0.1:0-:22,hostfwd=::0-10.0.2.20:80', { log: () => {} });
  assert.deepEqual(n.options.hostForwards.map((f) => [f.protocol, f.hostAddress, f.hostPort, f.guestAddress, f.guestPort]), [
    ['tcp', '127.0.0.1', 0, 0x0a00020f, 22],
    ['tcp', '0.0.0.0', 0, 0x0a000214, 80],
  ]);
  n.close();
  const cases: Array<[string, RegExp]> = [
    ['nonsense', /unknown setting "nonsense"/],
    ['hostfwd=tcp:127.0.0.1:70000-:22', /host port 70000 is out of range/],
    ['hostfwd=tcp:localhost:2222-:22', /host address "localhost" is not an IPv4 address/],
    ['hostfwd=tcp::2222-:0', /guest port 0 is out of range/],
    ['hostfwd=tcp::2222-10.0.2.2:22', /guest address 10.0.2.2 is not a guest address/],
    ['hostfwd=sctp::2222-:22', /unknown protocol "sctp"/],
    ['hostfwd=tcp::2222:22', /exactly one "-"/],
    ['hostfwd=tcp::2222-:22,hostfwd=tcp::2222-:23', /forwarded twice/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => createUserNetwork(text), (e: unknown) => e instanceof UserNetOptionsError && message.test(e.message), text);
  }
});

test('ARP: the gateway 10.0.2.2 and DNS 10.0.2.3 answer with 52:55:0a:00:02:0x; the guest address gets no answer', async () => {
  const { net } = quietNetwork();
  const wire = new Wire(net);
  try {
    wire.send(arpRequest(GUEST_IP, GATEWAY_IP));
    const r = await wire.expect('ARP reply for 10.0.2.2', (p) => p.arp?.op === 2 && p.arp.senderIp === '10.0.2.2');
    assert.deepEqual(r.arp!.senderMac, GATEWAY_MAC);
    assert.deepEqual(r.dstMac, GUEST_MAC);
    assert.equal(r.arp!.targetIp, '10.0.2.15');
    wire.send(arpRequest(GUEST_IP, DNS_IP));
    const d = await wire.expect('ARP reply for 10.0.2.3', (p) => p.arp?.op === 2 && p.arp.senderIp === '10.0.2.3');
    assert.equal(d.arp!.senderMac.toString('hex'), '52550a000203');
    wire.send(arpRequest(ip('0.0.0.0'), GUEST_IP)); // duplicate-address probe: nobody else has it
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(wire.frames.length, 2, 'no reply for the guest\'s own address');
  } finally {
    net.close();
  }
});

test('DHCP: DISCOVER -> OFFER and REQUEST -> ACK for 10.0.2.15 with router, netmask, DNS and lease; a foreign address gets NAK', async () => {
  const { net } = quietNetwork();
  const wire = new Wire(net);
  const zero = ip('0.0.0.0');
  const broadcast = ip('255.255.255.255');
  try {
    wire.send(udp(zero, broadcast, 68, 67, dhcpMessage(0xabcd0001, [[53, [1]], [55, [1, 3, 6, 51]]]), BROADCAST));
    const offer = await wire.expect('DHCP OFFER', (p) => p.udp?.dstPort === 68);
    assert.ok(offer.udp!.checksumOk && offer.ip!.headerOk, 'checksums');
    assert.equal(offer.ip!.src, '10.0.2.2');
    assert.equal(offer.udp!.srcPort, 67);
    const o = offer.udp!.payload;
    assert.equal(o[0], 2, 'BOOTREPLY');
    assert.equal(o.readUInt32BE(4), 0xabcd0001, 'xid echoed');
    assert.equal([...o.subarray(16, 20)].join('.'), '10.0.2.15', 'yiaddr');
    assert.deepEqual(o.subarray(28, 34), GUEST_MAC, 'chaddr');
    const opts = dhcpOptions(o);
    assert.deepEqual([...opts.get(53)!], [2], 'OFFER');
    assert.equal([...opts.get(54)!].join('.'), '10.0.2.2', 'server id');
    assert.equal([...opts.get(1)!].join('.'), '255.255.255.0', 'netmask');
    assert.equal([...opts.get(3)!].join('.'), '10.0.2.2', 'router');
    assert.equal([...opts.get(6)!].join('.'), '10.0.2.3', 'DNS');
    assert.equal(opts.get(51)!.readUInt32BE(0), 86400, 'lease time');

    wire.send(udp(zero, broadcast, 68, 67, dhcpMessage(0xabcd0002, [[53, [3]], [50, [10, 0, 2, 15]], [54, [10, 0, 2, 2]]]), BROADCAST));
    const ack = await wire.expect('DHCP ACK', (p) => p.udp?.dstPort === 68 && p.udp.payload.readUInt32BE(4) === 0xabcd0002);
    const a = dhcpOptions(ack.udp!.payload);
    assert.deepEqual([...a.get(53)!], [5], 'ACK');
    assert.equal([...ack.udp!.payload.subarray(16, 20)].join('.'), '10.0.2.15');
    assert.equal([...a.get(3)!].join('.'), '10.0.2.2');
    assert.equal(a.get(51)!.readUInt32BE(0), 86400);

    wire.send(udp(zero, broadcast, 68, 67, dhcpMessage(0xabcd0003, [[53, [3]], [50, [10, 0, 2, 99]]]), BROADCAST));
    const nak = await wire.expect('DHCP NAK', (p) => p.udp?.dstPort === 68 && p.udp.payload.readUInt32BE(4) === 0xabcd0003);
    assert.deepEqual([...dhcpOptions(nak.udp!.payload).get(53)!], [6], 'NAK');
  } finally {
    net.close();
  }
});

test('ICMP: echo requests to 10.0.2.2 and 10.0.2.3 are answered with the same id, sequence and data', async () => {
  const { net } = quietNetwork();
  const wire = new Wire(net);
  try {
    const data = randomBytes(56);
    for (const [dst, text] of [[GATEWAY_IP, '10.0.2.2'], [DNS_IP, '10.0.2.3']] as const) {
      wire.send(icmpEcho(GUEST_IP, dst, 0x77, 3, data));
      const r = await wire.expect(`echo reply from ${text}`, (p) => p.icmp?.type === 0 && p.ip!.src === text);
      assert.ok(r.icmp!.checksumOk && r.ip!.headerOk);
      assert.equal(r.ip!.dst, '10.0.2.15');
      assert.equal(r.icmp!.id, 0x77);
      assert.equal(r.icmp!.seq, 3);
      assert.deepEqual(r.icmp!.data, data);
    }
    const bad = icmpEcho(GUEST_IP, GATEWAY_IP, 1, 1, data);
    bad[bad.length - 1] ^= 0xff; // breaks the ICMP checksum
    wire.send(bad);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(net.stats()['icmp-checksum'], 1, 'a corrupt echo request is dropped and counted');
  } finally {
    net.close();
  }
});

test('DNS at 10.0.2.3 answers from the host resolver; UDP to 10.0.2.2 reaches a host UDP server on 127.0.0.1', async () => {
  const { net } = quietNetwork();
  const wire = new Wire(net);
  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, from) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), from.port, from.address));
  await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
  try {
    const query = (id: number, name: string, type: number) =>
      Buffer.concat([Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, type, 0, 1])]);
    wire.send(udp(GUEST_IP, DNS_IP, 40000, 53, query(0x1111, 'localhost', 1)));
    const a = await wire.expect('DNS answer for localhost', (p) => p.udp?.srcPort === 53 && p.udp.payload.readUInt16BE(0) === 0x1111);
    const r = a.udp!.payload;
    assert.ok(a.udp!.checksumOk);
    assert.equal(r[3] & 0x0f, 0, 'NOERROR');
    assert.ok(r.readUInt16BE(6) >= 1, 'at least one answer');
    assert.equal([...r.subarray(r.length - 4)].join('.'), '127.0.0.1');
    wire.send(udp(GUEST_IP, DNS_IP, 40000, 53, query(0x2222, 'localhost', 15)));
    const mx = await wire.expect('DNS answer for MX', (p) => p.udp?.srcPort === 53 && p.udp.payload.readUInt16BE(0) === 0x2222);
    assert.equal(mx.udp!.payload[3] & 0x0f, 4, 'NOTIMP for MX');

    const port = (echo.address() as net.AddressInfo).port;
    wire.send(udp(GUEST_IP, GATEWAY_IP, 41000, port, Buffer.from('ping over udp')));
    const back = await wire.expect('UDP reply', (p) => p.udp?.dstPort === 41000);
    assert.equal(back.ip!.src, '10.0.2.2');
    assert.equal(back.udp!.srcPort, port);
    assert.equal(back.udp!.payload.toString(), 'echo:ping over udp');
    assert.deepEqual(net.openConnections, { tcp: 0, udp: 1 });
  } finally {
    net.close();
    echo.close();
  }
});

test('TCP: a GET to a node:http server on the host via 10.0.2.2 returns the full body in order; window scaling and MSS negotiated', async () => {
  const body = randomBytes(600 * 1024);
  const { server, port } = await httpServer(body);
  const { net } = quietNetwork();
  const wire = new Wire(net);
  try {
    const c = new GuestTcp(wire, 33000, GATEWAY_IP, port);
    const synAck = await c.connect();
    assert.ok(synAck.tcp!.checksumOk && synAck.ip!.headerOk);
    assert.equal(synAck.tcp!.flags, F.syn | F.ack);
    assert.equal(synAck.tcp!.ack, 1001, 'acks the guest ISN + 1');
    assert.equal(synAck.tcp!.mss, 1460);
    assert.equal(synAck.tcp!.windowScale, 4, 'scales its window since the guest offered scaling');
    c.sendSegment(F.ack | F.psh, Buffer.from(`GET / HTTP/1.1\r\nHost: 10.0.2.2:${port}\r\n\r\n`));
    await c.untilFinOrReset(20_000);
    assert.ok(c.finReceived && !c.reset, 'the server closes with a FIN');
    const got = bodyOf(Buffer.concat(c.received));
    assert.equal(got.length, body.length);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(body).digest('hex'));
    const segments = wire.frames.filter((p) => c.mine(p) && p.tcp!.payload.length > 0);
    assert.ok(segments.every((p) => p.tcp!.payload.length <= 1460 && p.tcp!.checksumOk), 'segments within the MSS, checksums right');
    // Close our side: the stack ACKs our FIN, and forgets the connection after its short TIME-WAIT.
    c.sendSegment(F.fin | F.ack);
    await wire.expect('ACK of our FIN', (p) => c.mine(p) && p.tcp!.ack === c.sndNxt && p.tcp!.flags === F.ack);
    assert.equal(net.openConnections.tcp, 1, 'in TIME-WAIT');
    const deadline = Date.now() + 10_000;
    while (net.openConnections.tcp > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(net.openConnections.tcp, 0, 'TIME-WAIT over: the connection is gone');
  } finally {
    net.close();
    server.close();
  }
});

test('TCP: segments the guest loses are retransmitted (duplicate ACKs and the timer) and the body still arrives intact', async (t) => {
  const body = randomBytes(300 * 1024);
  const { server, port } = await httpServer(body);
  const { net } = quietNetwork();
  const wire = new Wire(net);
  try {
    // An 8-frame receive ring overflows when the stack sends a burst; besides, the first
    // transmission of every 25th segment is lost.
    const seen = new Set<number>();
    const c: GuestTcp = new GuestTcp(wire, 33001, GATEWAY_IP, port, {
      ring: 8,
      loses: (seq) => {
        const first = !seen.has(seq);
        seen.add(seq);
        return first && Math.floor((seq - c.firstSeq) / 1460) % 25 === 7;
      },
    });
    await c.connect();
    c.sendSegment(F.ack | F.psh, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await c.untilFinOrReset(60_000);
    const got = bodyOf(Buffer.concat(c.received));
    assert.equal(got.length, body.length);
    assert.ok(got.equals(body), 'the body is intact');
    assert.ok(c.lost >= 10, `frames were lost: ${c.lost}`);
    t.diagnostic(`lost ${c.lost} frames; stack counters ${JSON.stringify(net.stats())}`);
    const s = net.stats();
    assert.ok((s['tcp-fast-retransmit'] ?? 0) + (s['tcp-retransmission-timeout'] ?? 0) > 0, `retransmissions happened: ${JSON.stringify(s)}`);
  } finally {
    net.close();
    server.close();
  }
});

test('TCP: upload from the guest honours the advertised window and reaches the host; a refused port gets RST', async () => {
  const received: Buffer[] = [];
  let ended!: () => void;
  const endedP = new Promise<void>((r) => { ended = r; });
  const sink = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d) => received.push(d));
    s.on('end', () => { s.end('bye'); ended(); });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const port = (sink.address() as net.AddressInfo).port;
  const { net: stack } = quietNetwork();
  const wire = new Wire(stack);
  try {
    const c = new GuestTcp(wire, 33002, GATEWAY_IP, port);
    const synAck = await c.connect();
    const data = randomBytes(200 * 1024);
    let sent = 0;
    let acked = synAck.tcp!.ack;
    let window = synAck.tcp!.window; // unscaled in the SYN-ACK
    while (sent < data.length) {
      // Send what the stack's window allows, then wait for its ACK.
      const room = acked + window - c.sndNxt;
      if (room > 0) {
        const n = Math.min(1460, room, data.length - sent);
        c.sendSegment(F.ack, data.subarray(sent, sent + n));
        sent += n;
        continue;
      }
      const a = await wire.expect('an ACK opening the window', (p) => c.mine(p) && p.tcp!.flags === F.ack && p.tcp!.ack > acked);
      acked = a.tcp!.ack;
      window = a.tcp!.window << 4;
    }
    c.sendSegment(F.fin | F.ack);
    await endedP;
    assert.ok(Buffer.concat(received).equals(data), 'the host got every byte in order');
    await c.untilFinOrReset(5000);
    assert.equal(Buffer.concat(c.received).toString(), 'bye', 'the host\'s reply after our half-close arrives, then its FIN');

    const closed = await freePort();
    wire.send(tcp(GUEST_IP, GATEWAY_IP, { srcPort: 33003, dstPort: closed, seq: 5000, ack: 0, flags: F.syn, window: 65535, options: synOptions(1460) }));
    const rst = await wire.expect('RST for the refused port', (p) => p.tcp?.dstPort === 33003);
    assert.equal(rst.tcp!.flags, F.rst | F.ack);
    assert.equal(rst.tcp!.ack, 5001);
    assert.ok(rst.tcp!.checksumOk);
    wire.send(tcp(GUEST_IP, DNS_IP, { srcPort: 33004, dstPort: 80, seq: 1, ack: 0, flags: F.syn, window: 65535 }));
    await wire.expect('RST from 10.0.2.3 (no TCP there)', (p) => p.tcp?.dstPort === 33004 && (p.tcp.flags & F.rst) !== 0);
  } finally {
    stack.close();
    sink.close();
  }
});

test('hostfwd: a host client on the forwarded port becomes a SYN to the guest (after ARP finds it); data flows both ways; guest RST refuses', async () => {
  const { net: stack } = quietNetwork('hostfwd=tcp:127.0.0.1:0-:8080');
  const wire = new Wire(stack);
  try {
    await stack.listening;
    const [fwd] = stack.forwardAddresses();
    assert.ok(fwd.hostPort > 0);
    const client = net.connect(fwd.hostPort, '127.0.0.1');
    const fromGuest: Buffer[] = [];
    client.on('data', (d) => fromGuest.push(d));
    const clientEnded = new Promise<void>((r) => client.on('end', r));
    await new Promise<void>((r) => client.on('connect', r));

    // The guest has said nothing yet, so the stack asks where 10.0.2.15 is.
    const who = await wire.expect('ARP request for the guest', (p) => p.arp?.op === 1 && p.arp.targetIp === '10.0.2.15');
    assert.equal(who.arp!.senderIp, '10.0.2.2');
    wire.send(arpReply(GUEST_IP, GATEWAY_MAC, GATEWAY_IP));
    const syn = await wire.expect('SYN to guest port 8080', (p) => p.tcp?.dstPort === 8080 && p.tcp!.flags === F.syn, 5000);
    assert.equal(syn.ip!.src, '10.0.2.2');
    assert.equal(syn.ip!.dst, '10.0.2.15');
    assert.equal(syn.tcp!.mss, 1460);
    assert.deepEqual(syn.dstMac, GUEST_MAC);

    const g = new GuestTcp(wire, 8080, GATEWAY_IP, syn.tcp!.srcPort, { isn: 70000 });
    g.rcvNxt = (syn.tcp!.seq + 1) >>> 0;
    g.sendSegment(F.syn | F.ack);
    await wire.expect('ACK of the SYN-ACK', (p) => g.mine(p) && p.tcp!.flags === F.ack && p.tcp!.ack === g.sndNxt);
    client.write('hello from the host');
    await wire.expect('host data', (p) => g.mine(p) && p.tcp!.payload.length > 0);
    assert.equal(Buffer.concat(g.received).toString(), 'hello from the host');
    g.sendSegment(F.ack | F.psh, Buffer.from('hello from the guest'));
    g.sendSegment(F.fin | F.ack);
    await clientEnded;
    assert.equal(Buffer.concat(fromGuest).toString(), 'hello from the guest');
    client.end();
    await g.untilFinOrReset(5000);
    assert.ok(g.finReceived, 'the host client\'s end becomes a FIN');

    // Nothing listens in the guest: its RST resets the host client.
    const refused = net.connect(fwd.hostPort, '127.0.0.1');
    const closed = new Promise<void>((r) => refused.on('close', () => r()));
    refused.on('error', () => {});
    const syn2 = await wire.expect('second SYN', (p) => p.tcp?.dstPort === 8080 && p.tcp.flags === F.syn);
    wire.send(tcp(GUEST_IP, GATEWAY_IP, { srcPort: 8080, dstPort: syn2.tcp!.srcPort, seq: 0, ack: syn2.tcp!.seq + 1, flags: F.rst | F.ack, window: 0 }));
    await closed;
    assert.equal(stack.stats()['tcp-forward-refused'], 1);
  } finally {
    stack.close();
  }
});

test('hostfwd on a port already in use rejects `listening` with HostForwardError', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  const { net: stack } = quietNetwork(`hostfwd=tcp:127.0.0.1:${port}-:22`);
  try {
    await assert.rejects(stack.listening, (e: unknown) => e instanceof HostForwardError && /EADDRINUSE/.test(e.message) && e.message.includes(String(port)));
  } finally {
    stack.close();
    blocker.close();
  }
});

test('random and mutated frames never throw or trip an internal error, and the stack still works afterwards', async () => {
  const body = Buffer.from('still alive');
  const { server, port } = await httpServer(body);
  const { net: stack } = quietNetwork('hostfwd=tcp:127.0.0.1:0-:8080');
  const wire = new Wire(stack);
  try {
    await stack.listening;
    // An established connection whose 4-tuple the fuzzer hits with arbitrary segments.
    const live = new GuestTcp(wire, 34000, GATEWAY_IP, port);
    await live.connect();
    const closedPort = await freePort();
    const seeds: Buffer[] = [
      arpRequest(GUEST_IP, GATEWAY_IP),
      icmpEcho(GUEST_IP, GATEWAY_IP, 1, 1, Buffer.from('abcdefgh')),
      udp(ip('0.0.0.0'), ip('255.255.255.255'), 68, 67, dhcpMessage(7, [[53, [1]]]), BROADCAST),
      udp(GUEST_IP, DNS_IP, 40000, 53, Buffer.from('0000010000010000000000000a6c6f63616c686f73740000010001', 'hex')),
      tcp(GUEST_IP, GATEWAY_IP, { srcPort: 34001, dstPort: closedPort, seq: 1, ack: 0, flags: F.syn, window: 100, options: synOptions(1000, 3) }),
      tcp(GUEST_IP, GATEWAY_IP, { srcPort: 34000, dstPort: port, seq: live.sndNxt, ack: live.rcvNxt, flags: F.ack | F.psh, window: 100, payload: Buffer.from('GET') }),
    ];
    const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.option(fc.nat()))
      .map(([seed, edits, cut]) => {
        const f = Buffer.from(seed);
        for (const [at, value] of edits) f[at % f.length] = value;
        return cut === null ? f : f.subarray(0, cut % (f.length + 1));
      });
    // Well-formed TCP with random flags, numbers, options and payload on the live 4-tuple or to a closed port.
    const segments = fc.record({
      live: fc.boolean(), flags: fc.integer({ min: 0, max: 63 }), seq: fc.nat(), ack: fc.nat(), near: fc.boolean(),
      window: fc.integer({ min: 0, max: 65535 }), options: fc.uint8Array({ maxLength: 40 }), payload: fc.uint8Array({ maxLength: 1400 }),
    }).map((r) => {
      const options = Buffer.alloc(Math.ceil(r.options.length / 4) * 4);
      options.set(r.options);
      return tcp(GUEST_IP, GATEWAY_IP, {
        srcPort: r.live ? 34000 : 34002, dstPort: r.live ? port : closedPort,
        seq: r.near ? live.sndNxt + (r.seq % 3000) - 1500 : r.seq, ack: r.near ? live.rcvNxt + (r.ack % 3000) - 1500 : r.ack,
        flags: r.flags, window: r.window, options, payload: Buffer.from(r.payload),
      });
    });
    const frames = fc.oneof(fc.uint8Array({ maxLength: 1600 }).map((a) => Buffer.from(a)), mutated, segments);
    fc.assert(fc.property(frames, (frame) => {
      stack.send(frame);
      assert.equal(stack.stats()['internal-error'], undefined);
    }), { numRuns: 3000 });
    await new Promise((r) => setTimeout(r, 200)); // let connects and DNS answers settle
    assert.equal(stack.stats()['internal-error'], undefined, `no internal error: ${JSON.stringify(stack.stats())}`);

    // The stack still answers and still carries a fresh connection end to end.
    const before = wire.frames.length;
    wire.send(arpRequest(GUEST_IP, GATEWAY_IP));
    await wire.expect('ARP reply after fuzzing', (p) => wire.frames.indexOf(p) >= before && p.arp?.op === 2);
    const fresh = new GuestTcp(wire, 35000, GATEWAY_IP, port);
    await fresh.connect();
    fresh.sendSegment(F.ack | F.psh, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await fresh.untilFinOrReset(10_000);
    assert.equal(bodyOf(Buffer.concat(fresh.received)).toString(), 'still alive');
  } finally {
    stack.close();
    server.close();
  }
});
