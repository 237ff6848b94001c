import { Transform, type TransformCallback } from 'node:stream';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import type { Codec } from './codec.js';
import type { ChunkCompressor, CompressorOptions } from './chunked.js';
import { asCompressError, asDecompressError, checkMaxOutput, decompressError, outputLimitError } from './guard.js';

type Binding = typeof ZstdBinding;

/*
 * Standard zstd frames (RFC 8878) via zstd-napi's native binding, readable by `zstd -d`. Frames
 * carry the optional XXH64 content checksum: it costs ~6% of compression speed, and makes this
 * layer reject any corruption, including when an operator decompresses an object by hand with the
 * zstd CLI. The binding is used directly (not zstd-napi's high-level classes) because decoding
 * needs an output cap that those classes do not offer.
 */

let loading: Promise<Binding> | undefined;

/** Native module loaded on first use, so processes that never touch zstd do not pay for it. */
function loadBinding(): Promise<Binding> {
  loading ??= import('zstd-napi/binding.js').then((m) => (m as unknown as { default: Binding }).default);
  return loading;
}

/** Big enough to amortize native calls, small enough that streams stay responsive. */
const STREAM_OUT = 1 << 20;

export function createZstdCodec(level: number): Codec {
  return {
    name: 'zstd',
    level,
    extension: 'zst',
    async compress(input) {
      const zstd = await loadBinding();
      try {
        return compressBuffer(zstd, input, level);
      } catch (err) {
        throw asCompressError('zstd', err);
      }
    },
    async decompress(input, maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      const zstd = await loadBinding();
      try {
        return decompressBuffer(zstd, input, maxOutput, objectName);
      } catch (err) {
        throw asDecompressError(objectName, 'zstd', err);
      }
    },
    createCompressStream() {
      return new ZstdCompressStream(level);
    },
    async createCompressor(inputSize, options: CompressorOptions = {}) {
      const zstd = await loadBinding();
      try {
        return new ZstdChunkCompressor(zstd, level, inputSize, threadsOf(options));
      } catch (err) {
        throw asCompressError('zstd', err);
      }
    },
    createDecompressStream(maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      return new ZstdDecompressStream(maxOutput, objectName);
    },
  };
}

function newCCtx(zstd: Binding, level: number): ZstdBinding.CCtx {
  const cctx = new zstd.CCtx();
  cctx.setParameter(zstd.CParameter.compressionLevel, level);
  cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  return cctx;
}

/**
 * With threads, compressStream2(continue) copies the input into a job and returns while zstd's
 * threads compress it, so the caller's hashing and I/O overlap compression. The frame is the same
 * standard single frame (content size and checksum included); its bytes differ from a
 * single-threaded run's, which nothing depends on (keys carry the SHA-256 of the original bytes).
 */
function newThreadedCCtx(zstd: Binding, level: number, threads: number): ZstdBinding.CCtx {
  const cctx = newCCtx(zstd, level);
  if (threads > 0) {
    cctx.setParameter(zstd.CParameter.nbWorkers, threads);
    cctx.setParameter(zstd.CParameter.jobSize, JOB_BYTES);
  }
  return cctx;
}

/** Reused across calls: compress2 is synchronous, so no two calls can interleave on one context. */
const cctxByLevel = new Map<number, ZstdBinding.CCtx>();
let sharedDCtx: ZstdBinding.DCtx | undefined;

function compressBuffer(zstd: Binding, input: Buffer, level: number): Buffer {
  let cctx = cctxByLevel.get(level);
  if (cctx === undefined) {
    cctx = newCCtx(zstd, level);
    cctxByLevel.set(level, cctx);
  }
  const dest = Buffer.allocUnsafe(zstd.compressBound(input.length));
  const length = cctx.compress2(dest, input);
  // Don't pin a worst-case-sized allocation behind a small result.
  return length < dest.length * 0.75 ? Buffer.from(dest.subarray(0, length)) : dest.subarray(0, length);
}

