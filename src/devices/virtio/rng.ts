/**
 * virtio-rng (virtio 1.2 §5.4, "entropy device"): one request queue whose device-writable
 * buffers are filled from the host's CSPRNG.
 */
import { randomFillSync } from 'node:crypto';
import type { VirtioDevice } from './mmio.js';
import type { VirtQueue } from './queue.js';

export const VIRTIO_ID_ENTROPY = 4;
/** Bytes filled per request at most, so one notify cannot make the host copy all of RAM. */
const MAX_REQUEST = 64 * 1024;

export class VirtioRng implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_ENTROPY;
  readonly features = 0n;
  readonly queueCount = 1;
  readonly queueMaxSize = 64;

  constructor(readonly name = 'virtio-rng') {}

  configRead(): number { return 0; }
  configWrite(): void { /* no configuration space */ }
  reset(): void { /* stateless */ }

  notify(_queueIndex: number, queue: VirtQueue): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      let left = MAX_REQUEST;
      let written = 0;
      for (const b of chain.writable) {
        if (left === 0) break;
        const n = Math.min(b.len, left);
        randomFillSync(queue.slice({ addr: b.addr, len: n }));
        written += n;
        left -= n;
      }
      queue.push(chain.head, written);
    }
  }
}
