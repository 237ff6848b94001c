/**
 * SHA-256 of restored files. A file spread over several packs is hashed from the pack bytes as
 * they are written, in file order, when its pieces come in the order the packs are written (every
 * file of a full backup: backup-push fills packs in file order). A pack whose piece is not next
 * waits for the earlier pack (which unit-slots.ts guarantees is in flight). Other files (rebuilt
 * from a chain, pieces out of pack order, holes) are read back from disk once they are complete.
 * Reading 2 GB back cost about a third of a restore's system time.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { BLCKSZ, encodeIncrementalHeader, type IncrementalHeader } from '../incremental/file-format.js';
import type { Piece } from './pieces.js';

export class StreamHash {
  private readonly hash: Hash = createHash('sha256');
  private at = 0;
  private broken = false;
  private waiters: (() => void)[] = [];
  /** The digest, once every byte was hashed. */
  digest: string | undefined;

  constructor(private readonly size: number) {}

  /**
   * Hashes `bytes` (the file's bytes from `offset`) once every earlier byte was hashed. False when
   * the file was given up (an earlier pack failed): nothing is hashed then.
   */
  async add(offset: number, bytes: Buffer): Promise<boolean> {
    while (!this.broken && this.at !== offset) await new Promise<void>((r) => this.waiters.push(r));
    if (this.broken) return false;
    this.hash.update(bytes);
    this.at += bytes.length;
    if (this.at === this.size) this.digest = this.hash.digest('hex');
    this.wake();
    return true;
  }

  /** Wakes every waiter for good: the bytes it waits for will not come. */
  giveUp(): void {
    this.broken = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/**
 * Whether `pieces` can be hashed as they arrive: they cover [0, size) with no hole, in file order,
 * and no piece's pack is written before the previous piece's (`order`: a pack's place in write order).
 */
export function streamable(pieces: readonly Piece[], size: number, order: (p: Piece) => number): boolean {
  let at = 0;
  let last = -1;
  for (const p of pieces) {
    const o = order(p);
    if (p.fileOffset !== at || o < last) return false;
    at += p.length;
    last = o;
  }
  return at === size;
}

export async function hashFile(abs: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 of the INCREMENTAL file a rebuilt file came from: its header, then its blocks from where they landed. */
export async function hashIncremental(abs: string, header: IncrementalHeader): Promise<string> {
  const hash = createHash('sha256').update(encodeIncrementalHeader(header));
  const handle = await open(abs, 'r');
  try {
    const buf = Buffer.alloc(BLCKSZ);
    for (const b of header.blockNumbers) {
      const { bytesRead } = await handle.read(buf, 0, BLCKSZ, b * BLCKSZ);
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}
