/** Taking a prefetched segment: a directory this user cannot change means "fetch it yourself", not a failed restore_command. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { prefetchDir, takePrefetched } from '../../../src/restore/prefetch-dir.js';

const SEG = '000000010000000000000003';
let dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs) {
    await chmod(prefetchDir(d), 0o700).catch(() => undefined);
    await rm(d, { recursive: true, force: true });
  }
  dirs = [];
});

async function stateWith(file: boolean): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'wv-take-'));
  dirs.push(d);
  await mkdir(prefetchDir(d));
  if (file) await writeFile(join(prefetchDir(d), SEG), 'segment bytes');
  return d;
}

describe('takePrefetched', () => {
  it('moves a prefetched file into place, and says false when there is none', async () => {
    const state = await stateWith(true);
    const dest = join(state, 'dest');
    expect(await takePrefetched(state, SEG, dest)).toBe(true);
    expect(await readFile(dest, 'utf8')).toBe('segment bytes');
    expect(await takePrefetched(state, SEG, join(state, 'dest2'))).toBe(false);
  });

  it('falls back to a normal fetch when the prefetch directory belongs to someone else', async () => {
    const state = await stateWith(true);
    const dest = join(state, 'dest');
    await chmod(prefetchDir(state), 0o500); // not writable: rename out of it is refused
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      // root ignores modes: run the same call as an unprivileged user, as PostgreSQL would.
      const user = 'nobody';
      await chmod(state, 0o777);
      const script = `import('${join(process.cwd(), 'dist/restore/prefetch-dir.js')}').then(async (m) => process.stdout.write(String(await m.takePrefetched(${JSON.stringify(state)}, '${SEG}', ${JSON.stringify(dest)}))))`;
      const out = execFileSync('runuser', ['-u', user, '--', process.execPath, '-e', script], { encoding: 'utf8' });
      expect(out).toBe('false');
    } else {
      expect(await takePrefetched(state, SEG, dest)).toBe(false);
    }
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(join(prefetchDir(state), SEG))).toBe(true);
  });
});
