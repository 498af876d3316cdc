/**
 * One guest TCP connection spliced onto a host socket: the stack speaks TCP to the guest
 * (RFC 9293 state machine, RFC 6298 retransmission timer, RFC 7323 window scaling, NewReno-style
 * fast retransmit) and plain bytes to the host's net.Socket.
 *
 * Direction names: "send" is host -> guest (our sequence space), "receive" is guest -> host.
 * Out-of-order segments from the guest are dropped and re-ACKed: the guest's frames reach us
 * in order and without loss, so this only happens after a guest retransmission.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';

import type { Ipv4 } from './address.js';
import { ByteQueue } from './byte-queue.js';
import { MTU } from './ethernet.js';
import type { GuestLink } from './guest-link.js';
import { IPV4_HEADER, PROTO_TCP } from './ipv4.js';
import { TCP_HEADER, TcpFlag, buildTcp, segmentLength, seqAdd, seqDiff, type OutgoingSegment, type TcpSegment } from './tcp-segment.js';

export type TcpState =
  | 'connecting' // guest SYN received, host connect() in progress
  | 'syn-sent' // host-forwarded: our SYN sent to the guest
  | 'syn-received' // our SYN-ACK sent
  | 'established'
  | 'fin-wait-1' // our FIN sent
  | 'fin-wait-2' // our FIN acked
  | 'closing' // both FINs sent, ours not acked yet
  | 'time-wait'
  | 'close-wait' // guest's FIN received
  | 'last-ack' // guest's FIN received, then ours sent
  | 'closed';

/** Who is who in a connection, as the guest sees it. */
export interface TcpEndpoints {
  guestIp: Ipv4;
  guestPort: number;
  /** The far end's address and port in the guest's view (10.0.2.2 for the host). */
  remoteIp: Ipv4;
  remotePort: number;
}

/** Our MSS: a full Ethernet MTU. */
export const OUR_MSS = MTU - IPV4_HEADER - TCP_HEADER;
/** RFC 9293's default when the guest sends no MSS option. */
const DEFAULT_MSS = 536;
/** Guest -> host bytes the window lets in while the host socket has not taken them. */
const RECEIVE_BUFFER = 256 * 1024;
/** A guest that overruns the window this far gets its data dropped (it retransmits later). */
const RECEIVE_HARD_LIMIT = 4 * RECEIVE_BUFFER;
/** Our window-scale shift: RECEIVE_BUFFER >> 4 fits the 16-bit field. */
const RECEIVE_WINDOW_SCALE = 4;
/** Host -> guest bytes held (sent or not) before the host socket is paused. */
const SEND_BUFFER = 1024 * 1024;
/** Largest payload of one segment the guest cuts itself (TSO): an IPv4 packet's 64 KiB less the headers. */
const MAX_OFFLOADED_PAYLOAD = 65_535 - IPV4_HEADER - TCP_HEADER;
const INITIAL_CWND_SEGMENTS = 10;
/**
 * The congestion window never exceeds this many segments (frames): the virtio-net device drops
 * frames beyond the 256 it holds while the guest has no receive buffers posted, so staying below
 * that avoids losses rather than recovering from them. A segment is up to 64 KiB when the guest
 * takes TCP segmentation offload.
 */
const MAX_CWND_SEGMENTS = 128;
const INITIAL_RTO_MS = 1000;
const MIN_RTO_MS = 200;
const MAX_RTO_MS = 60_000;
const MAX_RETRANSMISSIONS = 12;
const SYN_RETRIES = 6;
const DUP_ACK_THRESHOLD = 3;
/** The guest is on the same host: two seconds are plenty to absorb a retransmitted FIN. */
const TIME_WAIT_MS = 2000;
const CONNECT_TIMEOUT_MS = 30_000;

/** States in which the host's bytes (and our FIN) may go to the guest. */
const SENDING_STATES: ReadonlySet<TcpState> = new Set(['established', 'close-wait', 'fin-wait-1', 'closing', 'last-ack']);
/** States in which the guest may still send data. */
const RECEIVING_STATES: ReadonlySet<TcpState> = new Set(['established', 'fin-wait-1', 'fin-wait-2']);

