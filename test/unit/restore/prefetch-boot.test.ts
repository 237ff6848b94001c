/** The prefetch directory is bound to the boot that wrote it, so its files can skip fsync. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootId, otherBootsPrefetchDirs, prefetchDir, prefetchNeedsFsync } from '../../../src/restore/prefetch-dir.js';

const BOOT_A = '411957d5-0285-49e6-8cd2-f4ab1bd65670';
const BOOT_B = '0c6bd3a4-99f1-4b47-a3a6-5a1f0e0e2f11';
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

describe('prefetch directory per boot', () => {
  it('names the directory after the boot id, or plain prefetch (fsynced) without one', () => {
    expect(prefetchDir('/var/tmp/walvault/1-2-3', BOOT_A)).toBe(`/var/tmp/walvault/1-2-3/prefetch-${BOOT_A}`);
    expect(prefetchDir('/var/tmp/walvault/1-2-3', null)).toBe('/var/tmp/walvault/1-2-3/prefetch');
    expect(prefetchNeedsFsync(BOOT_A)).toBe(false);
    expect(prefetchNeedsFsync(null)).toBe(true);
  });

  it('reads the same boot id the sh launcher reads', () => {
    let fromKernel: string | null = null;
    try {
      fromKernel = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      // not Linux
    }
    expect(bootId()).toBe(fromKernel);
  });

  it('lists the directories of other boots and of older versions, never its own or anything else', () => {
    const state = mkdtempSync(join(tmpdir(), 'wv-boot-'));
    dirs.push(state);
    for (const n of ['prefetch', `prefetch-${BOOT_A}`, `prefetch-${BOOT_B}`, 'pushed', 'prefetch-notes', 'prefetch.pid']) {
      if (n.endsWith('.pid')) writeFileSync(join(state, n), '1\n');
      else mkdirSync(join(state, n));
    }
    expect(otherBootsPrefetchDirs(state, BOOT_A).sort()).toEqual([join(state, 'prefetch'), join(state, `prefetch-${BOOT_B}`)].sort());
    expect(otherBootsPrefetchDirs(state, null).sort()).toEqual(
      [join(state, `prefetch-${BOOT_A}`), join(state, `prefetch-${BOOT_B}`)].sort(),
    );
    expect(otherBootsPrefetchDirs(join(state, 'missing'), BOOT_A)).toEqual([]);
  });
});
