/**
 * Bad input through the real launchers: a clear one-line error, the documented exit code, and
 * nothing already archived harmed.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFixture } from '../../support/fixtures.js';
import { runCli } from '../../support/walvault.js';

const SEG = '000000010000000000000008';

describe('wal-push, wal-fetch and segment inspect on bad input', () => {
  const root = mkdtempSync(join(tmpdir(), 'walvault-cli-'));
  const archive = join(root, 'archive');
  mkdirSync(archive);
  const env = { WALVAULT_ARCHIVE: `file://${archive}`, WALVAULT_NO_FASTPATH: '1' };
  const file = (name: string, bytes: Buffer | string): string => {
    const dir = mkdtempSync(join(root, 'f-'));
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function oneLine(stderr: string): string {
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    return lines[0]!;
  }

  it('archives a real segment, then treats the same push as done (exit 0)', async () => {
    const p = file(SEG, loadFixture(15, SEG));
    expect((await runCli('wal-push', [p], { env })).code).toBe(0);
    const again = await runCli('wal-push', [p], { env });
    expect(again.code, again.stderr).toBe(0);
  });

  it.each([
    ['no argument', [] as string[], 2, /missing required argument/],
    ['two arguments', ['a', 'b'], 2, /too many arguments/],
  ])('usage errors exit 2: %s', async (_l, args, code, message) => {
    const res = await runCli('wal-push', args, { env });
    expect(res.code).toBe(code);
    expect(res.stderr).toMatch(message);
  });

  it('a missing file exits 3 with the path in one line', async () => {
    const res = await runCli('wal-push', [join(root, 'nope', SEG)], { env });
    expect(res.code).toBe(3);
    expect(oneLine(res.stderr)).toMatch(/unable to open WAL file .*ENOENT/);
  });

  it.each([
    ['a text file named like a segment', () => file(SEG, 'hello, not WAL\n'), /not WAL|magic|shorter/i],
    ['zeros', () => file(SEG, Buffer.alloc(1024 * 1024)), /zero/i],
    ['a truncated segment', () => file(SEG, loadFixture(15, SEG).subarray(0, 300_000)), /truncated|bytes/i],
    ["another cluster's segment", () => file(SEG, loadFixture(13, SEG)), /database system|PostgreSQL 13/],
    ['a file that is not a WAL name', () => file('postmaster.pid', 'x'), /WAL file name/],
  ])('refuses %s with exit 2 or 4, archive untouched', async (_label, make, message) => {
    const before = listAll(archive);
    const res = await runCli('wal-push', [make()], { env });
    expect([2, 4]).toContain(res.code);
    expect(oneLine(res.stderr)).toMatch(message);
    expect(listAll(archive)).toEqual(before);
  });

  it('refuses different content under an archived name (exit 4), keeps the original, quarantines the copy', async () => {
    const original = loadFixture(15, SEG);
    const changed = Buffer.from(original);
    changed[8192 * 10 + 4000]! ^= 0xff; // record data, not a page header: still valid WAL structure
    const res = await runCli('wal-push', [file(SEG, changed)], { env });
    expect(res.code).toBe(4);
    expect(oneLine(res.stderr)).toMatch(/already holds a different file/);
    expect(readdirSync(join(archive, 'errors')).some((f) => f.startsWith(`${SEG}-`))).toBe(true);
    const out = join(root, 'fetched');
    const fetched = await runCli('wal-fetch', [SEG, out], { env });
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(readFileSync(out).equals(original)).toBe(true);
  });

  it('wal-fetch: 1 for a missing file, 128 for a damaged one, 3 for a bad name with fetch-unavailable = retry', async () => {
    expect((await runCli('wal-fetch', ['0000000100000000000000FF', join(root, 'x')], { env })).code).toBe(1);
    const dir = join(archive, 'wal', '00000001', '0000000100000000');
    const obj = join(
      dir,
      readdirSync(dir).find((f) => f.startsWith(`${SEG}-`))!,
    );
    const good = readFileSync(obj);
    const bad = Buffer.from(good);
    bad[bad.length - 10]! ^= 1;
    writeFileSync(obj, bad);
    try {
      const res = await runCli('wal-fetch', [SEG, join(root, 'y')], { env });
      expect(res.code).toBe(128);
      expect(oneLine(res.stderr)).toMatch(/WV_ERR_INTEGRITY/);
    } finally {
      writeFileSync(obj, good);
    }
    // PostgreSQL reads every code up to 125 as "no such file": a usage error follows fetch-unavailable.
    const badName = await runCli('wal-fetch', ['../../etc/passwd', join(root, 'z')], {
      env: { ...env, WALVAULT_FETCH_UNAVAILABLE: 'retry' },
    });
    expect(badName.code).toBe(3);
    expect(oneLine(badName.stderr)).toMatch(/WV_ERR_INVALID_NAME/);
    const inRecovery = await runCli('wal-fetch', ['../../etc/passwd', join(root, 'z')], { env });
    expect(inRecovery.code).toBe(128);
  });

  it('serves a .partial for a missing segment only when fetch-partial is on', async () => {
    const partial = '00000001000000000000000B.partial';
    const bytes = loadFixture(15, partial);
    expect((await runCli('wal-push', [file(partial, bytes)], { env })).code).toBe(0);
    const out = join(root, 'from-partial');
    expect((await runCli('wal-fetch', ['00000001000000000000000B', out], { env })).code).toBe(1);
    const res = await runCli('wal-fetch', ['00000001000000000000000B', out], { env: { ...env, WALVAULT_FETCH_PARTIAL: 'true' } });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(out).equals(bytes)).toBe(true);
  });

  it('segment inspect prints the header and exits 128 on a non-WAL file', async () => {
    const ok = await runCli('walvault', ['segment', 'inspect', '--json', file(SEG, loadFixture(15, SEG))]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ pgMajor: 15, segSize: 1048576, startLsn: '0/800000' });
    const bad = await runCli('walvault', ['segment', 'inspect', file(SEG, 'garbage')]);
    expect(bad.code).toBe(128);
  });

  it('an unknown setting is a usage error that names it', async () => {
    const res = await runCli('wal-push', [join(root, 'x')], { env: { ...env, WALVAULT_ARCHVE: 'x' } });
    expect(res.code).toBe(2);
    expect(oneLine(res.stderr)).toMatch(/unknown environment variable WALVAULT_ARCHVE/);
  });
});

function listAll(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  walk(dir, '');
  return out.sort();
}
