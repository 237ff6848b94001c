import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ExitCode } from '../../../src/common/errors.js';
import { loadConfig, parseSize } from '../../../src/config/load.js';
import { renderConfigurationDoc } from '../../../src/config/docs.js';

const dir = mkdtempSync(join(tmpdir(), 'walvault-config-'));
const noDefaultFile = join(dir, 'absent.conf');

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('loadConfig', () => {
  it('uses defaults when nothing is set', () => {
    const { config, sources } = loadConfig({ env: {}, defaultConfigFile: noDefaultFile });
    expect(config.compression).toBe('zstd');
    expect(config['s3-force-path-style']).toBe(false);
    expect(config.archive).toBeUndefined();
    expect(sources['compression']).toBe('default');
  });

  it('applies precedence defaults < file < env < flags', () => {
    const conf = file('a.conf', '# comment\narchive = file:///from/file\ncompression = "lz4"\nlog-level = warn\n');
    const { config, sources } = loadConfig({
      env: { WALVAULT_CONFIG: conf, WALVAULT_COMPRESSION: 'gzip', WALVAULT_S3_MAX_ATTEMPTS: '7' },
      flags: { compression: 'brotli:4' },
      defaultConfigFile: noDefaultFile,
    });
    expect(config.archive).toBe('file:///from/file');
    expect(config['log-level']).toBe('warn');
    expect(config.compression).toBe('brotli:4');
    expect(config['s3-max-attempts']).toBe(7);
    expect(sources).toMatchObject({ archive: 'file', compression: 'flag', 's3-max-attempts': 'env' });
  });

  it('reads the default config file only when it exists', () => {
    const conf = file('default.conf', 'archive = file:///default\n');
    expect(loadConfig({ env: {}, defaultConfigFile: conf }).config.archive).toBe('file:///default');
    expect(loadConfig({ env: {}, defaultConfigFile: conf }).file).toBe(conf);
  });

  it('coerces booleans and integers', () => {
    const { config } = loadConfig({
      env: { WALVAULT_S3_FORCE_PATH_STYLE: 'true' },
      flags: { 's3-request-timeout': '2500' },
      defaultConfigFile: noDefaultFile,
    });
    expect(config['s3-force-path-style']).toBe(true);
    expect(config['s3-request-timeout']).toBe(2500);
  });

  it.each([
    [{ env: { WALVAULT_ARCHVE: 'x' } }, /unknown environment variable WALVAULT_ARCHVE/],
    [{ env: { WALVAULT_S3_FORCE_PATH_STYLE: 'maybe' } }, /expected true or false/],
    [{ env: { WALVAULT_S3_MAX_ATTEMPTS: '0' } }, /at least 1/],
    [{ env: { WALVAULT_S3_MAX_ATTEMPTS: 'ten' } }, /expected an integer/],
    [{ env: { WALVAULT_S3_CHECKSUMS: 'sometimes' } }, /expected one of default, when_required/],
    [{ env: { WALVAULT_CONFIG: '/nonexistent/walvault.conf' } }, /config file '\/nonexistent\/walvault.conf': ENOENT/],
    [{ env: { WALVAULT_ENCRYPTION_KEY: 'a', WALVAULT_ENCRYPTION_KEY_FILE: '/k' } }, /only one of/],
  ])('rejects bad settings %#', (opts, message) => {
    const call = () => loadConfig({ ...opts, defaultConfigFile: noDefaultFile });
    expect(call).toThrow(ConfigError);
    expect(call).toThrow(message);
  });

  it('rejects unknown, duplicate and malformed config file lines with their line numbers', () => {
    const conf = file('bad.conf', 'archive = file:///x\narchiv = y\narchive = file:///z\njust words\n');
    try {
      loadConfig({ env: { WALVAULT_CONFIG: conf }, defaultConfigFile: noDefaultFile });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toContain(`${conf}:2: unknown setting 'archiv'`);
      expect(msg).toContain(`${conf}:3: 'archive' is set twice`);
      expect(msg).toContain(`${conf}:4: expected 'name = value'`);
      expect((err as ConfigError).exitCode).toBe(ExitCode.usage);
    }
  });

  it('ignores WALVAULT_ variables that are launcher or test knobs', () => {
    expect(() =>
      loadConfig({ env: { WALVAULT_NODE: '/usr/bin/node', WALVAULT_TEST_MAJORS: '15' }, defaultConfigFile: noDefaultFile }),
    ).not.toThrow();
  });

  it('never echoes a secret value in an error', () => {
    const secret = 'c2VjcmV0LXNlY3JldC1zZWNyZXQ=';
    try {
      loadConfig({ env: { WALVAULT_ENCRYPTION_KEY: secret, WALVAULT_ENCRYPTION_KEY_FILE: '/k' }, defaultConfigFile: noDefaultFile });
    } catch (err) {
      expect((err as Error).message).not.toContain(secret);
    }
  });
});

describe('parseSize', () => {
  it.each([
    ['16MB', 16 * 1024 * 1024],
    ['1GB', 1024 ** 3],
    ['512kB', 512 * 1024],
    ['4096', 4096],
  ])('%s', (s, n) => expect(parseSize(s)).toBe(n));
  it('rejects junk', () => expect(() => parseSize('12 parsecs')).toThrow(/expected a size/));
});

describe('docs/configuration.md', () => {
  it('is exactly what the options table generates (run `npm run docs` after changing options)', () => {
    const committed = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    const generated = renderConfigurationDoc();
    // `walvault config docs` prints it with exactly one final newline.
    expect(committed).toBe(generated.endsWith('\n') ? generated : `${generated}\n`);
  });
});
