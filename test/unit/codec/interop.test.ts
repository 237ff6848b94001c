import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compressFrame, decompressFrame } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { compress as zstdNapiCompress, decompress as zstdNapiDecompress } from 'zstd-napi';
import { codecFromExtension, getCodec } from '../../../src/codec/codec.js';
import { sha256Hex } from '../../../src/codec/checksum.js';
import { IntegrityError } from '../../../src/common/errors.js';
import { FIXTURE_ROOT, fixtureMajors, fixtureManifest } from '../../support/fixtures.js';
import { streamThrough } from './support/streams.js';
import { randomBuffer, walLike } from './support/wal-like.js';

/*
 * Our output must be standard: other implementations decode it, and we decode theirs. Where the
 * reference CLI is installed it is the oracle; otherwise another library's decoder is, and the
 * test name says which ran.
 */

function hasTool(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function tool(cmd: string, args: string[], input: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

const zstdCli = hasTool('zstd');
const lz4Cli = hasTool('lz4');
const gzipCli = hasTool('gzip');

const data = walLike({ size: 5 * 1024 * 1024 + 12345, seed: 11 });
const TEXT = Buffer.from('walvault test vector: 000000010000000000000001\n');

// Fixed vectors made once by the reference CLIs (`printf ... | <cli> -c | xxd -p`).
const VECTORS = {
  gzip: '1f8b08000000000002032b4fcc294b2ccd295128492d2e51284b4d2ec92fb25230800043035460c805009a5ab0f72f000000', // gzip -n -9
  zstd: '28b52ffd04681d0100d877616c7661756c74207465737420766563746f723a20303130310a020040e21868020cc6942c', // zstd -19
  lz4: '04224d186440a72b000000f20877616c7661756c74207465737420766563746f723a2030010012310700b0303030303030303030310a00000000f4b3b92b', // lz4 1.9.4
  brotli: '1f2e00f88dc33826bc889f9f92dbd8fdbe27d11382306b18059098a9882e16d500ede4a9f0e4989d2ecf62800310', // brotli -q 11
} as const;

describe('fixed vectors made by the reference CLIs decode', () => {
  it.each(Object.entries(VECTORS))('%s', async (name, hex) => {
    const codec = getCodec(name as keyof typeof VECTORS);
    expect((await codec.decompress(Buffer.from(hex, 'hex'), TEXT.length)).equals(TEXT)).toBe(true);
    expect((await streamThrough(codec.createDecompressStream(TEXT.length), Buffer.from(hex, 'hex'), 3)).equals(TEXT)).toBe(true);
  });
});

describe('real WAL fixtures, compressed by the zstd CLI at level 19', () => {
  const files = fixtureMajors().flatMap((major) => fixtureManifest(major).files.map((f) => ({ major, ...f })));

  it('exist (fixtures/wal)', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files.map((f) => [`pg${f.major} ${f.name}`, f] as const))('%s decodes to the SHA-256 in the manifest', async (_n, f) => {
    const stored = readFileSync(join(FIXTURE_ROOT, `pg${f.major}`, `${f.name}.zst`));
    const codec = codecFromExtension('zst', f.name);
    expect(sha256Hex(await codec.decompress(stored, f.size, f.name))).toBe(f.sha256);
    expect(sha256Hex(await streamThrough(codec.createDecompressStream(f.size, f.name), stored, 4096))).toBe(f.sha256);
    // One byte less than the manifest's size must not fit.
    if (f.size > 0) await expect(codec.decompress(stored, f.size - 1, f.name)).rejects.toBeInstanceOf(IntegrityError);
  });
});

describe('zstd', () => {
  const oracle = zstdCli ? 'the zstd CLI' : "zstd-napi's own decompressor (zstd CLI absent)";
  const decodeElsewhere = (buf: Buffer): Buffer => (zstdCli ? tool('zstd', ['-d', '-c', '-q'], buf) : zstdNapiDecompress(buf));

  it(`frames from compress() and the stream decode with ${oracle}`, async () => {
    const codec = getCodec('zstd', 3);
    expect(decodeElsewhere(await codec.compress(data)).equals(data)).toBe(true);
    expect(decodeElsewhere(await streamThrough(codec.createCompressStream(), data, 100_000)).equals(data)).toBe(true);
  });

  it(`decodes frames made by ${zstdCli ? 'the zstd CLI (with checksum, and two concatenated frames)' : 'zstd-napi compress() (zstd CLI absent)'}`, async () => {
    const codec = getCodec('zstd');
    const made = zstdCli ? tool('zstd', ['-3', '-c', '-q'], data) : zstdNapiCompress(data);
    expect((await codec.decompress(made, data.length)).equals(data)).toBe(true);
    const twice = Buffer.concat([made, made]);
    expect((await codec.decompress(twice, 2 * data.length)).equals(Buffer.concat([data, data]))).toBe(true);
    expect((await streamThrough(codec.createDecompressStream(2 * data.length), twice, 9999)).length).toBe(2 * data.length);
  });

  it('writes frames that carry a content checksum (frame header descriptor bit 2)', async () => {
    const frame = await getCodec('zstd').compress(TEXT);
    expect(frame.readUInt32LE(0)).toBe(0xfd2fb528);
    expect((frame[4] as number) & 0x04).toBe(0x04);
  });
});

describe('lz4', () => {
  const oracle = lz4Cli ? 'the lz4 CLI' : "lz4-napi's frame decoder (lz4 CLI absent)";
  const decodeElsewhere = async (buf: Buffer): Promise<Buffer> => (lz4Cli ? tool('lz4', ['-d', '-c', '-q'], buf) : decompressFrame(buf));

  it(`frames from compress() and the stream decode with ${oracle}`, async () => {
    const codec = getCodec('lz4');
    expect((await decodeElsewhere(await codec.compress(data))).equals(data)).toBe(true);
    expect((await decodeElsewhere(await streamThrough(codec.createCompressStream(), data, 77_777))).equals(data)).toBe(true);
    expect((await decodeElsewhere(await codec.compress(Buffer.alloc(0)))).length).toBe(0);
  });

  it("frames decode with lz4-napi's independent frame decoder too", async () => {
    expect((await decompressFrame(await getCodec('lz4').compress(data))).equals(data)).toBe(true);
  });

  it('stores incompressible blocks uncompressed (high bit of the block size) and reads them back', async () => {
    const noise = randomBuffer(5000, 3);
    const frame = await getCodec('lz4').compress(noise);
    expect((frame.readUInt32LE(7) & 0x80000000) >>> 0).toBe(0x80000000);
    expect((await decodeElsewhere(frame)).equals(noise)).toBe(true);
    expect((await getCodec('lz4').decompress(frame, noise.length)).equals(noise)).toBe(true);
  });

  it('decodes lz4-napi frames with block and content checksums (64 KiB blocks)', async () => {
    const codec = getCodec('lz4');
    for (const options of [{}, { contentChecksum: true }, { blockChecksums: true, contentChecksum: true }]) {
      const made = await compressFrame(data, options);
      expect((await codec.decompress(made, data.length)).equals(data)).toBe(true);
      expect((await streamThrough(codec.createDecompressStream(data.length), made, 30_000)).equals(data)).toBe(true);
    }
  });

  it('rejects an lz4-napi frame whose content checksum does not match', async () => {
    const made = await compressFrame(data, { contentChecksum: true });
    made[made.length - 1] = (made[made.length - 1] as number) ^ 1;
    await expect(getCodec('lz4').decompress(made, data.length)).rejects.toThrow('lz4 content checksum mismatch');
  });

  it('rejects an lz4-napi frame whose block checksum does not match', async () => {
    const made = await compressFrame(data, { blockChecksums: true });
    // First block: header (7 bytes), size word (4), payload, then its checksum.
    const size = made.readUInt32LE(7) & 0x7fffffff;
    made[11 + size] = (made[11 + size] as number) ^ 1;
    await expect(getCodec('lz4').decompress(made, data.length)).rejects.toThrow('lz4 block checksum mismatch');
  });

  it.runIf(lz4Cli)('decodes lz4 CLI frames: default, linked blocks, content size, block checksums, concatenated', async () => {
    const codec = getCodec('lz4');
    for (const args of [[], ['-BD'], ['-BD', '-B4'], ['--content-size'], ['-BX', '-B5'], ['-9']]) {
      const made = tool('lz4', ['-c', '-q', ...args], data);
      expect((await codec.decompress(made, data.length)).equals(data)).toBe(true);
      expect((await streamThrough(codec.createDecompressStream(data.length), made, 12_345)).equals(data)).toBe(true);
    }
    const one = tool('lz4', ['-c', '-q'], TEXT);
    expect((await codec.decompress(Buffer.concat([one, one]), 1000)).equals(Buffer.concat([TEXT, TEXT]))).toBe(true);
  });

  it.runIf(lz4Cli)('rejects an lz4 CLI frame that states a content size above maxOutput before decoding', async () => {
    const made = tool('lz4', ['-c', '-q', '--content-size'], data);
    await expect(getCodec('lz4').decompress(made, 1000)).rejects.toThrow('exceeds the limit of 1000 bytes');
  });

  it('skips skippable frames', async () => {
    const skippable = Buffer.alloc(8 + 5);
    skippable.writeUInt32LE(0x184d2a53, 0);
    skippable.writeUInt32LE(5, 4);
    const frame = await getCodec('lz4').compress(TEXT);
    const both = Buffer.concat([skippable, frame]);
    expect((await getCodec('lz4').decompress(both, TEXT.length)).equals(TEXT)).toBe(true);
  });
});

describe('gzip', () => {
  const oracle = gzipCli ? 'the gzip CLI' : 'node:zlib gunzip (gzip CLI absent)';

  it(`members from compress() and the stream decode with ${oracle}`, async () => {
    const codec = getCodec('gzip', 6);
    for (const made of [await codec.compress(data), await streamThrough(codec.createCompressStream(), data, 65_536)]) {
      const back = gzipCli ? tool('gzip', ['-d', '-c'], made) : (await import('node:zlib')).gunzipSync(made);
      expect(back.equals(data)).toBe(true);
    }
  });

  it.runIf(gzipCli)('decodes gzip CLI output, also two concatenated members', async () => {
    const made = tool('gzip', ['-c', '-1'], data);
    const codec = getCodec('gzip');
    expect((await codec.decompress(made, data.length)).equals(data)).toBe(true);
    const twice = Buffer.concat([made, made]);
    expect((await streamThrough(codec.createDecompressStream(2 * data.length), twice, 4321)).length).toBe(2 * data.length);
  });
});
