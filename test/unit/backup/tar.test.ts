import { describe, expect, it } from 'vitest';
import { TarParser, type TarEntry, type TarHandler } from '../../../src/backup/tar.js';
import { IntegrityError } from '../../../src/common/errors.js';
import { TERMINATOR, file, header } from '../../support/tar-build.js';

type Event = { entry: TarEntry } | { data: string } | 'end';

class Collector implements TarHandler {
  events: Event[] = [];
  async entry(entry: TarEntry): Promise<void> {
    await Promise.resolve();
    this.events.push({ entry });
  }
  data(chunk: Buffer): void {
    // Merge adjacent data so chunking does not change what is compared.
    const last = this.events[this.events.length - 1];
    if (last && typeof last === 'object' && 'data' in last) last.data += chunk.toString('latin1');
    else this.events.push({ data: chunk.toString('latin1') });
  }
  entryEnd(): void {
    this.events.push('end');
  }
}

async function parse(parts: Buffer[], requireTerminator = true): Promise<Event[]> {
  const c = new Collector();
  const p = new TarParser(c, { archive: 'base.tar', requireTerminator });
  for (const part of parts) await p.push(part);
  p.finish();
  return c.events;
}

const labelText = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n');
const block = Buffer.alloc(512, 0x41);
const odd = Buffer.alloc(1000, 0x62);

/** What PostgreSQL sends: backup_label first, dirs with a trailing '/', a symlink, an empty file, pg_control last. */
const archive = Buffer.concat([
  file('backup_label', labelText),
  header({ name: 'base/', type: '5', mode: 0o700 }),
  file('base/1/1259', odd, { mode: 0o600, mtime: 0o14777777777 }),
  file('base/1/PG_VERSION', Buffer.from('15\n')),
  header({ name: 'pg_tblspc/16385', type: '2', mode: 0o777, link: '/srv/ts1' }),
  file('base/1/empty', Buffer.alloc(0)),
  header({ name: 'pg_wal/', type: '5', mode: 0o700 }),
  file('global/pg_control', block),
  TERMINATOR,
]);

const expected: Event[] = [
  { entry: { type: 'file', name: 'backup_label', mode: 0o600, mtime: 1_764_633_600, size: labelText.length, linkTarget: null } },
  { data: labelText.toString('latin1') },
  'end',
  { entry: { type: 'dir', name: 'base/', mode: 0o700, mtime: 1_764_633_600, size: 0, linkTarget: null } },
  { entry: { type: 'file', name: 'base/1/1259', mode: 0o600, mtime: 0o14777777777, size: 1000, linkTarget: null } },
  { data: odd.toString('latin1') },
  'end',
  { entry: { type: 'file', name: 'base/1/PG_VERSION', mode: 0o600, mtime: 1_764_633_600, size: 3, linkTarget: null } },
  { data: '15\n' },
  'end',
  { entry: { type: 'link', name: 'pg_tblspc/16385', mode: 0o777, mtime: 1_764_633_600, size: 0, linkTarget: '/srv/ts1' } },
  { entry: { type: 'file', name: 'base/1/empty', mode: 0o600, mtime: 1_764_633_600, size: 0, linkTarget: null } },
  'end',
  { entry: { type: 'dir', name: 'pg_wal/', mode: 0o700, mtime: 1_764_633_600, size: 0, linkTarget: null } },
  { entry: { type: 'file', name: 'global/pg_control', mode: 0o600, mtime: 1_764_633_600, size: 512, linkTarget: null } },
  { data: block.toString('latin1') },
  'end',
];

async function parseError(parts: Buffer[], requireTerminator = true): Promise<IntegrityError> {
  const err = await parse(parts, requireTerminator).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IntegrityError);
  return err as IntegrityError;
}

