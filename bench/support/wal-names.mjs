// WAL file name arithmetic for 16 MiB segments (the corpus is made with PostgreSQL's default size).
// Plain JS twin of src/segment/names.ts, kept tiny because the bench needs only these two steps.

const PER_LOG = 0x100000000n / (16n * 1024n * 1024n);

export function segNo(name) {
  return BigInt(`0x${name.slice(8, 16)}`) * PER_LOG + BigInt(`0x${name.slice(16, 24)}`);
}

export function segName(timelineHex, no) {
  const log = no / PER_LOG;
  const seg = no % PER_LOG;
  const hex = (v) => v.toString(16).toUpperCase().padStart(8, '0');
  return `${timelineHex}${hex(log)}${hex(seg)}`;
}

/** `count` consecutive segment names starting at `first`. */
export function segmentRange(first, count) {
  const tli = first.slice(0, 8);
  const start = segNo(first);
  return Array.from({ length: count }, (_, i) => segName(tli, start + BigInt(i)));
}

export const SEGMENT_RE = /^[0-9A-F]{24}$/;
