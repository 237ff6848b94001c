/**
 * The demo is a checkout tool (tools/demo, run by `npm run demo`), not a command of the product:
 * `walvault` does not offer it, and the compiled tool answers --help and refuses a leftover archive
 * with a usage error before it starts any PostgreSQL.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, runCli, type CliResult } from '../../support/walvault.js';

const DEMO = join(REPO, 'build', 'tools', 'demo', 'main.js');

function runDemoTool(args: string[]): Promise<CliResult> {
  if (!existsSync(DEMO)) throw new Error('build/tools is missing: run `npm run build` (npm test does it)');
  return new Promise((resolve) => {
    execFile(process.execPath, [DEMO, ...args], { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('demo entry point', () => {
  const dir = mkdtempSync(join(tmpdir(), 'walvault-demo-entry-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('walvault has no demo command', async () => {
    const res = await runCli('walvault', ['demo'], { env: { WALVAULT_CONFIG: '/dev/null' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown command 'demo'");
    const help = await runCli('walvault', ['--help'], { env: { WALVAULT_CONFIG: '/dev/null' } });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).not.toMatch(/^ +demo\b/m);
  });

  it('the demo tool lists its options and an npm run demo example', async () => {
    const res = await runDemoTool(['--help']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ +--dir <dir> +where to put the demo archive \(default: "walvault-demo"\)$/m);
    expect(res.stdout).toMatch(/^ +--keep +keep the archive afterwards/m);
    expect(res.stdout).toContain('\nExample:\n  $ npm run demo -- --dir /tmp/walvault-demo --keep\n');
  });

  it('refuses a directory holding an earlier archive with exit 2 and one line', async () => {
    const old = join(dir, 'kept');
    mkdirSync(join(old, 'archive'), { recursive: true });
    const res = await runDemoTool(['--dir', old]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `walvault demo: unable to run the demo in '${old}': it holds an archive from an earlier run (--keep); remove it or pass --dir [WV_ERR_USAGE]\n`,
    );
    expect(existsSync(join(old, 'archive'))).toBe(true);
  });
});
