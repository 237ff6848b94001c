// WAL file names of the corpus (made with PostgreSQL's default 16 MiB segments), through the
// compiled product code (dist/segment) so that the arithmetic exists once. `npm run bench` builds.
import { SegmentName } from '../../dist/segment/names.js';

const SEG_SIZE = 16 * 1024 * 1024;

export function segNo(name) {
  return SegmentName.parse(name, SEG_SIZE).segno;
}

/** `count` consecutive segment names starting at `first`. */
export function segmentRange(first, count) {
  if (count <= 0) return [];
  let s = SegmentName.parse(first, SEG_SIZE);
  const names = [s.name];
  while (names.length < count) {
    s = s.next();
    names.push(s.name);
  }
  return names;
}
