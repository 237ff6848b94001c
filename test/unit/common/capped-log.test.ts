/**
 * The detached helpers' log is capped: a file over the cap becomes `<file>.1` and a new one starts,
 * so a data directory whose helpers run for months keeps at most about twice the cap on disk.
 */
import { closeSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCappedLog, summarizeLogFile } from '../../../src/common/capped-log.js';
import { renderStatus } from '../../../src/cli/render/reports.js';
import type { StatusReport } from '../../../src/ops/status.js';

const root = mkdtempSync(join(tmpdir(), 'walvault-capped-log-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('openCappedLog', () => {
  it('appends below the cap and rotates once over it, replacing the older rotated file', () => {
    const path = join(root, 'walvault.log');
    writeFileSync(join(root, 'walvault.log.1'), 'oldest\n');
    let fd = openCappedLog(path, 100);
    writeSync(fd, 'x'.repeat(60) + '\n');
    closeSync(fd);
    fd = openCappedLog(path, 100);
    writeSync(fd, 'y'.repeat(60) + '\n');
    closeSync(fd);
    expect(statSync(path).size).toBe(122);
    expect(readFileSync(join(root, 'walvault.log.1'), 'utf8')).toBe('oldest\n');
    fd = openCappedLog(path, 100);
    writeSync(fd, 'after rotation\n');
    closeSync(fd);
    expect(readFileSync(path, 'utf8')).toBe('after rotation\n');
    expect(statSync(join(root, 'walvault.log.1')).size).toBe(122);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe('summarizeLogFile and status', () => {
  it('gives the size and the last line; status shows them, quoted and cut', () => {
    const path = join(root, 'status.log');
    expect(summarizeLogFile(path)).toBeUndefined();
    writeFileSync(path, '{"msg":"first"}\n{"msg":"look-ahead upload failed","err":"\u0007boom"}\n\n');
    const summary = summarizeLogFile(path)!;
    expect(summary).toEqual({ path, bytes: statSync(path).size, lastLine: '{"msg":"look-ahead upload failed","err":"\u0007boom"}' });
    const report: StatusReport = {
      source: 'archive',
      state: 'unknown',
      stateReason: 'not measured',
      archive: null,
      server: null,
      lastArchived: null,
      lag: { bytes: null, seconds: null },
      queue: null,
      archiver: null,
      lastError: null,
      agent: null,
      unavailable: [],
      backgroundLog: summary,
    };
    const text = renderStatus(report, new Date());
    expect(text).toMatch(
      new RegExp(
        `background log: +${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(\\d+ B; last line '\\{"msg":"look-ahead upload failed","err":"\\\\x07boom"\\}'\\)`,
      ),
    );
    expect(existsSync(path)).toBe(true);
  });
});
