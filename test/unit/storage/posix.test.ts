/**
 * Posix-only behaviour: file and directory modes, temp files, a missing root, disk full (on a real
 * 1 MiB tmpfs) and permission errors (as an unprivileged uid).
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError, StorageError, WalvaultError } from '../../../src/common/errors.js';
import { classifyFsError, PosixStorage } from '../../../src/storage/posix.js';
import { chunked, keys } from '../../support/storage-conformance.js';

const isRoot = process.getuid?.() === 0;

/** Every name under `dir` that starts with a dot (temp files, or anything else hidden). */
async function hiddenEntries(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.name.startsWith('.')) found.push(path.join(entry.parentPath ?? entry.path, entry.name));
  }
  return found;
}

async function rejection(p: Promise<unknown>): Promise<WalvaultError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WalvaultError);
  return err as WalvaultError;
}

function failingBody(): Readable {
  return Readable.from(
    (async function* () {
      yield Buffer.alloc(200_000, 1);
      throw new Error('source went away');
    })(),
    { objectMode: false },
  );
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'walvault-posix-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('posix storage: modes', () => {
  it.each([0o000, 0o022, 0o077])('creates files 0600 and directories 0700 under umask %o', async (mask) => {
    const old = process.umask(mask);
    try {
      const s = new PosixStorage({ root });
      await s.put('wal/00000001/seg', Buffer.from('x'));
      expect((await stat(path.join(root, 'wal/00000001/seg'))).mode & 0o7777).toBe(0o600);
      expect((await stat(path.join(root, 'wal'))).mode & 0o7777).toBe(0o700);
      expect((await stat(path.join(root, 'wal/00000001'))).mode & 0o7777).toBe(0o700);
    } finally {
      process.umask(old);
    }
  });

  it('uses configured modes whatever the umask, and leaves existing directories alone', async () => {
    await mkdir(path.join(root, 'existing'), { mode: 0o755 });
    await chmod(path.join(root, 'existing'), 0o755);
    const old = process.umask(0o077);
    try {
      const s = new PosixStorage({ root, fileMode: 0o640, dirMode: 0o750 });
      await s.put('existing/new/obj', Buffer.from('x'));
      expect((await stat(path.join(root, 'existing/new/obj'))).mode & 0o7777).toBe(0o640);
      expect((await stat(path.join(root, 'existing/new'))).mode & 0o7777).toBe(0o750);
      expect((await stat(path.join(root, 'existing'))).mode & 0o7777).toBe(0o755);
    } finally {
      process.umask(old);
    }
  });

  it('rejects relative roots and impossible modes', () => {
    expect(() => new PosixStorage({ root: 'archive' })).toThrow(ConfigError);
    expect(() => new PosixStorage({ root, fileMode: -1 })).toThrow(ConfigError);
    expect(() => new PosixStorage({ root, dirMode: 0o10000 })).toThrow(ConfigError);
  });
});

describe('posix storage: durable directories', () => {
  // The sticky bit marks a directory whose entry may not be durable yet (its creator has not
  // fsynced the parent); only a directory without it lets a put skip the parent fsyncs.
  it('publishes the directories it creates: none keeps the pending bit', async () => {
    const s = new PosixStorage({ root });
    await s.put('wal/00000001/0000000100000000/a', Buffer.from('x'));
    for (const d of ['wal', 'wal/00000001', 'wal/00000001/0000000100000000']) {
      expect((await stat(path.join(root, d))).mode & 0o7777, d).toBe(0o700);
    }
  });

  it('finishes the directories a killed writer left pending, at every level, and keeps their modes', async () => {
    // As a writer killed between mkdir and its parent's fsync leaves them.
    await mkdir(path.join(root, 'wal/00000001'), { recursive: true });
    await chmod(path.join(root, 'wal'), 0o1750);
    await chmod(path.join(root, 'wal/00000001'), 0o1700);
    const s = new PosixStorage({ root });
    await s.put('wal/00000001/seg', Buffer.from('x'));
    expect((await stat(path.join(root, 'wal'))).mode & 0o7777).toBe(0o750);
    expect((await stat(path.join(root, 'wal/00000001'))).mode & 0o7777).toBe(0o700);
    expect((await s.getBuffer('wal/00000001/seg')).toString()).toBe('x');
  });

  it('with a sticky dirMode it cannot tell, and still writes', async () => {
    const s = new PosixStorage({ root, dirMode: 0o1700 });
    await s.put('wal/seg', Buffer.from('x'));
    await new PosixStorage({ root, dirMode: 0o1700 }).put('wal/seg2', Buffer.from('y'));
    expect((await stat(path.join(root, 'wal'))).mode & 0o7777).toBe(0o1700);
    expect((await s.getBuffer('wal/seg2')).toString()).toBe('y');
  });
});