function decompressBuffer(zstd: Binding, input: Buffer, maxOutput: number, objectName?: string): Buffer {
  if (input.length === 0) throw decompressError(objectName, 'empty input is not a zstd frame');
  sharedDCtx ??= new zstd.DCtx();
  const dctx = sharedDCtx;
  dctx.reset(zstd.ResetDirective.sessionOnly);
  // Fast path: one frame that states its size (what compress() writes). The stated size is
  // checked against the limit before anything is allocated; decompress() fails if the frame
  // decodes to any other size.
  let contentSize: number | null = null;
  try {
    if (zstd.findFrameCompressedSize(input) === input.length) contentSize = zstd.getFrameContentSize(input);
  } catch {
    // Not a single well-formed frame: the incremental path below reports what is wrong with it.
  }
  if (contentSize !== null) {
    if (contentSize > maxOutput) throw outputLimitError(objectName, 'zstd', maxOutput);
    const out = Buffer.allocUnsafe(contentSize);
    const n = dctx.decompress(out, input);
    if (n !== contentSize) throw decompressError(objectName, `zstd frame decoded to ${n} bytes, header says ${contentSize}`);
    return out;
  }
  // Frames without a size (written by a stream) or several frames: decode incrementally.
  const parts: Buffer[] = [];
  const state = { produced: 0, inFrame: false, sawFrameEnd: false };
  decodeInto(dctx, input, maxOutput, objectName, state, (chunk) => parts.push(chunk));
  if (state.inFrame || !state.sawFrameEnd) throw decompressError(objectName, 'truncated zstd frame');
  return Buffer.concat(parts, state.produced);
}

interface DecodeState {
  produced: number;
  inFrame: boolean;
  sawFrameEnd: boolean;
}

function decodeInto(
  dctx: ZstdBinding.DCtx,
  input: Buffer,
  maxOutput: number,
  objectName: string | undefined,
  state: DecodeState,
  emit: (chunk: Buffer) => void,
): void {
  let src = input;
  // Never ask for more than one byte past the limit: that is enough to detect the overflow.
  let out = Buffer.allocUnsafe(Math.min(STREAM_OUT, maxOutput - state.produced + 1));
  for (;;) {
    const [ret, produced, consumed] = dctx.decompressStream(out, src);
    const filled = produced === out.length;
    src = src.subarray(consumed);
    if (produced > 0) {
      state.produced += produced;
      if (state.produced > maxOutput) throw outputLimitError(objectName, 'zstd', maxOutput);
      emit(out.subarray(0, produced));
      out = Buffer.allocUnsafe(Math.min(STREAM_OUT, maxOutput - state.produced + 1));
    }
    if (ret === 0) state.sawFrameEnd = true;
    // A full output buffer may mean more output is pending inside the decoder, even with no input left.
    if (src.length === 0 && (!filled || ret === 0)) {
      state.inFrame = ret !== 0;
      return;
    }
    // No progress at all with input left means the decoder is stuck on bad data.
    if (produced === 0 && consumed === 0) throw decompressError(objectName, 'zstd decoder made no progress');
  }
}

/** Transform that loads the binding on its first chunk; the rest is synchronous native work. */
abstract class LazyZstdTransform extends Transform {
  protected zstd: Binding | undefined;

  protected abstract onChunk(chunk: Buffer): void;
  protected abstract onEnd(): void;
  protected abstract mapError(err: unknown): Error;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.withBinding(() => this.onChunk(chunk), done);
  }

  override _flush(done: TransformCallback): void {
    this.withBinding(() => this.onEnd(), done);
  }

  private withBinding(work: () => void, done: TransformCallback): void {
    const run = (): void => {
      try {
        work();
      } catch (err) {
        done(this.mapError(err));
        return;
      }
      done();
    };
    if (this.zstd !== undefined) {
      run();
      return;
    }
    loadBinding().then(
      (zstd) => {
        this.zstd = zstd;
        run();
      },
      (err: unknown) => done(this.mapError(err)),
    );
  }
}

