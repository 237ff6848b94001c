/**
 * wal-push walks a segment's pages chunk by chunk as it reads them: every chunking must give the
 * verdict of the whole-buffer check, including where a zero tail is followed by stray bytes.
 */
import { describe, expect, it } from 'vitest';
import { InvalidWalError } from '../../../src/common/errors.js';
import { finishArchiveScan, segmentScanner, validateSegmentForArchive } from '../../../src/segment/inspect.js';
import { fixtureManifest, fixturesOfKind, loadFixture } from '../../support/fixtures.js';

function scanInChunks(bytes: Buffer, name: string, chunk: number) {
  const scanner = segmentScanner(bytes.length, { expectedName: name });
  for (let pos = 0; pos < bytes.length; pos += chunk) scanner.update(bytes.subarray(pos, pos + chunk));
  return finishArchiveScan(scanner, name);
}

function outcome(run: () => unknown): unknown {
  try {
    return run();
  } catch (err) {
    return { error: (err as Error).constructor.name, message: (err as Error).message };
  }
}

describe('chunked page walk', () => {
  const manifest = fixtureManifest(15);
  const segments = fixturesOfKind(15, 'segment');
  const identity = { systemId: manifest.systemId, segSize: manifest.walSegSize };
  const chunks = [manifest.blockSize, 64 * 1024, 1 << 20];

  it.each(segments.map((f) => f.name))('%s: the same facts as the whole-buffer check for every chunk size', (name) => {
    const bytes = loadFixture(15, name);
    const whole = validateSegmentForArchive(bytes, name, identity);
    for (const c of chunks) expect(scanInChunks(bytes, name, c)).toEqual(whole);
  });

  it('a zero page followed by stray bytes in a later chunk is refused with the same message', () => {
    const name = segments[0]!.name;
    const bytes = Buffer.from(loadFixture(15, name));
    const zeroAt = 4 * manifest.blockSize;
    bytes.fill(0, zeroAt);
    bytes[bytes.length - 100] = 1;
    const whole = outcome(() => validateSegmentForArchive(bytes, name, identity));
    expect(whole).toMatchObject({ error: InvalidWalError.name, message: expect.stringContaining('non-zero bytes follow') });
    for (const c of chunks) expect(outcome(() => scanInChunks(bytes, name, c))).toEqual(whole);
  });

  it('a broken page chain in a later chunk is refused with the same message', () => {
    const name = segments[0]!.name;
    const bytes = Buffer.from(loadFixture(15, name));
    const at = bytes.length - 2 * manifest.blockSize;
    bytes.writeUInt32LE(bytes.readUInt32LE(at + 8) + 1, at + 8);
    const whole = outcome(() => validateSegmentForArchive(bytes, name, identity));
    expect(whole).toMatchObject({ error: InvalidWalError.name });
    for (const c of chunks) expect(outcome(() => scanInChunks(bytes, name, c))).toEqual(whole);
  });
});
