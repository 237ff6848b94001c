/**
 * Files that hold secrets (the archive encryption key, the S3 secret access key): read with their
 * mode checked, as ssh does for private keys, so a key others can read is refused with the reason
 * and the fix instead of used silently.
 */
import { open } from 'node:fs/promises';
import { ConfigError, describeCause } from './errors.js';

/** `owner`: refuse any group or other permission; `group`: allow the group; `any`: no check. */
export type KeyFileAccess = 'owner' | 'group' | 'any';

/** Why a secret file with this mode is refused under `access`, or undefined when it is fine. */
export function keyFileModeProblem(mode: number, access: KeyFileAccess): string | undefined {
  if (access === 'any') return undefined;
  if ((mode & 0o007) !== 0) return 'other users have access to it';
  if (access === 'owner' && (mode & 0o070) !== 0) return 'its group has access to it';
  return undefined;
}

export interface SecretFileRules {
  /** What the file holds, for messages: `encryption key file`, `S3 secret access key file`. */
  readonly what: string;
  readonly access: KeyFileAccess;
  /** The setting that relaxes the check, named in the refusal. */
  readonly accessSetting: string;
  /** Why a readable file matters, said in the refusal (optional). */
  readonly risk?: string;
}

/** The file's bytes, after checking the mode of the very file that was read. */
export async function readSecretFile(path: string, rules: SecretFileRules): Promise<Buffer> {
  let mode: number;
  let bytes: Buffer;
  try {
    // Mode and bytes from the same open file, so a chmod or a swap in between cannot slip through.
    const handle = await open(path, 'r');
    try {
      mode = (await handle.stat()).mode;
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new ConfigError(`unable to read ${rules.what} '${path}': ${describeCause(err)}`, { cause: err });
  }
  const problem = keyFileModeProblem(mode, rules.access);
  if (problem !== undefined) {
    throw new ConfigError(
      `unable to use ${rules.what} '${path}': ${problem} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
        (rules.risk ? `${rules.risk}. ` : '') +
        `chmod 600 it (640 with ${rules.accessSetting} = group for a group the server runs in), ` +
        `or set ${rules.accessSetting} = any to accept it`,
    );
  }
  return bytes;
}
