/**
 * Streaming parser for the tar archives BASE_BACKUP sends (PostgreSQL's src/port/tar.c writes
 * them): push bytes in chunks of any size, get entry headers and file data back in order, with
 * nothing buffered beyond one 512-byte header. File data is handed on as views into the pushed
 * chunk (zero copy), so a consumer must copy what it keeps past its call.
 *
 * Only what PostgreSQL writes is accepted: ustar headers with regular files ('0' or NUL),
 * directories ('5') and symlinks ('2'). PostgreSQL fails the backup with "file name too long for
 * tar format" rather than writing pax ('x', 'g') or GNU long-name ('L', 'K') headers, so meeting
 * one means the stream is not what we think it is: refused as an IntegrityError, like a header
 * whose checksum does not match.
 *
 * End of archive: PG15+ ends each archive with two 512-byte zero blocks; PG13/14 send none and the
 * archive ends with its CopyOut. `finish()` tells the two apart through `requireTerminator`.
 */
import { IntegrityError } from '../common/errors.js';

export const TAR_BLOCK = 512;

export interface TarEntry {
  readonly type: 'file' | 'dir' | 'link';
  /** As stored (prefix/name joined); directories keep PostgreSQL's trailing '/'. */
  readonly name: string;
  readonly mode: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Data bytes that follow (0 for directories and links). */
  readonly size: number;
  readonly linkTarget: string | null;
}

export interface TarHandler {
  entry(entry: TarEntry): Promise<void> | void;
  /** The next bytes of the current file; only valid during the call. */
  data(chunk: Buffer): Promise<void> | void;
  /** All `size` bytes of the current file were delivered. */
  entryEnd(): Promise<void> | void;
}

export interface TarParserOptions {
  /** Archive name for error messages (e.g. base.tar). */
  readonly archive: string;
  /** PG15+: the archive must end with its zero blocks. */
  readonly requireTerminator: boolean;
}

type State = 'header' | 'data' | 'padding' | 'terminator';

export class TarParser {
  private state: State = 'header';
  private readonly header = Buffer.alloc(TAR_BLOCK);
  private headerFill = 0;
  /** Data bytes left of the current file, then padding bytes left to the block boundary. */
  private dataLeft = 0;
  private padLeft = 0;
  private zeroBlocks = 0;
  private entries = 0;
  private offset = 0;
  private finished = false;

  constructor(
    private readonly handler: TarHandler,
    private readonly opts: TarParserOptions,
  ) {}

