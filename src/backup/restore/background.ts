/**
 * Work that follows a pack's writes but needs none of its bytes (a file's fsync, mode and mtime;
 * re-reading a file to hash it): run beside the next packs instead of holding the pack's buffer.
 * A few at once, so fsyncs never take every libuv thread from the writes. Errors are kept; drain()
 * waits for all and throws nothing (the caller reads `errors`).
 */
export class Background {
  private running = 0;
  private readonly queue: (() => Promise<void>)[] = [];
  private idle: (() => void)[] = [];
  readonly errors: unknown[] = [];

  constructor(private readonly width: number) {}

  push(job: () => Promise<void>): void {
    this.queue.push(job);
    this.pump();
  }

  async drain(): Promise<void> {
    while (this.running > 0 || this.queue.length > 0) await new Promise<void>((r) => this.idle.push(r));
  }

  private pump(): void {
    while (this.running < this.width && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      job()
        .catch((err: unknown) => {
          this.errors.push(err);
        })
        .finally(() => {
          this.running--;
          this.pump();
          if (this.running === 0 && this.queue.length === 0) for (const w of this.idle.splice(0)) w();
        });
    }
  }
}
