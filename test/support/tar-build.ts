/**
 * Tar bytes built here field by field from the ustar layout (POSIX pax spec, "ustar Interchange
 * Format"), the way PostgreSQL's src/port/tar.c fills them: octal fields NUL-terminated, checksum
 * "%06o\0 ", magic "ustar\0" version "00". Independent of the parser under test.
 */
export interface HeaderSpec {
  name: string;
  type?: string;
  mode?: number;
  size?: number;
  mtime?: number;
  link?: string;
  prefix?: string;
  magic?: string;
  /** Raw bytes for a numeric field, replacing the octal text (base-256 cases). */
  rawSize?: number[];
  rawMtime?: number[];
  checksumDelta?: number;
}

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

export function header(spec: HeaderSpec): Buffer {
  const h = Buffer.alloc(512);
  h.write(spec.name, 0, 100, 'utf8');
  octal(h, 100, 8, spec.mode ?? 0o600);
  octal(h, 108, 8, 26);
  octal(h, 116, 8, 26);
  if (spec.rawSize) Buffer.from(spec.rawSize).copy(h, 124);
  else octal(h, 124, 12, spec.size ?? 0);
  if (spec.rawMtime) Buffer.from(spec.rawMtime).copy(h, 136);
  else octal(h, 136, 12, spec.mtime ?? 1_764_633_600);
  h.write(spec.type ?? '0', 156, 1, 'latin1');
  if (spec.link) h.write(spec.link, 157, 100, 'utf8');
  h.write(spec.magic ?? 'ustar\u000000', 257, 8, 'latin1');
  h.write('postgres', 265, 32, 'latin1');
  h.write('postgres', 297, 32, 'latin1');
  if (spec.prefix) h.write(spec.prefix, 345, 155, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  sum += spec.checksumDelta ?? 0;
  h.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

export function file(name: string, content: Buffer, extra: Partial<HeaderSpec> = {}): Buffer {
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header({ name, size: content.length, ...extra }), content, pad]);
}

export const TERMINATOR = Buffer.alloc(1024);
