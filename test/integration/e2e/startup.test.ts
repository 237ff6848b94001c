/**
 * Start-up loads what the command uses (issue 14): PostgreSQL starts wal-push and wal-fetch once
 * per segment, so every module they load is paid for again and again. The real launchers run with
 * a loader hook that records each module the ESM loader loads; the test checks which ones.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, runCli } from '../../support/walvault.js';
import { loadFixture } from '../../support/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'walvault-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOOK = join(REPO, 'test', 'support', 'module-trace', 'register.mjs');
const DIST = `file://${REPO}/dist/`;

// The launchers start the bundle (tools/bundle.mjs); its modules.json names the modules each bundle
// file holds, so a loaded bundle file counts as every module in it (dist/ and node_modules/ alike).
const BUNDLE = `${DIST}bundle/`;
const BUNDLED = JSON.parse(readFileSync(join(REPO, 'dist', 'bundle', 'modules.json'), 'utf8')) as Record<string, string[]>;
function modulesOf(url: string): string[] {
  if (!url.startsWith(BUNDLE)) return [url];
  const inputs = BUNDLED[url.slice(BUNDLE.length)];
  if (inputs === undefined) throw new Error(`${url} is not in dist/bundle/modules.json: rebuild`);
  return inputs.map((m) => `file://${REPO}/${m}`);
}

/** Runs a launcher with the hook; returns its result and the modules it loaded (dist/ paths, packages). */
async function traced(name: 'walvault' | 'wal-push' | 'wal-fetch', args: string[], env: Record<string, string> = {}) {
  const trace = join(dir, `trace-${Math.random().toString(36).slice(2)}`);
  writeFileSync(trace, '');
  const res = await runCli(name, args, {
    cwd: dir,
    env: { WALVAULT_CONFIG: '/dev/null', NODE_OPTIONS: `--import=${HOOK}`, WALVAULT_TEST_MODULE_TRACE: trace, ...env },
  });
  const loaded = readFileSync(trace, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file://'))
    .flatMap((u) => modulesOf(u));
  const ours = [...new Set(loaded.filter((u) => u.startsWith(DIST)).map((u) => u.slice(DIST.length)))];
  const packages = [...new Set(loaded.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((p) => p !== undefined))];
  return { res, ours, packages };
}

describe('start-up', () => {
  it('--version reads one small module: no command-line parser, no logger, no command', async () => {
    const { res, ours, packages } = await traced('walvault', ['--version']);
    expect(res.code, res.stderr).toBe(0);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(res.stdout).toBe(`${pkg.version}\n`);
    expect(ours.sort()).toEqual(['cli/walvault.js', 'common/version.js']);
    expect(packages).toEqual([]);
  });

  it('--help lists every command without loading any command module', async () => {
    const { res, ours } = await traced('walvault', ['--help']);
    expect(res.code, res.stderr).toBe(0);
    for (const c of ['wal-push', 'wal-fetch', 'stream', 'daemon', 'wal-list', 'wal-verify', 'check', 'identity-rebuild']) {
      expect(res.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    }
    expect(ours.filter((m) => m.startsWith('cli/commands/'))).toEqual(['cli/commands/index.js']);
  });

  it('wal-push %p loads no command module, no parser, no logger, neither the S3 SDK nor pg nor metrics nor a queue library', async () => {
    const archive = join(dir, 'archive');
    rmSync(archive, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(archive));
    const seg = join(dir, '000000010000000000000008');
    writeFileSync(seg, loadFixture(15, '000000010000000000000008'));
    const { res, ours, packages } = await traced('wal-push', [seg], {
      WALVAULT_ARCHIVE: `file://${archive}`,
      WALVAULT_STATE_DIR: join(dir, 'state'),
      WALVAULT_NO_FASTPATH: '1',
    });
    expect(res.code, res.stderr).toBe(0);
    // The archiver's plain call goes through cli/hooks.js; a quiet success never creates its logger.
    expect(ours.filter((m) => m.startsWith('cli/commands/'))).toEqual([]);
    expect(ours).toContain('cli/hooks.js');
    expect(ours.filter((m) => /^(ops|daemon|walstream|backup|restore|postgres\/replication)\//.test(m))).toEqual([]);
    expect(ours).not.toContain('storage/s3.js');
    for (const p of ['@aws-sdk/client-s3', 'pg', 'prom-client', 'lz4-napi', 'p-queue', 'commander', 'pino'])
      expect(packages).not.toContain(p);
  });

  it('wal-fetch loads its own command only, and neither the S3 SDK nor pg nor metrics nor a queue library', async () => {
    const archive = join(dir, 'archive');
    const { res, ours, packages } = await traced('wal-fetch', ['000000010000000000000008', join(dir, 'restored')], {
      WALVAULT_ARCHIVE: `file://${archive}`,
      WALVAULT_STATE_DIR: join(dir, 'state'),
      WALVAULT_NO_FASTPATH: '1',
    });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(join(dir, 'restored')).equals(loadFixture(15, '000000010000000000000008'))).toBe(true);
    expect(ours.filter((m) => m.startsWith('cli/commands/')).sort()).toEqual(['cli/commands/index.js', 'cli/commands/wal-fetch.js']);
    expect(ours.filter((m) => /^(ops|daemon|walstream|backup|postgres\/replication)\/|^push\/(?!state-dir)/.test(m))).toEqual([]);
    expect(ours).not.toContain('storage/s3.js');
    for (const p of ['@aws-sdk/client-s3', 'pg', 'prom-client', 'lz4-napi', 'p-queue']) expect(packages).not.toContain(p);
  });
});
