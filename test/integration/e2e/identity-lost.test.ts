/**
 * A lost or damaged identity record through the real launchers: wal-push refuses (exit 4, one line
 * naming the problem and `walvault identity-rebuild`) and leaves the archive byte for byte as it was,
 * whichever cluster's WAL it is given; `walvault identity-rebuild` brings pushes back, refuses an
 * archive that mixes two clusters (exit 128), and repairs one damaged copy from the other.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureManifest, loadFixture } from '../../support/fixtures.js';
import { runCli } from '../../support/walvault.js';

const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';
const OURS = fixtureManifest(15);
const FOREIGN = fixtureManifest(13);

const root = mkdtempSync(join(tmpdir(), 'walvault-identity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every file under `dir` (hidden ones too) with its SHA-256: "untouched" means equal snapshots. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else
        out[`${rel}${e.name}`] = createHash('sha256')
          .update(readFileSync(join(d, e.name)))
          .digest('hex');
    }
  };
  walk(dir, '');
  return out;
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

let n = 0;
/** A fresh archive directory holding PG15's segment 7, pushed through wal-push. */
async function archiveWithSegment(): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = join(root, `archive-${++n}`);
  mkdirSync(dir);
  const env = { WALVAULT_ARCHIVE: `file://${dir}`, WALVAULT_NO_FASTPATH: '1' };
  const res = await runCli('wal-push', [input(15, SEG7)], { env });
  expect(res.code, res.stderr).toBe(0);
  return { dir, env };
}

function input(major: number, name: string): string {
  const d = mkdtempSync(join(root, 'in-'));
  const p = join(d, name);
  writeFileSync(p, loadFixture(major, name));
  return p;
}

function damage(file: string): void {
  const bytes = readFileSync(file);
  bytes[30] = (bytes[30] as number) ^ 0xff;
  writeFileSync(file, bytes);
}

describe('wal-push into an archive that lost its identity', () => {
  it.each([
    ['deleted', (dir: string) => (unlinkSync(join(dir, 'archive.info')), unlinkSync(join(dir, 'archive.info.copy')))],
    ['both copies unreadable', (dir: string) => (damage(join(dir, 'archive.info')), writeFileSync(join(dir, 'archive.info.copy'), '{'))],
  ])("identity %s: another cluster's segment is refused with exit 4, archive untouched", async (_label, lose) => {
    const { dir, env } = await archiveWithSegment();
    lose(dir);
    const before = snapshot(dir);
    const res = await runCli('wal-push', [input(13, SEG8)], { env });
    expect(res.code).toBe(4);
    const line = oneLine(res.stderr);
    expect(line).toMatch(/^walvault wal-push: unable to archive '000000010000000000000008': archive 'file:\/\/.*' holds WAL \('wal\//);
    expect(line).toMatch(/identity record/);
    expect(line).toContain("run 'walvault identity-rebuild'");
    expect(line).toContain('[WV_ERR_IDENTITY_LOST]');
    expect(snapshot(dir)).toEqual(before);
    // The archive's own cluster is refused the same way until the identity is back.
    expect((await runCli('wal-push', [input(15, SEG8)], { env })).code).toBe(4);
    expect(snapshot(dir)).toEqual(before);
  });

  it('one copy unreadable, the other fine: pushes keep working and the copy is healed', async () => {
    const { dir, env } = await archiveWithSegment();
    const good = readFileSync(join(dir, 'archive.info'));
    damage(join(dir, 'archive.info.copy'));
    const foreign = await runCli('wal-push', [input(13, SEG8)], { env });
    expect(foreign.code).toBe(4);
    expect(oneLine(foreign.stderr)).toMatch(/database system 7712183650341156616/);
    const res = await runCli('wal-push', [input(15, SEG8)], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(join(dir, 'archive.info.copy')).equals(good)).toBe(true);
  });
});

describe('walvault identity-rebuild', () => {
  it('--dry-run writes nothing; the rebuild brings pushes back and keeps foreign WAL out', async () => {
    const { dir, env } = await archiveWithSegment();
    unlinkSync(join(dir, 'archive.info'));
    unlinkSync(join(dir, 'archive.info.copy'));
    const before = snapshot(dir);
    const dry = await runCli('walvault', ['identity-rebuild', '--dry-run', '--json'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const report = JSON.parse(dry.stdout) as { action: string; dryRun: boolean; identity: Record<string, unknown>; written: string[] };
    expect(report).toMatchObject({ action: 'rebuilt', dryRun: true, written: ['archive.info', 'archive.info.copy'] });
    expect(report.identity).toMatchObject({ systemId: OURS.systemId, pgMajor: 15, walSegSize: OURS.walSegSize });
    expect(snapshot(dir)).toEqual(before);

    const done = await runCli('walvault', ['identity-rebuild'], { env });
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain(`rebuilt archive identity: database system ${OURS.systemId}, PostgreSQL 15, 1MB segments`);
    expect(readFileSync(join(dir, 'archive.info')).equals(readFileSync(join(dir, 'archive.info.copy')))).toBe(true);

    const own = await runCli('wal-push', [input(15, SEG8)], { env });
    expect(own.code, own.stderr).toBe(0);
    const foreign = await runCli('wal-push', [input(13, '00000001000000000000000A')], { env });
    expect(foreign.code).toBe(4);
    expect(oneLine(foreign.stderr)).toMatch(/database system 7712183650341156616, the archive belongs to 7712183698484992009/);
    const again = await runCli('walvault', ['identity-rebuild'], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/intact .*nothing to do/);
  });

  it("refuses an archive holding two clusters' WAL (exit 128), naming both, writing nothing", async () => {
    const { dir, env } = await archiveWithSegment();
    const other = await archiveWithSegment();
    // The other archive gets PG13's segment 8 by a normal push, then it is copied in by hand.
    rmSync(other.dir, { recursive: true });
    mkdirSync(other.dir);
    expect((await runCli('wal-push', [input(13, SEG8)], { env: other.env })).code).toBe(0);
    const leaf = readdirSync(join(other.dir, 'wal/00000001/0000000100000000'))[0]!;
    copyFileSync(join(other.dir, 'wal/00000001/0000000100000000', leaf), join(dir, 'wal/00000001/0000000100000000', leaf));
    unlinkSync(join(dir, 'archive.info'));
    unlinkSync(join(dir, 'archive.info.copy'));
    const before = snapshot(dir);
    const res = await runCli('walvault', ['identity-rebuild'], { env });
    expect(res.code).toBe(128);
    const line = oneLine(res.stderr);
    expect(line).toContain(`system ${OURS.systemId}`);
    expect(line).toContain(`system ${FOREIGN.systemId}`);
    expect(line).toContain(leaf);
    expect(snapshot(dir)).toEqual(before);
  });

  it('repairs one damaged copy from the other, byte for byte', async () => {
    const { dir, env } = await archiveWithSegment();
    const good = readFileSync(join(dir, 'archive.info.copy'));
    damage(join(dir, 'archive.info'));
    const res = await runCli('walvault', ['identity-rebuild', '--json'], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ action: 'repaired', written: ['archive.info'] });
    expect(readFileSync(join(dir, 'archive.info')).equals(good)).toBe(true);
  });
});
