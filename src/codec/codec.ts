import type { Transform } from 'node:stream';
import type { ChunkCompressor, CompressorOptions } from './chunked.js';
import { ConfigError, IntegrityError } from '../common/errors.js';
import { createGzipCodec, createBrotliCodec } from './zlib.js';
import { createLz4Codec } from './lz4.js';
import { createNoneCodec } from './none.js';
import { createZstdCodec } from './zstd.js';

export type CodecName = 'zstd' | 'lz4' | 'gzip' | 'brotli' | 'none';
export type CodecExtension = 'zst' | 'lz4' | 'gz' | 'br' | '';

/**
 * One compression format at one level. Decoding never depends on the level, and the codec used to
 * decode an object is always chosen from the object itself (its extension or recorded codec name),
 * never from the current configuration, which may have changed since the object was written.
 *
 * `maxOutput` bounds the decompressed size: exceeding it (corrupt input or a decompression bomb)
 * is an IntegrityError, raised before the excess is allocated where the format allows it.
 * `objectName` only goes into error messages: `unable to decompress object '<objectName>': ...`.
 */
export interface Codec {
  readonly name: CodecName;
  readonly level: number;
  readonly extension: CodecExtension;
  compress(input: Buffer): Promise<Buffer>;
  decompress(input: Buffer, maxOutput: number, objectName?: string): Promise<Buffer>;
  createCompressStream(): Transform;
  /** One-pass compression of chunks as they are read; `inputSize`, when known, goes into the frame. */
  createCompressor(inputSize?: number, options?: CompressorOptions): Promise<ChunkCompressor>;
  createDecompressStream(maxOutput: number, objectName?: string): Transform;
}

export interface CompressionSpec {
  name: CodecName;
  level: number;
}

interface CodecInfo {
  extension: CodecExtension;
  minLevel: number;
  maxLevel: number;
  defaultLevel: number;
  create: (level: number) => Codec;
}

/*
 * Default levels, chosen from bench/codecs.mjs on real PostgreSQL 15 WAL segments (pgbench OLTP,
 * pgbench bulk load, random md5 text) on this project's 2-core machines; research/spike.md §4
 * measured the same. archive_command must keep up with WAL generation (a bulk load wrote
 * 137 MB/s here) and poorly compressible WAL is where it falls behind, so a level earns its place
 * only if its ratio gain pays for its speed:
 *
 * - zstd 1, not 3 (pgBackRest's default). On WAL, level 3 is within a few percent of level 1,
 *   and not always ahead: ratio 15.73 vs 15.76 and 15.24 vs 14.63 on two OLTP segments, 35.1 vs
 *   35.7 on bulk load, 2.37 vs 2.46 on random text. Level 1 is as fast or faster on OLTP WAL
 *   (~0.9-1.3 GB/s) and 1.5-4x faster on random-text WAL (~250-520 vs 130-210 MB/s);
 *   decompression runs at the same speed. Level 6 gains 8-12% in ratio for a quarter of the
 *   speed; levels up to 19 stay available for those who trade CPU for space.
 * - gzip 1: ratio 12.2 vs 13.3 for level 6 on OLTP WAL, at 2.9x the speed (~410 vs ~140 MB/s;
 *   52 vs 38 MB/s on random text). gzip is here for compatibility; zstd 1 beats it on both axes.
 * - brotli 1: ratio 14.2 on OLTP WAL at ~600 MB/s. Quality 4 has the best ratio measured (18.2)
 *   but runs at 110-170 MB/s, and ~36 MB/s on random text: too slow to be a default.
 * - lz4: lz4-napi has a single (fast) level.
 */
const CODECS: Record<CodecName, CodecInfo> = {
  zstd: { extension: 'zst', minLevel: 1, maxLevel: 19, defaultLevel: 1, create: createZstdCodec },
  lz4: { extension: 'lz4', minLevel: 1, maxLevel: 1, defaultLevel: 1, create: createLz4Codec },
  gzip: { extension: 'gz', minLevel: 1, maxLevel: 9, defaultLevel: 1, create: createGzipCodec },
  brotli: { extension: 'br', minLevel: 0, maxLevel: 11, defaultLevel: 1, create: createBrotliCodec },
  none: { extension: '', minLevel: 0, maxLevel: 0, defaultLevel: 0, create: createNoneCodec },
};

export const CODEC_NAMES: readonly CodecName[] = Object.keys(CODECS) as CodecName[];

export function isCodecName(value: string): value is CodecName {
  return Object.hasOwn(CODECS, value);
}

/** Valid levels and the default of a codec, for documentation and `--help`. */
export function codecLevels(name: CodecName): { min: number; max: number; default: number } {
  const info = CODECS[name];
  return { min: info.minLevel, max: info.maxLevel, default: info.defaultLevel };
}

/** Parses the `compression` setting: `<codec>` or `<codec>:<level>`, e.g. `zstd`, `zstd:3`, `none`. */
export function parseCompression(text: string): CompressionSpec {
  const fail = (reason: string): ConfigError => new ConfigError(`unable to parse compression '${text}': ${reason}`);
  const match = /^([a-z0-9]+)(?::(-?[0-9]+))?$/.exec(text);
  if (!match) throw fail(`expected <codec> or <codec>:<level>, codec one of ${CODEC_NAMES.join(', ')}`);
  const name = match[1] as string;
  if (!isCodecName(name)) throw fail(`unknown codec '${name}', expected one of ${CODEC_NAMES.join(', ')}`);
  const info = CODECS[name];
  if (match[2] === undefined) return { name, level: info.defaultLevel };
  const level = Number(match[2]);
  if (level < info.minLevel || level > info.maxLevel) {
    throw fail(
      info.minLevel === info.maxLevel
        ? `${name} has a single level (${info.minLevel})`
        : `${name} level must be ${info.minLevel}..${info.maxLevel}`,
    );
  }
  return { name, level };
}

export function formatCompression(spec: CompressionSpec): string {
  return spec.name === 'none' ? 'none' : `${spec.name}:${spec.level}`;
}

/** The codec for `name` at `level` (default level if omitted). Loads no native module yet. */
export function getCodec(name: CodecName, level?: number): Codec {
  const info = CODECS[name] as CodecInfo | undefined;
  if (info === undefined) throw new ConfigError(`unable to select codec '${String(name)}': unknown codec`);
  const lvl = level ?? info.defaultLevel;
  if (!Number.isInteger(lvl) || lvl < info.minLevel || lvl > info.maxLevel) {
    throw new ConfigError(`unable to select codec '${name}': level ${lvl} is outside ${info.minLevel}..${info.maxLevel}`);
  }
  return info.create(lvl);
}

/**
 * The codec that decodes an object stored with file extension `extension` (without the dot; ''
 * for uncompressed). An unknown extension means the archive holds something this version cannot
 * decode, which must stop a restore rather than be skipped: IntegrityError.
 */
export function codecFromExtension(extension: string, objectName?: string): Codec {
  for (const name of CODEC_NAMES) {
    if (CODECS[name].extension === extension) return getCodec(name);
  }
  throw new IntegrityError(`unable to decode object '${objectName ?? extension}': unknown compression extension '${extension}'`);
}
