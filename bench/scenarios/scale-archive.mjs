// Builds the scale scenario's archives cheaply: one real segment pushed by wal-push (which also
// writes the identity record), then `count` small objects under valid keys for the segments before
// it, each with its own header naming its key's file, checksum and start LSN, a zstd codec and the
// real cluster's system id, so wal-list, wal-show and wal-verify (headers) treat them as WAL objects
// of this cluster. Their payload is 32 bytes: only `wal-verify --deep` would notice.
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const SEG = 16 * 1024 * 1024;
const PER_LOG = 0x100000000 / SEG;
const hex = (n, w = 8) => n.toString(16).toUpperCase().padStart(w, '0');

export function segmentName(tli, segno) {
  return `${hex(tli)}${hex(Math.floor(segno / PER_LOG))}${hex(segno % PER_LOG)}`;
}

function startLsn(segno) {
  const lsn = BigInt(segno) * BigInt(SEG);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The header (decoded) and key of the one real segment object in `archiveDir`. */
export async function realObject(root, archiveDir, name) {
  const { decodeObjectHeader } = await import(pathToFileURL(join(root, 'dist', 'archive', 'object-header.js')).href);
  const dir = join(archiveDir, 'wal', name.slice(0, 8), name.slice(0, 16));
  const leaf = readdirSync(dir).find((f) => f.startsWith(`${name}-`));
  if (!leaf) throw new Error(`no archived object for ${name} in ${dir}`);
  const bytes = readFileSync(join(dir, leaf));
  const decoded = decodeObjectHeader(bytes, leaf);
  return { meta: decoded.meta, key: `wal/${name.slice(0, 8)}/${name.slice(0, 16)}/${leaf}` };
}

/**
 * The fake objects for segments `first .. first+count-1` of timeline 1: [{ key, bytes }] produced
 * one at a time (the caller writes them wherever it stores objects).
 */
export async function* fakeObjects(root, template, first, count) {
  const { encodeObjectHeader } = await import(pathToFileURL(join(root, 'dist', 'archive', 'object-header.js')).href);
  const payload = Buffer.alloc(32, 0x5a);
  for (let segno = first; segno < first + count; segno++) {
    const name = segmentName(1, segno);
    const sha256 = createHash('sha256').update(name).digest('hex');
    const meta = { ...template, name, kind: 'segment', sha256, payloadBytes: payload.length, timeline: 1, startLsn: startLsn(segno) };
    const bytes = Buffer.concat([encodeObjectHeader(meta), payload]);
    yield { key: `wal/${name.slice(0, 8)}/${name.slice(0, 16)}/${name}-${sha256}.zst`, bytes };
  }
}

/** Writes the fakes into a posix archive, owned by `ids` (the PostgreSQL OS user). */
export async function writePosixFakes(root, archiveDir, template, first, count, ids) {
  const made = new Set();
  let n = 0;
  for await (const { key, bytes } of fakeObjects(root, template, first, count)) {
    const dir = join(archiveDir, ...key.split('/').slice(0, -1));
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const d of [join(archiveDir, 'wal'), join(archiveDir, 'wal', key.slice(4, 12)), dir]) chownSync(d, ids.uid, ids.gid);
      made.add(dir);
    }
    const file = join(archiveDir, ...key.split('/'));
    writeFileSync(file, bytes, { mode: 0o600 });
    chownSync(file, ids.uid, ids.gid);
    n++;
  }
  return n;
}

/**
 * Writes objects straight into s3rver's filesystem layout (`<key>._S3rver_object` plus its `.md5`),
 * which is far faster than 20k PUTs through it; s3rver serves them like uploaded ones.
 */
export function writeS3rverObject(s3Dir, bucket, key, bytes) {
  const parts = key.split('/');
  const leaf = parts.pop();
  const dir = join(s3Dir, bucket, ...parts);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${leaf}._S3rver_object`);
  writeFileSync(file, bytes);
  writeFileSync(`${file}.md5`, createHash('md5').update(bytes).digest('hex'));
}
