/**
 * How PostgreSQL's recovery reads a history file, line by line (readTimeLineHistory in
 * src/backend/access/transam/timeline.c, the same in 13 to 17): `fgets` into a 1024-byte buffer,
 * then `sscanf(line, "%u\t%X/%X", ...)`, ignoring the rest of the line. What it accepts is what we
 * must accept: a file PostgreSQL wrote and will read back must never be refused by the archive.
 *
 * The only departures are values the C library cannot store in 32 bits (C leaves that undefined,
 * glibc silently truncates): those are refused rather than guessed.
 */

/** fgets(buf, MAXPGPATH = 1024): at most 1023 bytes per read, so a longer line reads as several. */
const FGETS_BYTES = 1023;

export interface ScannedLine {
  /** 1-based line of the file the chunk starts on (a chunk of a long line keeps its line's number). */
  readonly lineNo: number;
  /** The chunk as C sees it: up to the first NUL, without the line end; for messages. */
  readonly text: string;
  /** What sscanf converted; fewer than 3 fields is a syntax error. */
  readonly fields: 0 | 1 | 2 | 3;
  readonly tli?: bigint;
  /** The timeline ID as written (sign included), for messages. */
  readonly tliText?: string;
  readonly hi?: bigint;
  readonly lo?: bigint;
  /** A number that does not fit 32 bits (or a negative one), which PostgreSQL stores undefined. */
  readonly outOfRange?: 'tli' | 'lsn';
  /** The rest of the line after the switch point, which PostgreSQL ignores (the reason). */
  readonly rest: string;
}

// isspace() in the C locale.
function isSpace(b: number | undefined): boolean {
  return b === 0x20 || (b !== undefined && b >= 0x09 && b <= 0x0d);
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  return -1;
}

interface Scanned {
  readonly value: bigint;
  readonly negative: boolean;
  readonly end: number;
  readonly fits: boolean;
}

/** One %u or %X conversion (strtoul rules): whitespace, an optional sign, for hex an optional 0x. */
function scanUnsigned(buf: Uint8Array, start: number, base: 10 | 16): Scanned | undefined {
  let i = start;
  while (isSpace(buf[i])) i++;
  let negative = false;
  if (buf[i] === 0x2b || buf[i] === 0x2d) {
    negative = buf[i] === 0x2d;
    i++;
  }
  if (base === 16 && buf[i] === 0x30 && (buf[i + 1] === 0x78 || buf[i + 1] === 0x58) && hexValue(buf[i + 2]) >= 0) i += 2;
  const first = i;
  let value = 0n;
  for (;;) {
    const d = hexValue(buf[i]);
    if (d < 0 || d >= base) break;
    value = value * BigInt(base) + BigInt(d);
    i++;
  }
  if (i === first) return undefined;
  return { value, negative, end: i, fits: value <= 0xffff_ffffn && !(negative && value !== 0n) };
}

function scanChunk(chunk: Uint8Array, lineNo: number): ScannedLine | undefined {
  const nul = chunk.indexOf(0);
  const line = nul >= 0 ? chunk.subarray(0, nul) : chunk;
  let p = 0;
  while (isSpace(line[p])) p++;
  if (p === line.length || line[p] === 0x23) return undefined; // blank, or a '#' comment
  const text = Buffer.from(line)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  const tli = scanUnsigned(line, 0, 10);
  if (!tli) return { lineNo, text, fields: 0, rest: '' };
  if (!tli.fits) {
    const tliText = `${tli.negative ? '-' : ''}${String(tli.value)}`;
    return { lineNo, text, fields: 1, tli: tli.value, tliText, outOfRange: 'tli', rest: '' };
  }
  // The "\t" of the format matches any run of whitespace, also none; "/" matches only itself.
  const hi = scanUnsigned(line, tli.end, 16);
  if (!hi || line[hi.end] !== 0x2f) return { lineNo, text, fields: hi ? 2 : 1, tli: tli.value, rest: '' };
  const lo = scanUnsigned(line, hi.end + 1, 16);
  if (!lo) return { lineNo, text, fields: 2, tli: tli.value, hi: hi.value, rest: '' };
  const rest = Buffer.from(line.subarray(lo.end))
    .toString('utf8')
    .replace(/\r?\n$/, '')
    .replace(/^[ \t\v\f\r]+/, '');
  return {
    lineNo,
    text,
    fields: 3,
    tli: tli.value,
    hi: hi.value,
    lo: lo.value,
    ...(hi.fits && lo.fits ? {} : { outOfRange: 'lsn' as const }),
    rest,
  };
}

/** The lines of a history file that hold an entry, as PostgreSQL's reader splits and scans them. */
export function scanHistoryLines(content: string | Uint8Array): ScannedLine[] {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const out: ScannedLine[] = [];
  let lineNo = 1;
  let pos = 0;
  while (pos < bytes.length) {
    const newline = bytes.indexOf(0x0a, pos);
    const lineEnd = newline < 0 ? bytes.length : newline + 1;
    const end = Math.min(lineEnd, pos + FGETS_BYTES);
    const scanned = scanChunk(bytes.subarray(pos, end), lineNo);
    if (scanned) out.push(scanned);
    if (end === lineEnd && newline >= 0) lineNo++;
    pos = end;
  }
  return out;
}
