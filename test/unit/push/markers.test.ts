/**
 * Markers as the uploader's poll and the sh launcher see them: the listing names exactly the
 * markers (no failure notes, no half-written temp files), and a marker's text is the launcher's
 * `stat -c '%d %i %s %.9Y %.9Z'` line for the file.
 */
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { markerDir, markerNames, noteUploadFailed, writeMarker } from '../../../src/push/markers.js';
import { removeTempDirs, tempDir } from '../archive/support.js';

afterAll(removeTempDirs);

const SEG = '000000010000000000000003';
// Hand-written identity and the line `stat -c '%d %i %s %.9Y %.9Z'` prints for it.
const FILE = { dev: 2049, ino: 131, size: 16777216, mtimeNs: 1700000000000000005n, ctimeNs: 1700000001120000000n };
const LINE = '2049 131 16777216 1700000000.000000005 1700000001.120000000';

describe('markers', () => {
  it('are written whole with the launcher’s stat line, and listed without notes or temp files', async () => {
    const state = await tempDir('markers');
    expect(await markerNames(state)).toEqual(new Set());
    await writeMarker(state, SEG, FILE);
    expect(readFileSync(path.join(markerDir(state), SEG), 'utf8')).toBe(LINE);
    await noteUploadFailed(state, '000000010000000000000004');
    await writeFile(path.join(markerDir(state), `.${SEG}.1-x.00000000.tmp`), '');
    expect(await markerNames(state)).toEqual(new Set([SEG]));
  });

  it('are written again into a state directory removed under the uploader', async () => {
    const state = await tempDir('markers');
    await writeMarker(state, SEG, FILE);
    await rm(markerDir(state), { recursive: true });
    await expect(writeMarker(state, SEG, FILE)).rejects.toThrow();
    // The failed write forgot the directory: the next one creates it again.
    await writeMarker(state, SEG, FILE);
    expect(await markerNames(state)).toEqual(new Set([SEG]));
  });
});
