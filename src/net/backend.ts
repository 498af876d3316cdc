/**
 * The host side of a virtio-net device: where the guest's Ethernet frames go and where frames
 * for the guest come from. A TAP device and Vessel's user-mode TCP/IP stack are the two
 * backends; the device never knows which one it has.
 */
export interface NetBackend {
  /** Short name for logs, e.g. "tap0" or "user". */
  readonly name: string;
  /** A frame from the guest: the Ethernet header onward, without the virtio-net header. */
  send(frame: Uint8Array): void;
  /**
   * Sets where frames for the guest go. The backend calls `receive` once per frame, from the
   * event loop, and may do so as soon as this is called. The frame is the receiver's to keep.
   */
  attach(receive: (frame: Uint8Array) => void): void;
  /** Releases host resources (file descriptors, sockets, listeners); no frames arrive after it. */
  close(): void;
}

/** Largest Ethernet frame a backend passes either way: 1500-byte MTU + 14-byte header (no FCS). */
export const MAX_ETHERNET_FRAME = 1514;
