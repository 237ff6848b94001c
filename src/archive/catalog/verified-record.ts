/**
 * The verified-objects record: which objects wal-verify has already checked, so a later run does
 * not read them again. A local file (never in the archive: it is a cache of this host's work, and
 * losing it only costs time), one per archive and identity, in the directory `verify-record`
 * names (default `$XDG_CACHE_HOME/walvault` or `~/.cache/walvault`):
 *
 *   walvault-verified 1 <system id> <wal segment size> <storage description as JSON>
 *   <key> TAB <size> TAB <mtime ms> TAB h|d        one line per object, in listing (key) order
 *
 * `h`: its header agreed with its key and the identity; `d`: it was downloaded and verified in full
 * (`--deep`). A line only counts while the listed object has the same key (which holds the SHA-256
 * of the content), size and modification time: a replaced, truncated or rewritten object is checked
 * again. Both the listing and the file are in key order, so they are read side by side (a merge) and
 * neither is held in memory. Written to a temp file and renamed over the old one at the end of a
 * complete run; a torn or unreadable file only means objects are checked again.
 */
import { createReadStream, createWriteStream, mkdirSync, promises as fs, type WriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { compareKeys } from '../../storage/key.js';
import type { ArchiveIdentity } from '../identity.js';

export type VerifiedLevel = 'h' | 'd';

export interface VerifiedLine {
  readonly key: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly level: VerifiedLevel;
}

const MAGIC = 'walvault-verified 1';

function headerLine(identity: ArchiveIdentity, description: string): string {
  return `${MAGIC} ${identity.systemId} ${identity.walSegSize} ${JSON.stringify(description)}`;
}

/** Where the record of `description` lives under `setting` (`auto`, `off` or a directory). */
export function verifiedRecordPath(setting: string, description: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (setting === 'off' || setting === '') return undefined;
  const dir = setting === 'auto' ? join(env['XDG_CACHE_HOME'] || join(env['HOME'] || homedir(), '.cache'), 'walvault') : setting;
  const id = createHash('sha256').update(description).digest('hex').slice(0, 32);
  return join(dir, `verified-${id}.tsv`);
}

function parseLine(line: string): VerifiedLine | undefined {
  const [key, size, mtime, level, extra] = line.split('\t');
  if (extra !== undefined || !key || (level !== 'h' && level !== 'd')) return undefined;
  const s = Number(size);
  const m = Number(mtime);
  if (!Number.isSafeInteger(s) || !Number.isSafeInteger(m)) return undefined;
  return { key, size: s, mtimeMs: m, level };
}

/** Reads an old record alongside a listing in key order. */
export class VerifiedReader {
  private lines: AsyncIterator<string> | undefined;
  private current: VerifiedLine | undefined;
  private done = false;

  private constructor(private readonly stream: ReturnType<typeof createReadStream> | undefined) {
    if (stream) this.lines = createInterface({ input: stream, crlfDelay: Infinity })[Symbol.asyncIterator]();
    else this.done = true;
  }

  /** A reader of the record at `path`; empty when it is missing, unreadable or for another identity. */
  static async open(path: string | undefined, identity: ArchiveIdentity, description: string): Promise<VerifiedReader> {
    if (path === undefined) return new VerifiedReader(undefined);
    try {
      await fs.access(path);
    } catch {
      return new VerifiedReader(undefined);
    }
    const reader = new VerifiedReader(createReadStream(path, { encoding: 'utf8' }));
    reader.stream?.on('error', () => undefined);
    const first = await reader.nextRaw();
    if (first !== headerLine(identity, description)) reader.close();
    return reader;
  }

  private async nextRaw(): Promise<string | undefined> {
    if (this.done || !this.lines) return undefined;
    try {
      const r = await this.lines.next();
      if (r.done) this.close();
      return r.done ? undefined : r.value;
    } catch {
      this.close();
      return undefined;
    }
  }

  /** The line for `key`, if the record has one; keys must be asked in ascending order. */
  async find(key: string): Promise<VerifiedLine | undefined> {
    for (;;) {
      if (!this.current) {
        const raw = await this.nextRaw();
        if (raw === undefined) return undefined;
        const parsed = parseLine(raw);
        if (!parsed) {
          this.close(); // not ours, or torn: stop trusting the rest
          return undefined;
        }
        this.current = parsed;
      }
      const c = compareKeys(this.current.key, key);
      if (c > 0) return undefined;
      const line = this.current;
      this.current = undefined;
      if (c === 0) return line;
    }
  }

  close(): void {
    this.done = true;
    this.current = undefined;
    this.stream?.destroy();
  }
}

/** Writes the new record; nothing replaces the old one unless commit() is reached. */
export class VerifiedWriter {
  private failed = false;

  private constructor(
    private readonly path: string,
    private readonly temp: string,
    private readonly out: WriteStream,
  ) {
    out.on('error', () => (this.failed = true));
  }

  /** A writer, or undefined when the record is off or its directory cannot be made. */
  static create(path: string | undefined, identity: ArchiveIdentity, description: string): VerifiedWriter | undefined {
    if (path === undefined) return undefined;
    try {
      mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    } catch {
      return undefined;
    }
    const temp = `${path}.${process.pid}.tmp`;
    const w = new VerifiedWriter(path, temp, createWriteStream(temp, { mode: 0o600 }));
    w.out.write(`${headerLine(identity, description)}\n`);
    return w;
  }

  add(line: VerifiedLine): void {
    if (this.failed) return;
    // Backpressure is not worth waiting for: a record of 200k objects is a few MB.
    this.out.write(`${line.key}\t${line.size}\t${line.mtimeMs}\t${line.level}\n`);
  }

  /** Replaces the old record; false when writing failed (the old one is then kept). */
  async commit(): Promise<boolean> {
    await new Promise<void>((resolve) => this.out.end(() => resolve()));
    if (this.failed) {
      await this.abandon();
      return false;
    }
    try {
      await fs.rename(this.temp, this.path);
      return true;
    } catch {
      await this.abandon();
      return false;
    }
  }

  async abandon(): Promise<void> {
    this.out.destroy();
    await fs.rm(this.temp, { force: true }).catch(() => undefined);
  }
}
