/**
 * XXH32, needed only for the LZ4 frame format: its header checksum is mandatory, and frames made
 * by other producers (the `lz4` CLI) carry block and content checksums that we verify. lz4-napi
 * does not expose xxHash, so this is a straight port of the reference algorithm (xxHash spec,
 * "XXH32 algorithm description"), all arithmetic mod 2^32.
 */

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);
}

/** Incremental XXH32: feed any number of `update` calls, then `digest` once. */
export class Xxh32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private totalLen = 0;
  /** Bytes of an incomplete 16-byte stripe carried over between updates. */
  private readonly pending = Buffer.alloc(16);
  private pendingLen = 0;

  constructor(private readonly seed = 0) {
    this.v1 = (seed + P1 + P2) | 0;
    this.v2 = (seed + P2) | 0;
    this.v3 = seed | 0;
    this.v4 = (seed - P1) | 0;
  }

  update(data: Uint8Array): this {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    this.totalLen += buf.length;
    let pos = 0;
    if (this.pendingLen > 0) {
      const fill = Math.min(16 - this.pendingLen, buf.length);
      buf.copy(this.pending, this.pendingLen, 0, fill);
      this.pendingLen += fill;
      pos = fill;
      if (this.pendingLen < 16) return this;
      this.stripe(this.pending, 0);
      this.pendingLen = 0;
    }
    const end = buf.length - 16;
    let v1 = this.v1;
    let v2 = this.v2;
    let v3 = this.v3;
    let v4 = this.v4;
    for (; pos <= end; pos += 16) {
      v1 = round(v1, buf.readInt32LE(pos));
      v2 = round(v2, buf.readInt32LE(pos + 4));
      v3 = round(v3, buf.readInt32LE(pos + 8));
      v4 = round(v4, buf.readInt32LE(pos + 12));
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
    if (pos < buf.length) {
      buf.copy(this.pending, 0, pos);
      this.pendingLen = buf.length - pos;
    }
    return this;
  }

  /** The hash as an unsigned 32-bit integer. */
  digest(): number {
    let h: number;
    if (this.totalLen >= 16) {
      h = (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0;
    } else {
      h = (this.seed + P5) | 0;
    }
    // The spec adds the length mod 2^32.
    h = (h + (this.totalLen % 0x1_0000_0000)) | 0;
    let pos = 0;
    const rest = this.pending;
    for (; pos + 4 <= this.pendingLen; pos += 4) {
      h = (h + Math.imul(rest.readInt32LE(pos), P3)) | 0;
      h = Math.imul(rotl(h, 17), P4);
    }
    for (; pos < this.pendingLen; pos++) {
      h = (h + Math.imul(rest[pos] as number, P5)) | 0;
      h = Math.imul(rotl(h, 11), P1);
    }
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }

  private stripe(buf: Buffer, pos: number): void {
    this.v1 = round(this.v1, buf.readInt32LE(pos));
    this.v2 = round(this.v2, buf.readInt32LE(pos + 4));
    this.v3 = round(this.v3, buf.readInt32LE(pos + 8));
    this.v4 = round(this.v4, buf.readInt32LE(pos + 12));
  }
}

export function xxh32(data: Uint8Array, seed = 0): number {
  return new Xxh32(seed).update(data).digest();
}
