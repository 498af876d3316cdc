/** A FIFO of bytes kept as the chunks they arrived in (no copying on append). */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already discarded. */
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /**
   * `count` bytes starting `offset` bytes into the queue (both must lie inside it): a view into
   * the chunk that holds them when one does (valid until they are discarded), else a copy.
   */
  read(offset: number, count: number): Uint8Array {
    if (offset < 0 || count < 0 || offset + count > this.size) throw new RangeError(`ByteQueue.read(${offset}, ${count}) outside ${this.size} bytes`);
    let start = offset + this.head;
    for (const chunk of this.chunks) {
      if (start >= chunk.length) {
        start -= chunk.length;
        continue;
      }
      if (start + count <= chunk.length) return chunk.subarray(start, start + count);
      break;
    }
    const out = new Uint8Array(count);
    let skip = offset + this.head;
    let written = 0;
    for (const chunk of this.chunks) {
      if (written === count) break;
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      const n = Math.min(chunk.length - skip, count - written);
      out.set(chunk.subarray(skip, skip + n), written);
      written += n;
      skip = 0;
    }
    return out;
  }

  /** Drops the first `count` bytes (at most the whole queue). */
  discard(count: number): void {
    count = Math.min(count, this.size);
    this.size -= count;
    while (count > 0) {
      const first = this.chunks[0];
      const left = first.length - this.head;
      if (count < left) {
        this.head += count;
        return;
      }
      count -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }
}
