/**
 * What bounds a restore's memory: a few reused pack buffers and a byte budget, handed out to the
 * packs strictly in the order they are written. Packs are decoded into buffers of this pool
 * (loadBackupObjectInto) instead of a fresh 8 MiB allocation each: a fresh buffer costs page faults,
 * zeroing in the kernel and garbage collection of external memory, about a quarter of a restore's
 * CPU when it was measured.
 *
 * In-order hand-out is what makes in-order file hashing (stream-hash.ts) safe: a pack that waits
 * for an earlier pack's bytes of the same file holds its buffer, and the earlier pack already holds
 * its own, so the earliest pack in flight never waits for anything a later one holds.
 */

/** A counting semaphore over bytes: one pack always fits, so a pack larger than the budget still runs alone. */
class ByteBudget {
  private used = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly cap: number) {}
  async acquire(n: number): Promise<void> {
    while (this.used > 0 && this.used + n > this.cap) await new Promise<void>((r) => this.waiters.push(r));
    this.used += n;
  }
  release(n: number): void {
    this.used -= n;
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Buffers of `size` bytes, at most `count`, made on first use and reused. */
class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiters: ((b: Buffer) => void)[] = [];
  private made = 0;
  constructor(
    private readonly count: number,
    private readonly size: number,
  ) {}
  async take(): Promise<Buffer> {
    const b = this.free.pop();
    if (b) return b;
    if (this.made < this.count) {
      this.made++;
      // Unsafe: every byte a pack uses is decoded into it before it is read.
      return Buffer.allocUnsafe(this.size);
    }
    return new Promise<Buffer>((r) => this.waiters.push(r));
  }
  give(b: Buffer): void {
    const w = this.waiters.shift();
    if (w) w(b);
    else this.free.push(b);
  }
}

export interface Slot {
  /** Index of the unit in write order. */
  readonly index: number;
  /** Where the pack is decoded; valid until release(). */
  readonly buffer: Buffer;
  release(): void;
}

/**
 * Hands out units 0..sizes.length-1 in order, each with a buffer and its size in the budget.
 * `slots` buffers of `bufferSize` bytes at most; `budget` bytes of pack sizes at most (beyond the
 * first). next() returns undefined when every unit was handed out.
 */
export class UnitSlots {
  private readonly pool: BufferPool;
  private readonly budget: ByteBudget;
  private handedOut = 0;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sizes: readonly number[],
    slots: number,
    bufferSize: number,
    budget: number,
  ) {
    this.pool = new BufferPool(slots, bufferSize);
    this.budget = new ByteBudget(budget);
  }

  next(): Promise<Slot | undefined> {
    // One hand-out at a time, so resources are taken in unit order (see the file comment).
    const got = this.turn.then(async (): Promise<Slot | undefined> => {
      if (this.handedOut >= this.sizes.length) return undefined;
      const index = this.handedOut++;
      const size = this.sizes[index]!;
      await this.budget.acquire(size);
      const buffer = await this.pool.take();
      let released = false;
      return {
        index,
        buffer,
        release: () => {
          if (released) return;
          released = true;
          this.pool.give(buffer);
          this.budget.release(size);
        },
      };
    });
    this.turn = got.catch(() => undefined);
    return got;
  }
}
