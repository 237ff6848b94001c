import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, usesTextFormat, type LogFormat } from '../../../src/common/log.js';
import { formatLogRecord } from '../../../src/common/log-text.js';

const dir = mkdtempSync(join(tmpdir(), 'walvault-log-'));
let n = 0;

/** Logs through a real file descriptor and returns what reached the file, read right after the call. */
function logTo(format: LogFormat, emit: (log: ReturnType<typeof createLogger>) => void): string {
  const path = join(dir, `log-${n++}`);
  const fd = openSync(path, 'w');
  try {
    const log = createLogger({ fd, format, sync: true });
    emit(log);
    // No flush, no wait: a short-lived command may exit right after its last log call.
    return readFileSync(path, 'utf8');
  } finally {
    closeSync(fd);
  }
}

describe('createLogger', () => {
  it('writes JSON lines with secrets redacted', () => {
    const out = logTo('json', (log) =>
      log
        .child({ command: 'walvault stream' })
        .info({ password: 'hunter2', cfg: { encryptionKey: 'k3y' }, segment: '000000010000000000000003' }, 'connected'),
    );
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('k3y');
    const rec = JSON.parse(out) as Record<string, unknown>;
    expect(rec).toMatchObject({
      level: 'info',
      msg: 'connected',
      command: 'walvault stream',
      password: '[redacted]',
      segment: '000000010000000000000003',
    });
    expect(rec['cfg']).toEqual({ encryptionKey: '[redacted]' });
  });

  it('writes readable lines in text format, synchronously, with the same redaction', () => {
    const out = logTo('text', (log) =>
      log
        .child({ command: 'walvault stream' })
        .child({ component: 'walstream' })
        .warn(
          { connectionString: 'postgresql://u:hunter2@h/db', retryInMs: 2000, err: 'connect ECONNREFUSED 127.0.0.1:1' },
          'unable to connect; retrying',
        ),
    );
    expect(out).not.toContain('hunter2');
    expect(out).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN  walvault stream\/walstream: unable to connect; retrying connectionString=\[redacted\] retryInMs=2000 err="connect ECONNREFUSED 127.0.0.1:1"\n$/,
    );
    expect(out).not.toContain('"level"');
  });

  it('auto renders JSON when the destination is not a terminal', () => {
    const out = logTo('auto', (log) => log.info('hello'));
    expect(JSON.parse(out)).toMatchObject({ msg: 'hello' });
    const path = join(dir, 'plain');
    const fd = openSync(path, 'w');
    try {
      expect(usesTextFormat('auto', fd)).toBe(false);
      expect(usesTextFormat('text', fd)).toBe(true);
      expect(usesTextFormat('json', fd)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });
});

describe('formatLogRecord', () => {
  it.each([
    [
      '{"level":"info","time":"2026-12-01T10:00:00.000Z","pid":7,"command":"walvault daemon","msg":"daemon started","pgdata":"/data"}',
      '2026-12-01T10:00:00.000Z INFO  walvault daemon: daemon started pgdata=/data\n',
    ],
    [
      '{"level":"error","time":"2026-12-01T10:00:00.000Z","msg":"upload failed","attempt":3,"done":false,"err":{"type":"Error","message":"disk full","stack":"Error: disk full\\n    at x"}}',
      '2026-12-01T10:00:00.000Z ERROR upload failed attempt=3 done=false err="disk full"\n',
    ],
    [
      '{"level":"debug","time":"2026-12-01T10:00:00.000Z","msg":"x","tags":["a","b"],"note":"two words"}',
      '2026-12-01T10:00:00.000Z DEBUG x tags=["a","b"] note="two words"\n',
    ],
    ['not json at all', 'not json at all\n'],
  ])('%s', (input, expected) => {
    expect(formatLogRecord(input)).toBe(expected);
  });
});

describe('createLogger made lazily', () => {
  it('drops records below its level and writes the rest with every child binding made before the first record', () => {
    const path = join(dir, `log-${n++}`);
    const fd = openSync(path, 'w');
    try {
      const log = createLogger({ fd, format: 'json', sync: true, level: 'warn' });
      const child = log.child({ command: 'walvault wal-push' }).child({ segment: '000000010000000000000003' });
      child.info('not written');
      child.debug({ a: 1 }, 'not written either');
      expect(readFileSync(path, 'utf8')).toBe('');
      expect(child.isLevelEnabled('info')).toBe(false);
      expect(child.isLevelEnabled('error')).toBe(true);
      child.warn({ secretAccessKey: 's3cr3t' }, 'written');
      const lines = readFileSync(path, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toContain('s3cr3t');
      expect(JSON.parse(lines[0]!)).toMatchObject({
        level: 'warn',
        msg: 'written',
        command: 'walvault wal-push',
        segment: '000000010000000000000003',
      });
    } finally {
      closeSync(fd);
    }
  });
});
