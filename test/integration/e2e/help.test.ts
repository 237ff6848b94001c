/**
 * Help as an operator reads it, from the real launcher: the shared settings listed once
 * (`walvault help options`), each command with its own options, defaults and an example, nothing
 * cut mid-sentence; `config show` without a misleading `config` row.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../support/walvault.js';
import { OPTIONS, type OptionDef } from '../../../src/config/options.js';
import { SHARED_GROUPS } from '../../../src/cli/options.js';

const env = { WALVAULT_CONFIG: '/dev/null' };
const shared = (OPTIONS as readonly OptionDef[]).filter((o) => SHARED_GROUPS.includes(o.group));
const COMMANDS = [
  'wal-push',
  'wal-fetch',
  'stream',
  'daemon',
  'segment inspect',
  'config show',
  'config docs',
  'wal-list',
  'wal-show',
  'wal-verify',
  'wal-delete',
  'check',
  'status',
];

async function help(path: string): Promise<string> {
  const res = await runCli('walvault', [...path.split(' '), '--help'], { env });
  expect(res.code, res.stderr).toBe(0);
  return res.stdout;
}

describe('help', () => {
  it('walvault help options lists every shared setting once, with its whole description', async () => {
    const res = await runCli('walvault', ['help', 'options'], { env });
    expect(res.code, res.stderr).toBe(0);
    const flat = res.stdout.replace(/\s+/g, ' ');
    for (const o of shared) {
      expect(res.stdout.match(new RegExp(`^  --${o.name} `, 'gm')), o.name).toHaveLength(1);
      expect(flat, o.name).toContain(o.doc.replace(/\s+/g, ' '));
      expect(flat, o.name).toContain(`env ${o.env}`);
    }
    // The description that used to be cut at "e.g" is whole.
    expect(flat).toContain('Storage class for uploaded objects (e.g. `STANDARD_IA`). Unset = bucket default.');
    expect(flat).toContain('(one of: auto, text, json; default: auto; env WALVAULT_LOG_FORMAT)');
  });

  it.each(COMMANDS)('%s --help: its own options with defaults, one example, no shared settings repeated', async (path) => {
    const text = await help(path);
    expect(text).toMatch(/\nExample:\n {2}\$ walvault /);
    for (const o of shared) {
      if ((path === 'stream' || path === 'daemon') && o.name.startsWith('metrics-')) continue;
      // It takes no shared settings; its own --log-level has its own default (warn).
      if (path === 'segment inspect' && o.name === 'log-level') continue;
      expect(text, `${path} lists --${o.name}`).not.toMatch(new RegExp(`^ +--${o.name} `, 'm'));
    }
  });

  it('stream --help shows its settings with default and environment variable, and where the rest are', async () => {
    const flat = (await help('stream')).replace(/\s+/g, ' ');
    expect(flat).toContain(
      '--spool-dir <value> Local directory for received WAL until it is archived. Must be on durable storage. (default: /var/lib/walvault/spool; env WALVAULT_SPOOL_DIR)',
    );
    expect(flat).toContain('--metrics-port <value>');
    expect(flat).toContain('walvault help options');
  });

  it('the shared settings still work as flags on every command', async () => {
    const res = await runCli('walvault', ['config', 'show', '--compression', 'lz4', '--log-format', 'json', '--json'], { env });
    expect(res.code, res.stderr).toBe(0);
    const rows = (JSON.parse(res.stdout) as { settings: { name: string; value: unknown; source: string }[] }).settings;
    expect(rows.find((r) => r.name === 'compression')).toMatchObject({ value: 'lz4', source: 'flag' });
    expect(rows.find((r) => r.name === 'log-format')).toMatchObject({ value: 'json', source: 'flag' });
  });
});

describe('config show', () => {
  const dir = mkdtempSync(join(tmpdir(), 'walvault-help-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file it read once, without a "config ... unset" row under it', async () => {
    const file = join(dir, 'walvault.conf');
    writeFileSync(file, 'archive = file:///srv/archive\n');
    const res = await runCli('walvault', ['config', 'show', '--config', file], { env: {} });
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines[0]).toBe(`config file: ${file}`);
    expect(lines.filter((l) => /^config\b/.test(l))).toEqual([`config file: ${file}`]);
    expect(res.stdout).toMatch(/^archive +file:\/\/\/srv\/archive +\(file\)$/m);
  });
});