describe('posix storage: temp files', () => {
  it('leaves no temp file after a failing body, an abort, a conflict or a length mismatch', async () => {
    const s = new PosixStorage({ root });
    await s.put('d/k', Buffer.from('old'));
    await rejection(s.put('d/k', failingBody()));
    await rejection(s.put('d/new', failingBody()));
    const controller = new AbortController();
    const aborting = s.put('d/aborted', chunked(Buffer.alloc(500_000)), { signal: controller.signal });
    controller.abort();
    expect((await rejection(aborting)).code).toBe('WV_ERR_ABORTED');
    expect((await rejection(s.put('d/k', Buffer.from('x'), { ifAbsent: true }))).code).toBe('WV_ERR_OBJECT_EXISTS');
    await rejection(s.put('d/len', Buffer.from('abc'), { contentLength: 4 }));
    expect(await hiddenEntries(root)).toEqual([]);
    expect(await readdir(path.join(root, 'd'))).toEqual(['k']);
    expect((await s.getBuffer('d/k')).toString()).toBe('old');
  });

  it('never lists temp files left by a crash, and puts beside them', async () => {
    const s = new PosixStorage({ root });
    await s.put('d/a', Buffer.from('a'));
    await writeFile(path.join(root, 'd', '.b.1a2b3c4d5e6f.tmp'), 'half a segment');
    await writeFile(path.join(root, '.c.000000000000.tmp'), 'x');
    await s.put('d/b', Buffer.from('b'));
    expect(await keys(s, '')).toEqual(['d/a', 'd/b']);
    expect((await s.getBuffer('d/b')).toString()).toBe('b');
  });
});

describe('posix storage: layout edge cases', () => {
  it('treats a directory named like a key as no object', async () => {
    const s = new PosixStorage({ root });
    await s.put('dir/inner', Buffer.from('x'));
    expect(await s.head('dir')).toBeUndefined();
    expect(await rejection(s.getBuffer('dir'))).toBeInstanceOf(NotFoundError);
    expect(await rejection(s.get('dir'))).toBeInstanceOf(NotFoundError);
    await s.delete(['dir']);
    const err = await rejection(s.put('dir', Buffer.from('y')));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toMatch(/^unable to write object 'dir' to file:\/\/.*: a directory exists under that name \(EISDIR\)$/);
    expect(await hiddenEntries(root)).toEqual([]);
  });

  it('a missing root is an error for every operation, never "not found"', async () => {
    const missing = path.join(root, 'not-mounted');
    const s = new PosixStorage({ root: missing });
    const expected = `archive directory '${missing}' does not exist (create it, or mount it)`;
    for (const op of [() => s.put('k', Buffer.from('x')), () => s.getBuffer('k'), () => s.get('k'), () => s.head('k'), () => keys(s, '')]) {
      const err = await rejection(op());
      expect(err).toBeInstanceOf(StorageError);
      expect(err).not.toBeInstanceOf(NotFoundError);
      expect(err.retryable).toBe(false);
      expect(err.message.endsWith(expected)).toBe(true);
    }
    await expect(stat(missing)).rejects.toThrow(/ENOENT/);
  });

  it('a root that is a file is refused', async () => {
    const file = path.join(root, 'file');
    await writeFile(file, 'x');
    const err = await rejection(new PosixStorage({ root: file }).put('k', Buffer.from('x')));
    expect(err.message).toContain(`archive path '${file}' is not a directory`);
  });

  it('describes itself as a file URL', () => {
    expect(new PosixStorage({ root: '/var/lib/walvault/' }).description).toBe('file:///var/lib/walvault');
  });
});

