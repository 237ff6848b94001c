/**
 * S3 credentials from the config file (an access key id and a secret in a mode-checked file), against
 * a real s3rver: nothing secret has to go into archive_command, and the secret shows up nowhere, not
 * in `config show`, not in a trace-level log, not in the error of a refused request.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3rver, type S3rverHandle } from '../../support/s3server.js';
import { loadFixture } from '../../support/fixtures.js';
import { runCli, writeConfig } from '../../support/walvault.js';

const SEG = '000000010000000000000008';
const WRONG_SECRET = 'wrongSecret+Zq93/TkPx';

describe('S3 credentials in the config file (s3rver)', () => {
  const root = mkdtempSync(join(tmpdir(), 'walvault-s3cred-'));
  let s3: S3rverHandle;
  // No AWS chain: whatever authenticates comes from the config file.
  const noChain = {
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_PROFILE: '',
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const seg = join(root, SEG);
  writeFileSync(seg, loadFixture(15, SEG));

  function config(name: string, secret: string, mode: number, endpoint = s3.endpoint): string {
    const secretFile = join(root, `${name}.secret`);
    writeFileSync(secretFile, `${secret}\n`);
    chmodSync(secretFile, mode);
    return writeConfig(join(root, `${name}.conf`), {
      archive: `s3://${s3.bucket}/creds`,
      's3-endpoint': endpoint,
      's3-force-path-style': true,
      's3-checksums': 'when_required',
      's3-max-attempts': 1,
      's3-access-key-id': s3.accessKeyId,
      's3-secret-access-key-file': secretFile,
    });
  }

  beforeAll(async () => {
    s3 = await startS3rver({ bucket: 'wal' });
  });
  afterAll(async () => {
    await s3?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('pushes and fetches with the key id and secret file from the config file alone', async () => {
    const env = { ...noChain, WALVAULT_CONFIG: config('good', s3.secretAccessKey, 0o600), WALVAULT_NO_FASTPATH: '1' };
    const push = await runCli('wal-push', [seg], { env });
    expect(push.code, push.stderr).toBe(0);
    const fetch = await runCli('wal-fetch', [SEG, join(root, 'out')], { env: { ...env, WALVAULT_FETCH_PREFETCH: '0' } });
    expect(fetch.code, fetch.stderr).toBe(0);
  });

  it('never shows the secret: not in config show, a trace log, or a failed request', async () => {
    const env = { ...noChain, WALVAULT_CONFIG: config('wrong', WRONG_SECRET, 0o600), WALVAULT_NO_FASTPATH: '1' };
    const show = await runCli('walvault', ['config', 'show'], { env });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/s3-access-key-id\s+S3RVER\s+\(file\)/);
    expect(show.stdout).toMatch(/s3-secret-access-key-file\s+\S+wrong\.secret\s+\(file\)/);
    const showJson = await runCli('walvault', ['config', 'show', '--json'], { env });
    expect(JSON.parse(showJson.stdout).settings).toContainEqual(expect.objectContaining({ name: 's3-access-key-id', value: 'S3RVER' }));
    // Requests signed with the secret, logged at the most verbose level (s3rver does not check signatures).
    const push = await runCli('walvault', ['wal-push', seg, '--log-level', 'trace'], {
      env: { ...env, WALVAULT_ARCHIVE: `s3://${s3.bucket}/other` },
    });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain('"level"');
    // An unreachable endpoint: the error path, with the credentials loaded.
    const downEnv = { ...noChain, WALVAULT_CONFIG: config('down', WRONG_SECRET, 0o600, 'http://127.0.0.1:9') };
    const down = await runCli('walvault', ['wal-push', seg, '--log-level', 'trace'], { env: downEnv });
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/unable to/);
    for (const text of [show.stdout, show.stderr, showJson.stdout, push.stdout, push.stderr, down.stdout, down.stderr]) {
      expect(text).not.toContain(WRONG_SECRET);
    }
  });

  it('refuses a secret file other users can read, naming the file and the fix but not the secret', async () => {
    const env = { ...noChain, WALVAULT_CONFIG: config('open', WRONG_SECRET, 0o644), WALVAULT_NO_FASTPATH: '1' };
    const push = await runCli('walvault', ['wal-push', seg], { env });
    expect(push.code).toBe(2);
    expect(push.stderr).toMatch(/unable to use S3 secret access key file '[^']*open\.secret': other users have access to it \(mode 0644\)/);
    expect(push.stderr).not.toContain(WRONG_SECRET);
  });

  it('refuses a key id without a secret file', async () => {
    const conf = writeConfig(join(root, 'half.conf'), {
      archive: `s3://${s3.bucket}/creds`,
      's3-endpoint': s3.endpoint,
      's3-access-key-id': 'S3RVER',
    });
    const push = await runCli('walvault', ['wal-push', seg], { env: { ...noChain, WALVAULT_CONFIG: conf } });
    expect(push.code).toBe(2);
    expect(push.stderr).toContain('s3-secret-access-key-file is not set');
  });
});
