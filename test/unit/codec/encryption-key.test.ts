import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { EncryptionKey, loadEncryptionKey } from '../../../src/codec/encryption.js';
import { keyFileModeProblem } from '../../../src/common/secret-file.js';
import { ConfigError, CryptoError, ExitCode } from '../../../src/common/errors.js';

// Key bytes 0x00..0x1f; base64 and key id computed with coreutils (base64, sha256sum).
const KEY_BYTES = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const KEY_B64 = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const KEY_ID = 'b74f463c52df5a5b';

const dir = mkdtempSync(join(tmpdir(), 'walvault-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Key files are owner-only (mode 600) unless a test says otherwise: anything else is refused.
function file(name: string, content: Buffer | string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode });
  chmodSync(path, mode); // the umask may have taken bits away
  return path;
}

async function configError(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.usage);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadEncryptionKey', () => {
  it('reads base64 text (WALVAULT_ENCRYPTION_KEY), ignoring surrounding whitespace', async () => {
    for (const text of [KEY_B64, `${KEY_B64}\n`, `  ${KEY_B64}\r\n`, KEY_B64.slice(0, -1)]) {
      const key = await loadEncryptionKey({ keyBase64: text });
      expect(key.key.equals(KEY_BYTES)).toBe(true);
      expect(key.keyId).toBe(KEY_ID);
    }
  });

  it('reads a key file of 32 raw bytes, or base64 text with an optional trailing newline', async () => {
    for (const [name, content] of [
      ['raw', KEY_BYTES],
      ['b64', KEY_B64],
      ['b64-lf', `${KEY_B64}\n`],
      ['b64-crlf', `${KEY_B64}\r\n`],
    ] as const) {
      const key = await loadEncryptionKey({ keyFile: file(name, content) });
      expect(key.keyId).toBe(KEY_ID);
    }
  });

  it('a raw key file whose bytes happen to end in a newline is still taken raw', async () => {
    const raw = Buffer.from(KEY_BYTES);
    raw[31] = 0x0a;
    const key = await loadEncryptionKey({ keyFile: file('raw-lf', raw) });
    expect(key.key.equals(raw)).toBe(true);
  });

  it('rejects base64 of the wrong length without echoing it', async () => {
    const short = Buffer.alloc(31, 0x41).toString('base64');
    const err = await configError(loadEncryptionKey({ keyBase64: short }));
    expect(err.message).toContain("unable to load encryption key 'WALVAULT_ENCRYPTION_KEY'");
    expect(err.message).toContain('44');
    expect(err.message).not.toContain(short);
  });

  it('rejects text outside the base64 alphabet without echoing it', async () => {
    const secret = `${KEY_B64.slice(0, 20)}!${KEY_B64.slice(21)}`;
    const err = await configError(loadEncryptionKey({ keyBase64: secret }));
    expect(err.message).toContain('outside the base64 alphabet');
    expect(err.message).not.toContain(secret.slice(0, 20));
  });

  it('rejects a 33-byte raw key file without echoing it', async () => {
    const raw = Buffer.concat([KEY_BYTES, Buffer.from('Z')]);
    const path = file('33', raw);
    const err = await configError(loadEncryptionKey({ keyFile: path }));
    expect(err.message).toContain(`unable to load encryption key file '${path}'`);
    expect(err.message).toContain('holds 33 bytes');
    expect(err.message).not.toContain(raw.toString('latin1'));
  });

  it('rejects base64 text in a file that decodes to 24 bytes', async () => {
    const err = await configError(loadEncryptionKey({ keyFile: file('24', `${Buffer.alloc(24, 7).toString('base64')}\n`) }));
    expect(err.message).toContain('32 raw bytes or their base64');
  });

  it('reports a missing key file with its path and errno', async () => {
    const err = await configError(loadEncryptionKey({ keyFile: join(dir, 'nope') }));
    expect(err.message).toContain(`unable to read encryption key file '${join(dir, 'nope')}': ENOENT`);
  });

  it.each([
    [0o644, 'owner', /other users have access to it \(mode 0644\)/],
    [0o604, 'group', /other users have access to it \(mode 0604\)/],
    [0o640, 'owner', /its group has access to it \(mode 0640\)/],
    [0o620, 'owner', /its group has access to it \(mode 0620\)/],
    [0o400, 'owner', undefined],
    [0o600, 'owner', undefined],
    [0o640, 'group', undefined],
    [0o644, 'any', undefined],
    [0o666, 'any', undefined],
  ] as const)('a key file with mode %o under access %s: %s', async (mode, access, refusal) => {
    const path = file(`mode-${mode.toString(8)}-${access}`, KEY_B64, mode);
    const load = loadEncryptionKey({ keyFile: path, keyFileAccess: access });
    if (refusal === undefined) {
      expect((await load).keyId).toBe(KEY_ID);
      return;
    }
    const err = await configError(load);
    expect(err.message).toMatch(refusal);
    expect(err.message).toContain(`unable to use encryption key file '${path}'`);
    expect(err.message).toContain('can decrypt the whole archive');
    expect(err.message).toContain('encryption-key-file-access');
    expect(err.message).not.toContain(KEY_B64);
  });

  it('refuses a key file readable by others by default (like ssh)', async () => {
    const err = await configError(loadEncryptionKey({ keyFile: file('world', KEY_BYTES, 0o644) }));
    expect(err.message).toContain('other users have access to it');
  });

  it('keyFileModeProblem looks only at the permission bits', () => {
    expect(keyFileModeProblem(0o100600, 'owner')).toBeUndefined();
    expect(keyFileModeProblem(0o104700, 'owner')).toBeUndefined();
    expect(keyFileModeProblem(0o100601, 'owner')).toBe('other users have access to it');
    expect(keyFileModeProblem(0o100610, 'group')).toBeUndefined();
  });

  it('wants exactly one source', async () => {
    await configError(loadEncryptionKey({ keyBase64: KEY_B64, keyFile: file('both', KEY_BYTES) }));
    await configError(loadEncryptionKey({}));
    await configError(loadEncryptionKey({ keyBase64: '', keyFile: '' }));
  });
});

describe('EncryptionKey', () => {
  it('never shows the key bytes in JSON, inspect or enumeration', () => {
    const key = new EncryptionKey(KEY_BYTES);
    const b64 = KEY_BYTES.toString('base64');
    const hex = KEY_BYTES.toString('hex');
    for (const text of [JSON.stringify({ cfg: key }), inspect(key, { showHidden: true, depth: 5 }), Object.keys(key).join()]) {
      expect(text).not.toContain(b64);
      expect(text).not.toContain(hex);
      expect(text).not.toContain('0, 1, 2, 3');
    }
    expect(JSON.stringify(key)).toBe(`{"keyId":"${KEY_ID}"}`);
  });

  it('copies the key bytes, so later changes to the caller buffer do not alter it', () => {
    const bytes = Buffer.from(KEY_BYTES);
    const key = new EncryptionKey(bytes);
    bytes.fill(0);
    expect(key.key.equals(KEY_BYTES)).toBe(true);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => new EncryptionKey(Buffer.alloc(16))).toThrow(CryptoError);
    expect(() => new EncryptionKey(Buffer.alloc(16))).toThrow('it is 16 bytes long, AES-256 needs 32');
  });
});