  /** Parses `chunk`; resolves after every handler call it caused has settled. */
  async push(chunk: Buffer): Promise<void> {
    if (this.finished) throw this.fail('bytes after the end of the archive');
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === 'header' || this.state === 'terminator') {
        const take = Math.min(TAR_BLOCK - this.headerFill, chunk.length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < TAR_BLOCK) break;
        this.headerFill = 0;
        await this.block();
        this.offset += TAR_BLOCK;
      } else if (this.state === 'data') {
        const take = Math.min(this.dataLeft, chunk.length - pos);
        this.dataLeft -= take;
        this.offset += take;
        const part = chunk.subarray(pos, pos + take);
        pos += take;
        await this.handler.data(part);
        if (this.dataLeft === 0) await this.endData();
      } else {
        const take = Math.min(this.padLeft, chunk.length - pos);
        pos += take;
        this.offset += take;
        this.padLeft -= take;
        if (this.padLeft === 0) this.state = 'header';
      }
    }
  }

  /** The archive ended (next archive, manifest or CopyDone): it must not end inside an entry. */
  finish(): void {
    this.finished = true;
    // Two zero blocks end a tar archive; PostgreSQL 15+ writes exactly those.
    if (this.state === 'terminator' && this.headerFill === 0 && (this.zeroBlocks >= 2 || !this.opts.requireTerminator)) return;
    if (this.state === 'header' && this.headerFill === 0 && !this.opts.requireTerminator) return;
    const where = this.state === 'header' || this.state === 'terminator' ? 'header or terminator' : 'file data';
    throw this.fail(`archive ends inside ${where} (truncated stream)`);
  }

  /** Number of entries seen so far. */
  get entryCount(): number {
    return this.entries;
  }

  private async block(): Promise<void> {
    const h = this.header;
    if (isZero(h)) {
      // The first zero block starts the terminator; after it only zero blocks may follow.
      this.state = 'terminator';
      this.zeroBlocks++;
      return;
    }
    if (this.state === 'terminator') throw this.fail(`data after the end-of-archive blocks`);
    const entry = parseHeader(h, (reason) => this.fail(reason));
    this.entries++;
    await this.handler.entry(entry);
    if (entry.type !== 'file') return;
    this.dataLeft = entry.size;
    this.padLeft = (TAR_BLOCK - (entry.size % TAR_BLOCK)) % TAR_BLOCK;
    if (entry.size === 0) await this.endData();
    else this.state = 'data';
  }

  private async endData(): Promise<void> {
    this.state = this.padLeft > 0 ? 'padding' : 'header';
    await this.handler.entryEnd();
  }

  private fail(reason: string): IntegrityError {
    return new IntegrityError(`unable to parse tar archive '${this.opts.archive}': ${reason} at offset ${this.offset}`);
  }
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses one non-zero 512-byte header block. `fail` builds the error for a reason. */
export function parseHeader(h: Buffer, fail: (reason: string) => Error): TarEntry {
  const stored = readOctal(h, 148, 8, 'checksum', fail);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  if (stored !== sum) throw fail(`header checksum mismatch (stored ${stored}, computed ${sum})`);
  if (h.toString('latin1', 257, 262) !== 'ustar') throw fail('not a ustar header');
  const flag = String.fromCharCode(h[156] as number);
  const type = flag === '0' || flag === '\0' ? 'file' : flag === '5' ? 'dir' : flag === '2' ? 'link' : undefined;
  if (type === undefined) {
    const what = flag === 'x' || flag === 'g' ? 'pax extended header' : flag === 'L' || flag === 'K' ? 'GNU long name' : 'entry type';
    throw fail(`unsupported ${what} '${printable(flag)}' (PostgreSQL writes only files, directories and symlinks)`);
  }
  const name = field(h, 0, 100, fail);
  const prefix = field(h, 345, 155, fail);
  const fullName = prefix ? `${prefix}/${name}` : name;
  if (fullName === '') throw fail('entry without a name');
  const size = readNumber(h, 124, 12, 'size', fail);
  if (type !== 'file' && size !== 0) throw fail(`${type} '${fullName}' has size ${size}`);
  return {
    type,
    name: fullName,
    mode: readNumber(h, 100, 8, 'mode', fail) & 0o7777,
    mtime: readNumber(h, 136, 12, 'mtime', fail),
    size,
    linkTarget: type === 'link' ? field(h, 157, 100, fail) : null,
  };
}

function printable(c: string): string {
  return /^[\x21-\x7e]$/.test(c) ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** A NUL-terminated (or full-width) UTF-8 string field. */
function field(h: Buffer, off: number, len: number, fail: (reason: string) => Error): string {
  let end = h.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  try {
    return utf8.decode(h.subarray(off, end));
  } catch {
    throw fail(`name at header offset ${off} is not UTF-8`);
  }
}

/** Octal or (for values too large for octal digits) base-256 with the high bit of byte 0 set. */
function readNumber(h: Buffer, off: number, len: number, what: string, fail: (reason: string) => Error): number {
  const first = h[off] as number;
  if ((first & 0x80) === 0) return readOctal(h, off, len, what, fail);
  if (first === 0xff) throw fail(`negative ${what}`);
  let v = BigInt(first & 0x7f);
  for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(h[off + i] as number);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`${what} ${v} is out of range`);
  return Number(v);
}

/** Octal digits, optionally surrounded by spaces and ended by NUL or space. */
function readOctal(h: Buffer, off: number, len: number, what: string, fail: (reason: string) => Error): number {
  const text = h
    .toString('latin1', off, off + len)
    .replace(/\0.*$/s, '')
    .trim();
  if (!/^[0-7]+$/.test(text)) throw fail(`bad ${what} field ${JSON.stringify(text)}`);
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw fail(`${what} out of range`);
  return v;
}