describe('TarParser', () => {
  it('parses what PostgreSQL sends, in one chunk', async () => {
    expect(await parse([archive])).toEqual(expected);
  });

  it('gives the same events when split at every byte', async () => {
    for (let cut = 1; cut < archive.length; cut++) {
      const events = await parse([archive.subarray(0, cut), archive.subarray(cut)]);
      if (JSON.stringify(events) !== JSON.stringify(expected)) throw new Error(`split at ${cut} differs`);
    }
  });

  it('gives the same events when fed byte by byte and in three uneven parts', async () => {
    const bytes = Array.from({ length: archive.length }, (_, i) => archive.subarray(i, i + 1));
    expect(await parse(bytes)).toEqual(expected);
    expect(await parse([archive.subarray(0, 700), archive.subarray(700, 2049), archive.subarray(2049)])).toEqual(expected);
  });

  it('hands file data on as views of the pushed chunk (no copy)', async () => {
    const chunk = Buffer.concat([file('a', Buffer.from('xyz')), TERMINATOR]);
    const seen: Buffer[] = [];
    const p = new TarParser({ entry() {}, data: (c) => void seen.push(c), entryEnd() {} }, { archive: 'a.tar', requireTerminator: true });
    await p.push(chunk);
    p.finish();
    expect(seen[0]?.buffer).toBe(chunk.buffer);
    expect(p.entryCount).toBe(1);
  });

  it('accepts a PG13/14 archive without terminator only when no terminator is required', async () => {
    const noTerm = archive.subarray(0, archive.length - 1024);
    expect(await parse([noTerm], false)).toEqual(expected);
    expect((await parseError([noTerm], true)).message).toMatch(/archive ends inside header or terminator/);
    expect(await parse([], false)).toEqual([]);
    expect(await parse([TERMINATOR], true)).toEqual([]);
  });

  it('accepts extra zero blocks after the terminator but not one zero block alone on 15+', async () => {
    expect(await parse([archive, Buffer.alloc(512 * 18)])).toEqual(expected);
    expect((await parseError([file('a', Buffer.from('x')), Buffer.alloc(512)])).message).toMatch(/ends inside header or terminator/);
  });

  it('refuses truncation inside a header, inside data and inside padding', async () => {
    const one = file('a', Buffer.alloc(700, 1));
    expect((await parseError([one.subarray(0, 100)], false)).message).toMatch(/ends inside header/);
    expect((await parseError([one.subarray(0, 900)], false)).message).toMatch(/ends inside file data/);
    expect((await parseError([one.subarray(0, 1213)], false)).message).toMatch(/ends inside file data/);
  });

  it('refuses a header after the terminator and bytes after finish', async () => {
    const err = await parseError([Buffer.concat([TERMINATOR, file('late', Buffer.from('x'))])]);
    expect(err.message).toMatch(/data after the end-of-archive blocks/);
    const p = new TarParser({ entry() {}, data() {}, entryEnd() {} }, { archive: 'base.tar', requireTerminator: false });
    p.finish();
    await expect(p.push(Buffer.alloc(1))).rejects.toThrow(/bytes after the end of the archive/);
  });

  it('refuses a header whose checksum does not match, naming archive and offset', async () => {
    const bad = Buffer.concat([file('backup_label', labelText), header({ name: 'x', checksumDelta: 1 }), TERMINATOR]);
    const err = await parseError([bad]);
    expect(err.message).toMatch(
      /^unable to parse tar archive 'base.tar': header checksum mismatch \(stored \d+, computed \d+\) at offset 1024$/,
    );
    const flipped = Buffer.from(archive);
    flipped[1024 + 5] = (flipped[1024 + 5] as number) ^ 1;
    expect((await parseError([flipped])).message).toMatch(/header checksum mismatch/);
  });

  it('refuses pax, GNU long-name and other entry types clearly', async () => {
    expect((await parseError([header({ name: 'PaxHeader/x', type: 'x', size: 0 })])).message).toMatch(
      /unsupported pax extended header 'x'/,
    );
    expect((await parseError([header({ name: 'g', type: 'g' })])).message).toMatch(/unsupported pax extended header 'g'/);
    expect((await parseError([header({ name: '././@LongLink', type: 'L' })])).message).toMatch(/unsupported GNU long name 'L'/);
    expect((await parseError([header({ name: 'hard', type: '1', link: 'a' })])).message).toMatch(/unsupported entry type '1'/);
  });

  it('refuses a header that is not ustar, bad octal, and a directory with a size', async () => {
    expect((await parseError([header({ name: 'a', magic: 'garbage' })])).message).toMatch(/not a ustar header/);
    const h = header({ name: 'a' });
    h.write('9', 124, 1, 'latin1');
    // Fix the checksum so that only the size field is wrong.
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
    expect((await parseError([h])).message).toMatch(/bad size field "90000000000"/);
    expect((await parseError([header({ name: 'd/', type: '5', size: 5 })])).message).toMatch(/dir 'd\/' has size 5/);
  });

  it('reads base-256 size and mtime (values beyond 11 octal digits)', async () => {
    // 8 GiB + 1 byte does not fit in 11 octal digits: 0x80, then the value big-endian.
    const big = 8 * 1024 ** 3 + 1;
    const sizeBytes = [0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x01];
    const mtimeBytes = [0x80, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0];
    const events: TarEntry[] = [];
    const p = new TarParser(
      { entry: (e) => void events.push(e), data() {}, entryEnd() {} },
      { archive: 'base.tar', requireTerminator: false },
    );
    await p.push(header({ name: 'huge', rawSize: sizeBytes, rawMtime: mtimeBytes }));
    expect(events[0]).toMatchObject({ size: big, mtime: 2 ** 32 });
    const negative = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    expect((await parseError([header({ name: 'neg', rawMtime: negative })])).message).toMatch(/negative mtime/);
    const huge = [0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    expect((await parseError([header({ name: 'big', rawSize: huge })])).message).toMatch(/size \d+ is out of range/);
  });

  it('joins the ustar prefix and accepts full-width 100-byte names', async () => {
    const long = 'd'.repeat(100);
    const events = await parse([file(long, Buffer.from('1'), { prefix: 'pre' }), TERMINATOR]);
    expect(events[0]).toEqual({ entry: expect.objectContaining({ name: `pre/${long}` }) as unknown });
  });

  it('refuses names that are not UTF-8 and entries without a name', async () => {
    const h = header({ name: 'x' });
    h[0] = 0xff;
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
    expect((await parseError([h])).message).toMatch(/name at header offset 0 is not UTF-8/);
    expect((await parseError([header({ name: '' })])).message).toMatch(/entry without a name/);
  });

  it('waits for every handler promise before it reads on', async () => {
    const order: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const p = new TarParser(
      {
        async entry(e) {
          order.push(`entry ${e.name}`);
          if (e.name === 'a') await gate;
        },
        data: () => void order.push('data'),
        entryEnd: () => void order.push('end'),
      },
      { archive: 'base.tar', requireTerminator: true },
    );
    const pushed = p.push(Buffer.concat([file('a', Buffer.from('1')), file('b', Buffer.from('2')), TERMINATOR]));
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['entry a']);
    release();
    await pushed;
    p.finish();
    expect(order).toEqual(['entry a', 'data', 'end', 'entry b', 'data', 'end']);
  });
});
