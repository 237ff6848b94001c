/**
 * Run as root (an operator's `walvault check` or a manual wal-push), the posix driver must not leave
 * root-owned 0700 directories in an archive that belongs to the postgres user: what it creates takes
 * the owner and group of the archive root, with the configured modes.
 */
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/common/errors.js';
import { parseModeSetting } from '../../../src/storage/factory.js';
import { ownerFor, PosixStorage } from '../../../src/storage/posix.js';

const asRoot = process.geteuid?.() === 0;

describe('posix archive ownership and modes', () => {
  const base = mkdtempSync(join(tmpdir(), 'walvault-owner-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it.runIf(asRoot)('gives new directories and files the owner and group of the archive root', async () => {
    const root = mkdtempSync(join(base, 'archive-'));
    chownSync(root, 54321, 54322);
    const storage = new PosixStorage({ root });
    await storage.put('wal/0000000100000000/000000010000000000000001-abc', Buffer.from('x'));
    for (const p of ['wal', 'wal/0000000100000000', 'wal/0000000100000000/000000010000000000000001-abc']) {
      const st = statSync(join(root, p));
      expect({ p, uid: st.uid, gid: st.gid }).toEqual({ p, uid: 54321, gid: 54322 });
    }
    expect(statSync(join(root, 'wal')).mode & 0o7777).toBe(0o700);
    expect(statSync(join(root, 'wal/0000000100000000/000000010000000000000001-abc')).mode & 0o7777).toBe(0o600);
    // Overwrites too (rename of a new temp file).
    await storage.put('wal/0000000100000000/000000010000000000000001-abc', Buffer.from('y'));
    expect(statSync(join(root, 'wal/0000000100000000/000000010000000000000001-abc')).uid).toBe(54321);
  });

  it.runIf(asRoot)('applies the configured modes', async () => {
    const root = mkdtempSync(join(base, 'modes-'));
    chownSync(root, 54321, 54322);
    const storage = new PosixStorage({
      root,
      fileMode: parseModeSetting('posix-file-mode', '0640'),
      dirMode: parseModeSetting('posix-dir-mode', '750'),
    });
    await storage.put('history/00000002.history-abc', Buffer.from('x'));
    expect(statSync(join(root, 'history')).mode & 0o7777).toBe(0o750);
    expect(statSync(join(root, 'history/00000002.history-abc')).mode & 0o7777).toBe(0o640);
  });

  it("keeps ownership alone when not root, or when the root is root's", () => {
    expect(ownerFor(54321, 54322, 1000)).toBeUndefined();
    expect(ownerFor(0, 0, 0)).toBeUndefined();
    expect(ownerFor(54321, 54322, 0)).toEqual({ uid: 54321, gid: 54322 });
  });

  it('refuses a mode setting that is not octal', () => {
    expect(() => parseModeSetting('posix-file-mode', '644x')).toThrow(ConfigError);
    expect(() => parseModeSetting('posix-dir-mode', '0o755')).toThrow(/unable to use posix-dir-mode '0o755': expected an octal mode/);
    expect(parseModeSetting('posix-file-mode', '0644')).toBe(0o644);
  });
});
