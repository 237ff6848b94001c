/** The verified-objects record's writer when its file cannot be written: the old record is kept. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VerifiedWriter } from '../../../../src/archive/catalog/verified-record.js';
import type { ArchiveIdentity } from '../../../../src/archive/identity.js';

const root = mkdtempSync(join(tmpdir(), 'walvault-verified-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const identity: ArchiveIdentity = {
  formatVersion: 1,
  systemId: '7712183698484992009',
  pgMajor: 15,
  walSegSize: 1048576,
  createdAt: '2026-12-01T00:00:00.000Z',
  createdBy: 'test',
};

describe('VerifiedWriter', () => {
  it('commits a record that replaces the old one', async () => {
    const path = join(root, 'ok', 'record');
    const w = VerifiedWriter.create(path, identity, 'file:///a')!;
    w.add({ key: 'wal/x', size: 10, mtimeMs: 5, level: 'h' });
    expect(await w.commit()).toBe(true);
    const text = readFileSync(path, 'utf8');
    expect(text.split('\n')[1]).toBe('wal/x\t10\t5\th');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('a temp file it cannot write: commit says false and the old record stays as it was', async () => {
    const dir = join(root, 'blocked');
    mkdirSync(dir);
    const path = join(dir, 'record');
    writeFileSync(path, 'old record\n');
    // A directory where the temp file would go: the write stream fails (EISDIR), as on a full or read-only disk.
    const temp = `${path}.${process.pid}.tmp`;
    mkdirSync(temp);
    const w = VerifiedWriter.create(path, identity, 'file:///a')!;
    w.add({ key: 'wal/x', size: 10, mtimeMs: 5, level: 'h' });
    expect(await w.commit()).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('old record\n');
    expect(existsSync(temp)).toBe(true); // a directory it did not create is not removed
  });
});
