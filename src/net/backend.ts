/**
 * The host side of a virtio-net device: where the guest's Ethernet frames go and where frames
 * for the guest come from. A TAP device, passt and Vessel's user-mode TCP/IP stack are the
 * backends; the device never knows which one it has.
 *
 * A backend that sets `offloads` takes and makes frames with virtio-net's offloads (checksums
 * left partial, TCPv4 segments above the MTU): the device then offers them to the guest. The
 * backend learns what the guest's driver accepted from the `guestOffloads` it is attached with.
 */
export interface NetBackend {
  /** Short name for logs, e.g. "tap0" or "user". */
  readonly name: string;
  /** True when the backend handles FrameOffload both ways (only the user-mode stack). */
  readonly offloads?: boolean;
  /**
   * A frame from the guest: the Ethernet header onward, without the virtio-net header.
   * `offload` is given only to a backend with `offloads` and only for a frame that uses one.
   */
  send(frame: Uint8Array, offload?: FrameOffload): void;
  /**
   * Sets where frames for the guest go. The backend calls `receive` once per frame, from the
   * event loop, and may do so as soon as this is called. The frame is the receiver's to keep.
   * A frame may carry an offload only if `guestOffloads()` says the guest takes it.
   */
  attach(receive: (frame: Uint8Array, offload?: FrameOffload) => void, guestOffloads?: () => GuestOffloads): void;
  /** Releases host resources (file descriptors, sockets, listeners); no frames arrive after it. */
  close(): void;
}

/** An offloaded frame, in the terms of virtio-net's header (struct virtio_net_hdr). */
export interface FrameOffload {
  /**
   * The TCP or UDP checksum was left to the other side: the field at `start + offset` (bytes from
   * the frame's first byte) holds the pseudo-header sum only, and the sum of the bytes from
   * `start` to the end completes it (VIRTIO_NET_HDR_F_NEEDS_CSUM).
   */
  checksum?: { start: number; offset: number };
  /**
   * A TCP/IPv4 frame above the MTU (TSO/GSO): the receiver takes it as segments of this many
   * payload bytes (VIRTIO_NET_HDR_GSO_TCPV4). Always comes with `checksum`.
   */
  tcp4SegmentSize?: number;
}

/** What the guest's driver accepted (both false for a backend without `offloads`). */
export interface GuestOffloads {
  /** Frames for the guest may leave the checksum partial (VIRTIO_NET_F_GUEST_CSUM). */
  checksum: boolean;
  /** Frames for the guest may be TCP/IPv4 segments above the MTU (VIRTIO_NET_F_GUEST_TSO4). */
  tcp4Segmentation: boolean;
}

export const NO_GUEST_OFFLOADS: GuestOffloads = { checksum: false, tcp4Segmentation: false };

/** Largest Ethernet frame a backend passes either way: 1500-byte MTU + 14-byte header (no FCS). */
export const MAX_ETHERNET_FRAME = 1514;
/** Largest frame with TCP segmentation offload: a 64 KiB IPv4 packet and the Ethernet header. */
export const MAX_TSO_FRAME = 14 + 65_535;