class ZstdCompressStream extends LazyZstdTransform {
  private cctx: ZstdBinding.CCtx | undefined;
  private scratch: Buffer | undefined;

  constructor(private readonly level: number) {
    super();
  }

  protected onChunk(chunk: Buffer): void {
    this.run(chunk, false);
  }

  protected onEnd(): void {
    this.run(Buffer.alloc(0), true);
  }

  protected mapError(err: unknown): Error {
    return asCompressError('zstd', err);
  }

  private run(chunk: Buffer, end: boolean): void {
    const zstd = this.zstd as Binding;
    this.cctx ??= newCCtx(zstd, this.level);
    // Compressed output is small: copying it out of one reused buffer is cheaper than a fresh
    // 1 MiB allocation per call.
    this.scratch ??= Buffer.allocUnsafe(STREAM_OUT);
    const out = this.scratch;
    const directive = end ? zstd.EndDirective.end : zstd.EndDirective.continue;
    let src = chunk;
    for (;;) {
      const [ret, produced, consumed] = this.cctx.compressStream2(out, src, directive);
      if (produced > 0) this.push(Buffer.from(out.subarray(0, produced)));
      src = src.subarray(consumed);
      // `ret` is what remains to flush; while ending, loop until the frame epilogue is out.
      if (src.length === 0 && (!end || ret === 0)) return;
    }
  }
}

/** Contexts of finished one-pass compressions, reused: a context costs more to set up than a segment's first chunk. */
const idleCCtx = new Map<string, ZstdBinding.CCtx[]>();

/** zstd refuses more; a setting beyond the machine's cores only adds waiting threads. */
const MAX_THREADS = 16;

/**
 * A job is what one zstd thread compresses at a time. zstd's default is 4 windows (8 MiB at level 3),
 * so a 16 MiB segment would keep only two threads busy at the very end; 1 MiB jobs let the threads
 * start after the first MiB arrives. Measured on 16 MiB of text-like data at level 3: the same size
 * within 1%.
 */
const JOB_BYTES = 1 << 20;

function threadsOf(options: CompressorOptions): number {
  const t = options.threads ?? 0;
  if (!Number.isInteger(t) || t < 0) throw new RangeError(`zstd threads must be an integer >= 0, got ${t}`);
  return Math.min(t, MAX_THREADS);
}

/**
 * Output buffer of every ZstdChunkCompressor: compressStream2 is synchronous and what it wrote is
 * copied out before it returns, so one per process is enough. One per compressor cost backup-push
 * 1 MiB of fresh external memory per 8 MiB pack, which drives V8's mark-compacts.
 */
let sharedScratch: Buffer | undefined;

/**
 * Synchronous native work per chunk on a context of its own (uploads run in parallel in one process).
 * With the input size pledged the frame records its content size, like compress() writes, so
 * decompress() takes its single-allocation path for these objects too.
 */
class ZstdChunkCompressor implements ChunkCompressor {
  readonly parts: Buffer[] = [];
  length = 0;
  private cctx: ZstdBinding.CCtx | undefined;

  private readonly poolKey: string;

  constructor(
    private readonly zstd: Binding,
    level: number,
    inputSize: number | undefined,
    threads: number,
  ) {
    this.poolKey = `${level}/${threads}`;
    this.cctx = idleCCtx.get(this.poolKey)?.pop() ?? newThreadedCCtx(zstd, level, threads);
    this.cctx.reset(zstd.ResetDirective.sessionOnly);
    if (inputSize !== undefined) this.cctx.setPledgedSrcSize(inputSize);
  }

  update(chunk: Buffer): Promise<void> {
    return this.guarded(() => this.run(chunk, false));
  }

