import { describe, expect, it } from 'vitest';
import { maxRateKbps } from '../../../src/backup/push.js';
import { checkpointOf } from '../../../src/backup/push-record.js';
import { ConfigError } from '../../../src/common/errors.js';

describe('backup-push settings and record fields', () => {
  it('turns backup-max-rate into the server MAX_RATE in kB/s within its range', () => {
    expect(maxRateKbps(undefined)).toBeUndefined();
    expect(maxRateKbps(50 * 1024 * 1024)).toBe(51200);
    expect(maxRateKbps(32 * 1024)).toBe(32);
    expect(() => maxRateKbps(31 * 1024)).toThrow(ConfigError);
    expect(() => maxRateKbps(2 * 1024 ** 3)).toThrow(/accepts 32kB to 1GB per second/);
  });

  it('reads the checkpoint location from backup_label', () => {
    const label =
      'START WAL LOCATION: 0/4500028 (file 000000010000000000000045)\nCHECKPOINT LOCATION: 0/4500060\nBACKUP METHOD: streamed\n';
    expect(checkpointOf(label)).toBe(0x4500060n);
    expect(checkpointOf('START WAL LOCATION: 0/4500028\n')).toBeNull();
  });
});
