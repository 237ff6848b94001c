import { describe, expect, it } from 'vitest';
import { CODEC_NAMES, codecFromExtension, codecLevels, formatCompression, getCodec, parseCompression } from '../../../src/codec/codec.js';
import { ConfigError, ExitCode, IntegrityError } from '../../../src/common/errors.js';

describe('parseCompression', () => {
  it.each([
    ['zstd', 'zstd', 1],
    ['zstd:1', 'zstd', 1],
    ['zstd:3', 'zstd', 3],
    ['zstd:19', 'zstd', 19],
    ['lz4', 'lz4', 1],
    ['lz4:1', 'lz4', 1],
    ['gzip', 'gzip', 1],
    ['gzip:6', 'gzip', 6],
    ['gzip:9', 'gzip', 9],
    ['brotli', 'brotli', 1],
    ['brotli:0', 'brotli', 0],
    ['brotli:11', 'brotli', 11],
    ['none', 'none', 0],
    ['none:0', 'none', 0],
  ])('%s -> %s level %i', (text, name, level) => {
    expect(parseCompression(text)).toEqual({ name, level });
  });

  it.each([
    ['zstd:0', 'zstd level must be 1..19'],
    ['zstd:20', 'zstd level must be 1..19'],
    ['zstd:-1', 'zstd level must be 1..19'],
    ['lz4:2', 'lz4 has a single level (1)'],
    ['gzip:0', 'gzip level must be 1..9'],
    ['gzip:10', 'gzip level must be 1..9'],
    ['brotli:12', 'brotli level must be 0..11'],
    ['none:1', 'none has a single level (0)'],
    ['xz', "unknown codec 'xz'"],
    ['ZSTD', 'expected <codec> or <codec>:<level>'],
    ['zstd:', 'expected <codec> or <codec>:<level>'],
    ['zstd:3.5', 'expected <codec> or <codec>:<level>'],
    ['zstd:abc', 'expected <codec> or <codec>:<level>'],
    [' zstd', 'expected <codec> or <codec>:<level>'],
    ['', 'expected <codec> or <codec>:<level>'],
  ])('rejects %j: %s', (text, reason) => {
    let err: unknown;
    try {
      parseCompression(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.usage);
    expect((err as Error).message.startsWith(`unable to parse compression '${text}': `)).toBe(true);
    expect((err as Error).message).toContain(reason);
  });

  it('formats back to the canonical text', () => {
    expect(formatCompression(parseCompression('zstd'))).toBe('zstd:1');
    expect(formatCompression(parseCompression('gzip:6'))).toBe('gzip:6');
    expect(formatCompression(parseCompression('none'))).toBe('none');
  });
});

describe('getCodec / codecFromExtension', () => {
  it('maps every codec to its extension and back', () => {
    const expected = { zstd: 'zst', lz4: 'lz4', gzip: 'gz', brotli: 'br', none: '' } as const;
    for (const name of CODEC_NAMES) {
      const codec = getCodec(name);
      expect(codec.name).toBe(name);
      expect(codec.level).toBe(codecLevels(name).default);
      expect(codec.extension).toBe(expected[name]);
      expect(codecFromExtension(expected[name]).name).toBe(name);
    }
  });

  it('keeps the requested level', () => {
    expect(getCodec('zstd', 6).level).toBe(6);
    expect(getCodec('brotli', 4).level).toBe(4);
  });

  it('rejects levels outside the range with ConfigError', () => {
    expect(() => getCodec('zstd', 23)).toThrow(ConfigError);
    expect(() => getCodec('gzip', 1.5)).toThrow(ConfigError);
  });

  it('treats an unknown extension as an archive it cannot decode (IntegrityError)', () => {
    expect(() => codecFromExtension('xz', '000000010000000000000003.xz')).toThrow(IntegrityError);
    expect(() => codecFromExtension('xz', '000000010000000000000003.xz')).toThrow(
      "unable to decode object '000000010000000000000003.xz': unknown compression extension 'xz'",
    );
  });
});

describe('lazy loading of native modules', () => {
  // Processes that never compress (most CLI commands) must not pay for loading zstd-napi or
  // lz4-napi: the only top-level imports of them may be type-only; the modules load on first use.
  it.each(['zstd.ts', 'lz4.ts', 'lz4-frame.ts', 'codec.ts'])('src/codec/%s', async (file) => {
    const { readFile } = await import('node:fs/promises');
    const source = await readFile(new URL(`../../../src/codec/${file}`, import.meta.url), 'utf8');
    const staticImports = source.split('\n').filter((line) => /^import\s(?!type\s).*['"](zstd-napi|lz4-napi)/.test(line));
    expect(staticImports).toEqual([]);
  });
});
