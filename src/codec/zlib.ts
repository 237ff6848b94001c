import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Codec, CodecName } from './codec.js';
import { compressorFromStream } from './chunked.js';
import { GuardedTransform, asCompressError, asDecompressError, checkMaxOutput, outputLimitError } from './guard.js';

/*
 * gzip (RFC 1952, readable by `gzip -d`; its CRC-32 and length trailer make this layer detect
 * corruption) and brotli (RFC 7932; the format has no checksum, so a flipped bit may decode to
 * wrong bytes, which the caller's SHA-256 catches). Both run on libuv's thread pool through
 * node:zlib. Neither gets a size hint, so buffer and stream output are the same bytes.
 */

type OneShot = (buf: Buffer, opts: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;

interface ZlibFlavor {
  name: CodecName;
  extension: 'gz' | 'br';
  compress: OneShot;
  decompress: OneShot;
  compressOptions: (level: number) => zlib.ZlibOptions | zlib.BrotliOptions;
  createCompress: (opts: zlib.ZlibOptions | zlib.BrotliOptions) => zlib.Gzip | zlib.BrotliCompress;
  createDecompress: () => zlib.Gunzip | zlib.BrotliDecompress;
}

const gzipFlavor: ZlibFlavor = {
  name: 'gzip',
  extension: 'gz',
  compress: promisify(zlib.gzip) as OneShot,
  decompress: promisify(zlib.gunzip) as OneShot,
  compressOptions: (level) => ({ level }),
  createCompress: (opts) => zlib.createGzip(opts as zlib.ZlibOptions),
  createDecompress: () => zlib.createGunzip(),
};

const brotliFlavor: ZlibFlavor = {
  name: 'brotli',
  extension: 'br',
  compress: promisify(zlib.brotliCompress) as OneShot,
  decompress: promisify(zlib.brotliDecompress) as OneShot,
  compressOptions: (level) => ({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } }),
  createCompress: (opts) => zlib.createBrotliCompress(opts as zlib.BrotliOptions),
  createDecompress: () => zlib.createBrotliDecompress(),
};

export function createGzipCodec(level: number): Codec {
  return createZlibCodec(gzipFlavor, level);
}

export function createBrotliCodec(level: number): Codec {
  return createZlibCodec(brotliFlavor, level);
}

function isTooLarge(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ERR_BUFFER_TOO_LARGE';
}

function createZlibCodec(flavor: ZlibFlavor, level: number): Codec {
  const name = flavor.name;
  const compressStream = (): GuardedTransform =>
    new GuardedTransform(flavor.createCompress(flavor.compressOptions(level)), {
      mapError: (err) => asCompressError(name, err),
    });
  return {
    name,
    level,
    extension: flavor.extension,
    async compress(input) {
      try {
        return await flavor.compress(input, flavor.compressOptions(level));
      } catch (err) {
        throw asCompressError(name, err);
      }
    },
    async decompress(input, maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      let out: Buffer;
      try {
        // zlib refuses a cap of 0; the length check below covers that case.
        out = await flavor.decompress(input, { maxOutputLength: Math.max(1, maxOutput) });
      } catch (err) {
        if (isTooLarge(err)) throw outputLimitError(objectName, name, maxOutput);
        throw asDecompressError(objectName, name, err);
      }
      if (out.length > maxOutput) throw outputLimitError(objectName, name, maxOutput);
      return out;
    },
    createCompressStream() {
      return compressStream();
    },
    createCompressor() {
      return Promise.resolve(compressorFromStream(compressStream()));
    },
    createDecompressStream(maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      return new GuardedTransform(flavor.createDecompress(), {
        limit: { maxOutput, error: () => outputLimitError(objectName, name, maxOutput) },
        mapError: (err) => asDecompressError(objectName, name, err),
      });
    },
  };
}