  end(): Promise<void> {
    return this.guarded(() => {
      this.run(Buffer.alloc(0), true);
      const list = idleCCtx.get(this.poolKey) ?? [];
      if (this.cctx && list.length < 2) list.push(this.cctx);
      idleCCtx.set(this.poolKey, list);
      this.cctx = undefined;
    });
  }

  private guarded(work: () => void): Promise<void> {
    try {
      work();
      return Promise.resolve();
    } catch (err) {
      // A context that failed mid-frame is not returned to the pool.
      this.cctx = undefined;
      return Promise.reject(asCompressError('zstd', err));
    }
  }

  private run(chunk: Buffer, end: boolean): void {
    const cctx = this.cctx;
    if (cctx === undefined) throw new Error('the compressor was ended or failed');
    const directive = end ? this.zstd.EndDirective.end : this.zstd.EndDirective.continue;
    let src = chunk;
    for (;;) {
      const scratch = (sharedScratch ??= Buffer.allocUnsafe(STREAM_OUT));
      const [ret, produced, consumed] = cctx.compressStream2(scratch, src, directive);
      if (produced > 0) {
        // allocUnsafe + copy, not Buffer.from(subarray): that one goes through the typed-array
        // constructor, which zero-fills its fresh memory before copying into it.
        const part = Buffer.allocUnsafe(produced);
        scratch.copy(part, 0, 0, produced);
        this.parts.push(part);
        this.length += produced;
      }
      src = src.subarray(consumed);
      if (src.length === 0 && (!end || ret === 0)) return;
    }
  }
}

class ZstdDecompressStream extends LazyZstdTransform {
  private dctx: ZstdBinding.DCtx | undefined;
  private readonly state: DecodeState = { produced: 0, inFrame: false, sawFrameEnd: false };

  constructor(
    private readonly maxOutput: number,
    private readonly objectName: string | undefined,
  ) {
    super();
  }

  protected onChunk(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.dctx ??= new (this.zstd as Binding).DCtx();
    decodeInto(this.dctx, chunk, this.maxOutput, this.objectName, this.state, (out) => this.push(out));
  }

  protected onEnd(): void {
    if (this.state.inFrame || !this.state.sawFrameEnd) {
      throw decompressError(this.objectName, 'truncated zstd frame');
    }
  }

  protected mapError(err: unknown): Error {
    return asDecompressError(this.objectName, 'zstd', err);
  }
}

/**
 * Decodes `input` into `out` (a buffer the caller reuses, e.g. one per restore worker) and returns
 * the decoded length. The single-frame-with-size path (what compress() and the one-pass compressor
 * write) decodes in place with no allocation; anything else decodes as decompress() does, capped
 * at out.length, and is copied in.
 */
export async function decompressZstdInto(input: Buffer, out: Buffer, objectName?: string): Promise<number> {
  const zstd = await loadBinding();
  try {
    if (input.length === 0) throw decompressError(objectName, 'empty input is not a zstd frame');
    let contentSize: number | null = null;
    try {
      if (zstd.findFrameCompressedSize(input) === input.length) contentSize = zstd.getFrameContentSize(input);
    } catch {
      // Not a single well-formed frame: decompressBuffer reports what is wrong with it.
    }
    if (contentSize === null) {
      const whole = decompressBuffer(zstd, input, out.length, objectName);
      return whole.copy(out);
    }
    if (contentSize > out.length) throw outputLimitError(objectName, 'zstd', out.length);
    sharedDCtx ??= new zstd.DCtx();
    sharedDCtx.reset(zstd.ResetDirective.sessionOnly);
    const n = sharedDCtx.decompress(out.subarray(0, contentSize), input);
    if (n !== contentSize) throw decompressError(objectName, `zstd frame decoded to ${n} bytes, header says ${contentSize}`);
    return n;
  } catch (err) {
    throw asDecompressError(objectName, 'zstd', err);
  }
}