function randomSequence(): number {
  return randomBytes(4).readUInt32BE(0);
}

export class TcpConnection {
  state: TcpState;
  /** performance.now() of the last segment either way, for idle timeouts. */
  lastActivity = performance.now();

  // Send side (host -> guest).
  private readonly iss = randomSequence();
  private sndUna: number;
  private sndNxt: number;
  /** Highest sequence number sent so far (sndNxt goes back below it on a retransmission timeout). */
  private sndMax: number;
  /** The guest's receive window in bytes. */
  private sndWnd = 0;
  private sndScale = 0;
  private mss = DEFAULT_MSS;
  private readonly sendQueue = new ByteQueue();
  /** Sequence number of sendQueue's first byte. */
  private queueSeq: number;
  private hostEnded = false;
  private finSeq: number | null = null;
  private cwnd = INITIAL_CWND_SEGMENTS * DEFAULT_MSS;
  /** RFC 5681: arbitrarily high at first; the window's cap is MAX_CWND_SEGMENTS. */
  private ssthresh = Number.MAX_SAFE_INTEGER;
  private dupAcks = 0;
  /** During fast recovery: sndMax when the loss was detected. */
  private recoverSeq: number | null = null;
  private socketPausedByUs = false;

  // Retransmission timer (RFC 6298); also drives SYN retries and zero-window probes.
  private rto = INITIAL_RTO_MS;
  private srtt = 0;
  private rttvar = 0;
  private rttSample: { endSeq: number; sentAt: number } | null = null;
  private retransmissions = 0;
  private timer: NodeJS.Timeout | null = null;

  // Receive side (guest -> host).
  private rcvScale = 0;
  private irs = 0;
  private rcvNxt = 0;
  /** rcvNxt + the window last advertised; never moves left. */
  private rightEdge = 0;
  private ackQueued = false;