describe('posix storage: file-system errors', () => {
  it.each([
    ['ENOSPC', 'no space left on device (ENOSPC)', true],
    ['EDQUOT', 'disk quota exceeded (EDQUOT)', true],
    ['EMFILE', 'too many open files (EMFILE)', true],
    ['EACCES', 'permission denied (EACCES)', false],
    ['EROFS', 'read-only file system (EROFS)', false],
    ['EIO', 'I/O error (EIO)', false],
  ])('classifies %s', (code, reason, retryable) => {
    const err = Object.assign(new Error(`${code}: something, open '/x'`), { code });
    expect(classifyFsError(err)).toEqual({ reason, retryable });
  });

  it('passes unknown errors through with their own message', () => {
    expect(classifyFsError(Object.assign(new Error('odd failure'), { code: 'EWHATEVER' }))).toEqual({
      reason: 'EWHATEVER: odd failure',
      retryable: false,
    });
  });

  // Needs root for mount(2); elsewhere vitest reports it as skipped, by this name.
  it.runIf(isRoot)('disk full on a 1 MiB tmpfs: clear retryable error, no temp file, old object intact (needs root)', async () => {
    const mnt = path.join(root, 'tiny');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mnt]);
    try {
      const s = new PosixStorage({ root: mnt });
      await s.put('wal/small', Buffer.alloc(100_000, 1));
      for (const body of [() => Buffer.alloc(2 * 1024 * 1024, 2), () => chunked(Buffer.alloc(2 * 1024 * 1024, 3))]) {
        const err = await rejection(s.put('wal/small', body()));
        expect(err).toBeInstanceOf(StorageError);
        expect(err.retryable).toBe(true);
        expect(err.message).toBe(`unable to write object 'wal/small' to file://${mnt}: no space left on device (ENOSPC)`);
      }
      expect(await hiddenEntries(mnt)).toEqual([]);
      expect((await s.getBuffer('wal/small')).equals(Buffer.alloc(100_000, 1))).toBe(true);
      // Once space is back, the same put goes through.
      await s.delete(['wal/small']);
      await s.put('wal/small', Buffer.alloc(700_000, 4));
      expect((await s.head('wal/small'))?.size).toBe(700_000);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  // Root bypasses permission checks, so become an unprivileged uid for the duration (seteuid is
  // reversible because the real uid stays 0). Needs root; elsewhere it shows as skipped, by this name.
  it.runIf(isRoot)('permission denied: clear non-retryable error, never "not found" (needs root to switch uid)', async () => {
    const s = new PosixStorage({ root });
    await s.put('wal/seg', Buffer.from('x'));
    await chmod(root, 0o700);
    const seteuid = process.seteuid!;
    seteuid(65534);
    let errors: WalvaultError[];
    try {
      errors = [
        await rejection(s.put('wal/other', Buffer.from('y'))),
        await rejection(s.getBuffer('wal/seg')),
        await rejection(s.head('wal/seg')),
        await rejection(keys(s, 'wal/')),
      ];
    } finally {
      seteuid(0);
    }
    for (const err of errors) {
      expect(err).toBeInstanceOf(StorageError);
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(/: permission denied \(EACCES\)$/);
    }
    expect(errors[0]!.message).toBe(`unable to write object 'wal/other' to file://${root}: permission denied (EACCES)`);
    expect(await hiddenEntries(root)).toEqual([]);
  });
});
