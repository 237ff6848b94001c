/**
 * A FIFO of byte chunks for incremental parsers (lz4 frames, encrypted chunks) that receive input
 * split at arbitrary points. Appending never copies; taking copies only when the requested range
 * spans more than one chunk, so parsing stays linear in the input size.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Removes and returns exactly `n` bytes; the caller checks `length` first. */
  take(n: number): Buffer {
    if (n > this.total) throw new RangeError(`ByteQueue.take(${n}) with only ${this.total} bytes queued`);
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[this.head] as Buffer;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      this.consumeFront(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head] as Buffer;
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      this.consumeFront(part);
    }
    return out;
  }

  /** Returns the first `n` bytes without removing them. */
  peek(n: number): Buffer {
    if (n > this.total) throw new RangeError(`ByteQueue.peek(${n}) with only ${this.total} bytes queued`);
    const first = this.chunks[this.head];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    for (let i = this.head; filled < n; i++) {
      const chunk = this.chunks[i] as Buffer;
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
    }
    return out;
  }

  /** Drops up to `n` bytes without copying them; returns how many were dropped. */
  skip(n: number): number {
    const dropped = Math.min(n, this.total);
    let left = dropped;
    while (left > 0) {
      const chunk = this.chunks[this.head] as Buffer;
      const part = Math.min(chunk.length, left);
      this.consumeFront(part);
      left -= part;
    }
    return dropped;
  }

  private consumeFront(n: number): void {
    const first = this.chunks[this.head] as Buffer;
    this.total -= n;
    if (n === first.length) {
      this.chunks[this.head] = EMPTY;
      this.head++;
      // Compact now and then so the array does not grow without bound on long streams.
      if (this.head > 64 && this.head * 2 > this.chunks.length) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    } else {
      this.chunks[this.head] = first.subarray(n);
    }
  }
}

const EMPTY = Buffer.alloc(0);