  private constructor(
    readonly key: string,
    readonly endpoints: TcpEndpoints,
    private readonly link: GuestLink,
    private readonly socket: net.Socket,
    state: TcpState,
    private readonly onRelease: (connection: TcpConnection) => void,
  ) {
    this.state = state;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.queueSeq = seqAdd(this.iss, 1);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onHostData(chunk));
    socket.on('end', () => this.onHostEnd());
    socket.on('error', (e: NodeJS.ErrnoException) => this.onHostError(e));
    socket.on('drain', () => this.onHostDrain());
  }

  /** A guest SYN to a host destination: connect there first, SYN-ACK only once that worked. */
  static fromGuestSyn(
    key: string, endpoints: TcpEndpoints, link: GuestLink, syn: TcpSegment,
    target: { host: string; port: number }, onRelease: (c: TcpConnection) => void,
  ): TcpConnection {
    const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const c = new TcpConnection(key, endpoints, link, socket, 'connecting', onRelease);
    c.irs = syn.seq;
    c.rcvNxt = seqAdd(syn.seq, 1);
    c.rightEdge = c.rcvNxt;
    c.takeSynOptions(syn);
    socket.once('connect', () => c.onHostConnected());
    c.timer = setTimeout(() => c.onConnectTimeout(), CONNECT_TIMEOUT_MS).unref();
    return c;
  }

  /** A host client accepted on a forwarded port (socket created paused): SYN to the guest. */
  static toGuest(key: string, endpoints: TcpEndpoints, link: GuestLink, socket: net.Socket, onRelease: (c: TcpConnection) => void): TcpConnection {
    const c = new TcpConnection(key, endpoints, link, socket, 'syn-sent', onRelease);
    c.rcvScale = RECEIVE_WINDOW_SCALE; // offered; dropped if the guest's SYN-ACK has no scale option
    c.sendSyn();
    return c;
  }

  /** True once the connection's sequence numbers are agreed with the guest. */
  private get synchronized(): boolean {
    return this.state !== 'connecting' && this.state !== 'syn-sent' && this.state !== 'closed';
  }

  private takeSynOptions(syn: TcpSegment): void {
    this.mss = Math.max(64, Math.min(syn.mss ?? DEFAULT_MSS, OUR_MSS));
    this.cwnd = INITIAL_CWND_SEGMENTS * this.mss;
    if (syn.windowScale !== null) {
      this.sndScale = syn.windowScale;
      this.rcvScale = RECEIVE_WINDOW_SCALE;
    } else {
      this.sndScale = 0;
      this.rcvScale = 0;
    }
    this.sndWnd = syn.window; // never scaled in a SYN
  }

  // ------------------------------------------------------------------ output

  /** `segmentSize`: the payload may be larger (an offloaded segment), to be cut into segments of this size. */
  private emit(flags: number, seq: number, payload?: Uint8Array, synOptions = false, segmentSize?: number): void {
    const isSyn = (flags & TcpFlag.syn) !== 0;
    const segment: OutgoingSegment = {
      srcPort: this.endpoints.remotePort,
      dstPort: this.endpoints.guestPort,
      seq,
      ack: flags & TcpFlag.ack ? this.rcvNxt : 0,
      flags,
      window: this.advertiseWindow(isSyn),
      payload,
    };
    if (synOptions) {
      segment.mss = OUR_MSS;
      if (this.rcvScale > 0) segment.windowScale = this.rcvScale;
    }
    if (flags & TcpFlag.ack) this.ackQueued = false;
    const { remoteIp, guestIp } = this.endpoints;
    this.link.sendTcp(remoteIp, guestIp, segment, segmentSize);
  }

  /** The most payload one segment to the guest may carry: a 64 KiB segment when the guest takes TSO, else the MSS. */
  private maxSegment(): number {
    if (!this.link.guestOffloads().tcp4Segmentation) return this.mss;
    return Math.floor(MAX_OFFLOADED_PAYLOAD / this.mss) * this.mss;
  }

  /** The window field for the next segment; the advertised right edge never moves left. */
  private advertiseWindow(isSyn: boolean): number {
    const free = Math.max(0, RECEIVE_BUFFER - this.socket.writableLength);
    let window = Math.max(free, seqDiff(this.rightEdge, this.rcvNxt));
    const field = Math.min(0xffff, isSyn ? window : window >>> this.rcvScale);
    window = isSyn ? field : field << this.rcvScale;
    if (seqDiff(seqAdd(this.rcvNxt, window), this.rightEdge) > 0) this.rightEdge = seqAdd(this.rcvNxt, window);
    return field;
  }

  private sendSyn(): void {
    this.emit(TcpFlag.syn, this.iss, undefined, true);
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.armTimer();
  }

  private sendSynAck(): void {
    this.emit(TcpFlag.syn | TcpFlag.ack, this.iss, undefined, true);
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.armTimer();
  }

  /**
   * A pure ACK. Its sequence number is sndMax, not sndNxt: after a retransmission timeout
   * sndNxt can sit below what the guest already has, and Linux discards such segments.
   */
  private sendAck(): void {
    this.emit(TcpFlag.ack, this.sndMax);
  }

  /** ACKs once after the current batch of guest segments (one ACK per burst, not per segment). */
  private queueAck(): void {
    if (this.ackQueued) return;
    this.ackQueued = true;
    queueMicrotask(() => {
      if (this.ackQueued && this.synchronized) this.sendAck();
    });
  }

  private sendRst(): void {
    this.emit(TcpFlag.rst | TcpFlag.ack, this.sndMax);
  }

  /** Sends what the guest's window and the congestion window allow, then our FIN if it is due. */
  private pump(): void {
    if (!SENDING_STATES.has(this.state)) return;
    for (;;) {
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      const offset = seqDiff(this.sndNxt, this.queueSeq);
      const unsent = this.sendQueue.length - offset;
      if (unsent > 0) {
        const room = Math.min(this.sndWnd, this.cwnd) - inFlight;
        if (room <= 0) {
          // Zero window with nothing in flight: probe it from the timer.
          if (this.sndWnd === 0 && inFlight === 0 && !this.timer) this.armTimer();
          return;
        }
        const count = Math.min(unsent, room, this.maxSegment());
        // Silly-window avoidance: no small segment while a full one is possible later, unless
        // nothing is in flight (then no ACK would come to send it).
        if (count < this.mss && count < unsent && inFlight > 0) return;
        this.sendData(this.sndNxt, count);
        continue;
      }
      if (unsent === 0 && this.hostEnded) this.sendFin();
      return;
    }
  }

  /** Sends queued bytes starting at `seq`; advances sndNxt/sndMax and times new data. */
  private sendData(seq: number, count: number): void {
    const offset = seqDiff(seq, this.queueSeq);
    const payload = this.sendQueue.read(offset, count);
    const end = seqAdd(seq, count);
    const last = offset + count === this.sendQueue.length;
    this.emit(TcpFlag.ack | (last ? TcpFlag.psh : 0), seq, payload, false, count > this.mss ? this.mss : undefined);
    if (seqDiff(end, this.sndNxt) > 0) this.sndNxt = end;
    if (seqDiff(end, this.sndMax) > 0) {
      this.sndMax = end;
      if (!this.rttSample) this.rttSample = { endSeq: end, sentAt: performance.now() };
    }
    if (!this.timer) this.armTimer();
  }

  private sendFin(): void {
    const seq = seqAdd(this.queueSeq, this.sendQueue.length);
    if (this.finSeq === null) {
      this.finSeq = seq;
      if (this.state === 'established') this.state = 'fin-wait-1';
      else if (this.state === 'close-wait') this.state = 'last-ack';
    }
    this.emit(TcpFlag.fin | TcpFlag.ack, seq);
    this.sndNxt = seqAdd(seq, 1);
    if (seqDiff(this.sndNxt, this.sndMax) > 0) this.sndMax = this.sndNxt;
    if (!this.timer) this.armTimer();
  }

  /** Resends the one segment (data or FIN) that starts at sndUna. */
  private retransmitFirst(): void {
    const offset = seqDiff(this.sndUna, this.queueSeq);
    const left = this.sendQueue.length - offset;
    if (left > 0) this.sendData(this.sndUna, Math.min(left, this.mss));
    else if (this.finSeq !== null && this.finSeq === this.sndUna) this.emit(TcpFlag.fin | TcpFlag.ack, this.finSeq);
  }

  // ------------------------------------------------------------------ timers

  private armTimer(): void {
    this.clearTimer();
    this.timer = setTimeout(() => this.onTimer(), this.rto).unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private backOff(): void {
    this.rto = Math.min(this.rto * 2, MAX_RTO_MS);
    this.rttSample = null; // Karn: no RTT samples from retransmitted data
  }

  private onTimer(): void {
    this.timer = null;
    if (this.state === 'syn-sent' || this.state === 'syn-received') {
      if (++this.retransmissions > SYN_RETRIES) {
        this.link.diagnostics.count('tcp-handshake-timeout');
        return this.abort(this.state === 'syn-received');
      }
      this.backOff();
      return this.state === 'syn-sent' ? this.sendSyn() : this.sendSynAck();
    }
    if (!SENDING_STATES.has(this.state)) return;
    if (this.sndUna === this.sndMax) {
      // Nothing outstanding: this is the persist timer. Send one byte past a zero window.
      const unsent = this.sendQueue.length - seqDiff(this.sndNxt, this.queueSeq);
      if (this.sndWnd === 0 && unsent > 0) {
        this.link.diagnostics.count('tcp-zero-window-probe');
        this.backOff();
        this.sendData(this.sndNxt, 1);
      }
      return;
    }
    if (++this.retransmissions > MAX_RETRANSMISSIONS) {
      this.link.diagnostics.count('tcp-retransmission-limit');
      return this.abort(true);
    }
    this.link.diagnostics.count('tcp-retransmission-timeout');
    this.backOff();
    this.ssthresh = Math.max(Math.floor(seqDiff(this.sndMax, this.sndUna) / 2), 2 * this.mss);
    this.cwnd = 2 * this.mss;
    this.recoverSeq = null;
    this.dupAcks = 0;
    // Go back to the first unacknowledged byte.
    this.sndNxt = this.sndUna;
    this.armTimer();
    this.pump();
  }

  private onConnectTimeout(): void {
    this.timer = null;
    if (this.state !== 'connecting') return;
    this.link.diagnostics.count('tcp-connect-timeout');
    this.refuse();
  }

  // ------------------------------------------------------------------ host socket

  private onHostConnected(): void {
    if (this.state !== 'connecting') return;
    this.clearTimer();
    this.state = 'syn-received';
    this.sendSynAck();
  }

  private onHostData(chunk: Buffer): void {
    if (this.state === 'closed' || this.finSeq !== null) return;
    this.lastActivity = performance.now();
    this.sendQueue.append(chunk);
    if (this.sendQueue.length >= SEND_BUFFER && !this.socketPausedByUs) {
      this.socketPausedByUs = true;
      this.socket.pause();
    }
    this.pump();
  }

  private onHostEnd(): void {
    this.hostEnded = true;
    this.pump();
  }

  private onHostError(e: NodeJS.ErrnoException): void {
    this.link.diagnostics.count(`tcp-host-${e.code ?? 'error'}`);
    if (this.state === 'connecting') return this.refuse();
    if (this.state !== 'closed') this.abort(this.synchronized);
  }

  private onHostDrain(): void {
    // The host took what it had buffered: tell the guest its window is open again.
    if (RECEIVING_STATES.has(this.state) && seqDiff(this.rightEdge, this.rcvNxt) < RECEIVE_BUFFER / 2) this.sendAck();
  }

  // ------------------------------------------------------------------ guest segments

  onSegment(segment: TcpSegment): void {
    this.lastActivity = performance.now();
    switch (this.state) {
      case 'connecting':
        // The guest retransmits its SYN while we connect; a RST means it gave up.
        if (segment.flags & TcpFlag.rst) this.abort(false);
        return;
      case 'syn-sent':
        return this.onSegmentInSynSent(segment);
      case 'closed':
        return;
      default:
        return this.onSynchronizedSegment(segment);
    }
  }

  private onSegmentInSynSent(segment: TcpSegment): void {
    const flags = segment.flags;
    const ackOk = (flags & TcpFlag.ack) !== 0 && segment.ack === seqAdd(this.iss, 1);
    if (flags & TcpFlag.ack && !ackOk) {
      if (!(flags & TcpFlag.rst)) this.emit(TcpFlag.rst, segment.ack);
      return;
    }
    if (flags & TcpFlag.rst) {
      if (ackOk) {
        // Nothing listens on the guest port: the host client sees its connection reset.
        this.link.diagnostics.count('tcp-forward-refused');
        this.abort(false);
      }
      return;
    }
    if (!(flags & TcpFlag.syn) || !ackOk) return;
    this.irs = segment.seq;
    this.rcvNxt = seqAdd(segment.seq, 1);
    this.rightEdge = this.rcvNxt;
    this.takeSynOptions(segment);
    this.sndUna = seqAdd(this.iss, 1);
    this.retransmissions = 0;
    this.clearTimer();
    this.state = 'established';
    this.sendAck();
    this.socket.resume();
    this.pump();
  }

  private onSynchronizedSegment(segment: TcpSegment): void {
    const flags = segment.flags;
    const length = segmentLength(segment);
    const window = seqDiff(this.rightEdge, this.rcvNxt);
    const start = seqDiff(segment.seq, this.rcvNxt);

    if (flags & TcpFlag.rst) {
      if (start >= 0 && start <= window) this.abort(false, true);
      return;
    }
    if (flags & TcpFlag.syn) {
      // Our SYN-ACK was lost and the guest repeats its SYN; any other SYN gets a challenge ACK.
      if (this.state === 'syn-received' && segment.seq === this.irs) this.sendSynAck();
      else this.sendAck();
      return;
    }
    // Entirely old (a retransmission or keepalive), or beyond the window: ACK and drop.
    if ((length > 0 && start + length <= 0) || (length === 0 && start < 0) || start > window) {
      if (start > window) this.link.diagnostics.count('tcp-beyond-window');
      this.sendAck();
      return;
    }
    if (!(flags & TcpFlag.ack)) return this.link.diagnostics.drop('tcp-no-ack');
    if (!this.processAck(segment)) return;
    if (this.state === 'closed') return;

    if (start > 0) {
      // A gap: this data is not next. Drop it; the duplicate ACK makes the guest resend.
      this.link.diagnostics.count('tcp-out-of-order');
      this.sendAck();
      return;
    }
    let payload = segment.payload;
    if (start < 0) payload = payload.subarray(-start);
    if (payload.length > 0 && !this.acceptData(payload)) return;

    const finSeq = seqAdd(segment.seq, segment.payload.length);
    if (flags & TcpFlag.fin && finSeq === this.rcvNxt) this.onGuestFin();
    this.pump();
  }

  /** Writes in-order guest data to the host socket; false if the connection ended or the data was dropped. */
  private acceptData(payload: Uint8Array): boolean {
    if (!RECEIVING_STATES.has(this.state)) return true; // after the guest's FIN: ignore
    if (this.socket.destroyed || !this.socket.writable) {
      this.link.diagnostics.count('tcp-data-after-host-close');
      this.abort(true);
      return false;
    }
    if (this.socket.writableLength > RECEIVE_HARD_LIMIT) {
      this.link.diagnostics.drop('tcp-guest-overran-window');
      this.sendAck();
      return false;
    }
    this.socket.write(Buffer.from(payload));
    this.rcvNxt = seqAdd(this.rcvNxt, payload.length);
    this.queueAck();
    return true;
  }

  private onGuestFin(): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.socket.end(); // half-close: the host may go on sending
    this.sendAck();
    switch (this.state) {
      case 'syn-received':
      case 'established':
        this.state = 'close-wait';
        break;
      case 'fin-wait-1':
        this.state = 'closing';
        break;
      case 'fin-wait-2':
        this.enterTimeWait();
        break;
    }
  }

  /** Processes the ACK field and window; false if the segment must be dropped. */
  private processAck(segment: TcpSegment): boolean {
    const ack = segment.ack;
    if (seqDiff(ack, this.sndMax) > 0) {
      this.link.diagnostics.count('tcp-ack-of-unsent');
      this.sendAck();
      return false;
    }
    const newWindow = segment.window << this.sndScale;
    const advanced = seqDiff(ack, this.sndUna);
    if (advanced < 0) return true; // an old ACK
    if (advanced === 0) {
      const inFlight = seqDiff(this.sndMax, this.sndUna);
      if (inFlight > 0 && segmentLength(segment) === 0 && newWindow === this.sndWnd) {
        if (++this.dupAcks === DUP_ACK_THRESHOLD && this.recoverSeq === null) this.fastRetransmit(inFlight);
      }
      this.sndWnd = newWindow;
      return true;
    }

    if (this.state === 'syn-received') {
      this.state = 'established';
      this.retransmissions = 0;
    }
    this.sndUna = ack;
    if (seqDiff(this.sndNxt, ack) < 0) this.sndNxt = ack;
    const dataAcked = Math.max(0, Math.min(seqDiff(ack, this.queueSeq), this.sendQueue.length));
    if (dataAcked > 0) {
      this.sendQueue.discard(dataAcked);
      this.queueSeq = seqAdd(this.queueSeq, dataAcked);
    }
    if (this.rttSample && seqDiff(ack, this.rttSample.endSeq) >= 0) {
      this.updateRto(performance.now() - this.rttSample.sentAt);
      this.rttSample = null;
    }
    if (this.retransmissions > 0 && this.srtt > 0) {
      // The guest is taking data again after a timeout: drop the backoff. Losses here come
      // from a full receive ring, not a congested path, so waiting longer gains nothing.
      this.rto = this.computeRto();
    }
    this.retransmissions = 0;
    this.dupAcks = 0;
    this.growCongestionWindow(advanced);
    this.sndWnd = newWindow;
    if (this.sndUna === this.sndMax) this.clearTimer();
    else this.armTimer();

    if (this.finSeq !== null && seqDiff(ack, this.finSeq) > 0) this.onFinAcked();
    if (this.socketPausedByUs && this.sendQueue.length < SEND_BUFFER / 2 && this.state !== 'closed') {
      this.socketPausedByUs = false;
      this.socket.resume();
    }
    return true;
  }

  private growCongestionWindow(acked: number): void {
    if (this.recoverSeq !== null) {
      if (seqDiff(this.sndUna, this.recoverSeq) >= 0) {
        this.recoverSeq = null;
        this.cwnd = this.ssthresh;
      } else {
        this.retransmitFirst(); // a partial ACK: the next hole is lost too
      }
      return;
    }
    // Slow start counts the bytes acknowledged (RFC 3465), up to one segment per ACK: a guest
    // taking 64 KiB segments acknowledges each with one ACK.
    const segment = this.maxSegment();
    if (this.cwnd < this.ssthresh) this.cwnd += Math.min(acked, segment);
    else this.cwnd += Math.max(1, Math.floor((this.mss * this.mss) / this.cwnd));
    this.cwnd = Math.min(this.cwnd, MAX_CWND_SEGMENTS * segment);
  }

  private fastRetransmit(inFlight: number): void {
    this.link.diagnostics.count('tcp-fast-retransmit');
    this.ssthresh = Math.max(Math.floor(inFlight / 2), 2 * this.mss);
    this.cwnd = this.ssthresh;
    this.recoverSeq = this.sndMax;
    this.rttSample = null;
    this.retransmitFirst();
  }

  private updateRto(sample: number): void {
    if (this.srtt === 0) {
      this.srtt = sample;
      this.rttvar = sample / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - sample);
      this.srtt = 0.875 * this.srtt + 0.125 * sample;
    }
    this.rto = this.computeRto();
  }

  private computeRto(): number {
    return Math.min(MAX_RTO_MS, Math.max(MIN_RTO_MS, this.srtt + Math.max(10, 4 * this.rttvar)));
  }

  private onFinAcked(): void {
    switch (this.state) {
      case 'fin-wait-1':
        this.state = 'fin-wait-2';
        break;
      case 'closing':
        this.enterTimeWait();
        break;
      case 'last-ack':
        this.finish();
        break;
    }
  }

  // ------------------------------------------------------------------ endings

  private enterTimeWait(): void {
    this.state = 'time-wait';
    this.clearTimer();
    this.timer = setTimeout(() => this.finish(), TIME_WAIT_MS).unref();
  }

  /** Both directions closed cleanly. The host socket closes itself once its writes are flushed. */
  private finish(): void {
    this.clearTimer();
    this.state = 'closed';
    this.onRelease(this);
  }

  /** The host refused (or never answered) the guest's connection: RST the guest's SYN. */
  private refuse(): void {
    this.clearTimer();
    this.state = 'closed';
    const { remoteIp, guestIp } = this.endpoints;
    const rst: OutgoingSegment = { srcPort: this.endpoints.remotePort, dstPort: this.endpoints.guestPort, seq: 0, ack: this.rcvNxt, flags: TcpFlag.rst | TcpFlag.ack, window: 0 };
    this.link.sendIpv4(remoteIp, guestIp, PROTO_TCP, buildTcp(remoteIp, guestIp, rst));
    this.socket.destroy();
    this.onRelease(this);
  }

  /**
   * Ends the connection at once: optionally RST the guest, and reset (rather than just close)
   * the host socket when the guest reset the connection.
   */
  abort(resetGuest: boolean, resetHost = false): void {
    if (this.state === 'closed') return;
    if (resetGuest && this.synchronized) this.sendRst();
    this.clearTimer();
    this.state = 'closed';
    if (resetHost && !this.socket.destroyed && !this.socket.connecting) this.socket.resetAndDestroy();
    else this.socket.destroy();
    this.onRelease(this);
  }

  /** Stack shutdown: drop everything without telling the guest. */
  destroy(): void {
    this.clearTimer();
    this.state = 'closed';
    this.socket.destroy();
  }
}
