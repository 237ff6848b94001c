import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/common/errors.js';
import { loadConfig, sectionOfCommand } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'walvault-sections-'));
const noDefaultFile = join(dir, 'absent.conf');

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('per-command config file sections', () => {
  const shared = file(
    'shared.conf',
    'archive = file:///arch\nmetrics-port = 9000\n[stream]\nmetrics-port = 9851\n[daemon]\nmetrics-port = 9852\nlog-level = debug\n',
  );
  const load = (command: string | undefined, env: Record<string, string> = {}) =>
    loadConfig({ env: { WALVAULT_CONFIG: shared, ...env }, defaultConfigFile: noDefaultFile, ...(command ? { command } : {}) });

  it('gives stream and daemon their own metrics port from one file', () => {
    expect(load('stream').config['metrics-port']).toBe(9851);
    expect(load('daemon').config['metrics-port']).toBe(9852);
    expect(load('daemon').config['log-level']).toBe('debug');
    expect(load('stream').config['log-level']).toBe('info');
    // Lines outside any section apply to every command; a command without a section gets only them.
    expect(load('wal-push').config['metrics-port']).toBe(9000);
    expect(load(undefined).config['metrics-port']).toBe(9000);
    expect(load('stream').config.archive).toBe('file:///arch');
  });

  it('lets the environment and flags still win over a section', () => {
    expect(load('stream', { WALVAULT_METRICS_PORT: '7000' }).config['metrics-port']).toBe(7000);
    const { config } = loadConfig({
      env: { WALVAULT_CONFIG: shared },
      flags: { 'metrics-port': 7001 },
      defaultConfigFile: noDefaultFile,
      command: 'daemon',
    });
    expect(config['metrics-port']).toBe(7001);
  });

  it('treats [global] as no section, and a section may repeat a global setting but not its own', () => {
    const g = file('global.conf', '[global]\ncompression = lz4\n[stream]\ncompression = gzip\n');
    expect(loadConfig({ env: { WALVAULT_CONFIG: g }, defaultConfigFile: noDefaultFile, command: 'status' }).config.compression).toBe('lz4');
    expect(loadConfig({ env: { WALVAULT_CONFIG: g }, defaultConfigFile: noDefaultFile, command: 'stream' }).config.compression).toBe(
      'gzip',
    );
    const twice = file('twice.conf', '[stream]\ncompression = gzip\ncompression = lz4\n');
    expect(() => loadConfig({ env: { WALVAULT_CONFIG: twice }, defaultConfigFile: noDefaultFile, command: 'stream' })).toThrow(
      /set twice in \[stream\]/,
    );
  });

  it('refuses unknown sections, and bad values in sections of other commands', () => {
    const typo = file('typo.conf', '[steram]\nmetrics-port = 1\n');
    expect(() => loadConfig({ env: { WALVAULT_CONFIG: typo }, defaultConfigFile: noDefaultFile, command: 'stream' })).toThrow(
      /unknown section '\[steram\]'/,
    );
    const bad = file('bad.conf', '[daemon]\nmetrics-port = lots\n');
    let err: unknown;
    try {
      loadConfig({ env: { WALVAULT_CONFIG: bad }, defaultConfigFile: noDefaultFile, command: 'stream' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/bad\.conf:2: \[daemon\] metrics-port: expected an integer/);
  });

  it('maps a command path to its section', () => {
    expect(sectionOfCommand('walvault stream')).toBe('stream');
    expect(sectionOfCommand('walvault config show')).toBe('config');
    expect(sectionOfCommand('walvault')).toBeUndefined();
  });
});
