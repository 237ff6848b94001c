/**
 * wal-list's output, table or JSON, byte for byte what renderWalList / JSON.stringify print, from
 * rows handed over one at a time. A table's column widths are known only after the last row, so the
 * rows go to a temp file first (one line each) and are padded on the way out: memory stays small
 * whatever the archive's size.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { count, formatBytes } from '../../common/format.js';
import type { WalListRow } from '../../ops/list.js';
import { WAL_LIST_COLUMNS, walListCells } from './list.js';
import type { WalListHead, WalRowSink } from '../../ops/list-stream.js';

const COLUMNS = WAL_LIST_COLUMNS;
const cells = walListCells;

/** Collects rows into a temp file, then prints them through `out` in chunks. */
export class WalListPrinter implements WalRowSink {
  private readonly dir = mkdtempSync(join(tmpdir(), 'walvault-list-'));
  private readonly file = join(this.dir, 'rows');
  private fd = openSync(this.file, 'w', 0o600);
  private readonly widths = COLUMNS.map((c) => c.title.length);
  private readonly kinds = { segment: 0, partial: 0, backup: 0, history: 0 };
  private rows = 0;
  private stored = 0;
  private original = 0;
  private pending: string[] = [];

  constructor(private readonly json: boolean) {}

  row(r: WalListRow): void {
    this.rows++;
    if (this.json) {
      this.push(JSON.stringify(r)); // one line each; indented when printed
      return;
    }
    const c = cells(r);
    c.forEach((cell, i) => {
      if (cell.length > this.widths[i]!) this.widths[i] = cell.length;
    });
    this.kinds[r.kind]++;
    this.stored += r.storedBytes;
    this.original += r.originalBytes ?? 0;
    // Cells never hold a tab or newline: names are WAL file names, the rest is ours.
    this.push(c.join('\t'));
  }

  restart(): void {
    this.pending = [];
    this.closeFile();
    this.fd = openSync(this.file, 'w', 0o600);
    this.widths.splice(0, this.widths.length, ...COLUMNS.map((c) => c.title.length));
    this.kinds.segment = this.kinds.partial = this.kinds.backup = this.kinds.history = 0;
    this.rows = this.stored = this.original = 0;
  }

  private push(line: string): void {
    this.pending.push(line);
    if (this.pending.length >= 512) this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    writeSync(this.fd, `${this.pending.join('\n')}\n`);
    this.pending = [];
  }

  private line(c: readonly string[]): string {
    return COLUMNS.map((col, i) => {
      const cell = c[i] ?? '';
      const w = this.widths[i]!;
      return 'align' in col && col.align === 'right' ? cell.padStart(w) : cell.padEnd(w);
    })
      .join('  ')
      .trimEnd();
  }

  /** Prints everything (through `out`, which ends what it prints with a newline) and removes the temp file. */
  async print(head: WalListHead, out: (text: string) => void): Promise<void> {
    this.flush();
    this.closeFile();
    if (this.json) {
      const start = JSON.stringify({ archive: head.archive, systemId: head.systemId, walSegSize: head.walSegSize }, null, 2).slice(0, -2);
      if (this.rows === 0) return out(`${start},\n  "rows": []\n}`);
      out(`${start},\n  "rows": [`);
      const indent = (l: string): string => JSON.stringify(JSON.parse(l) as unknown, null, 2).replace(/\n/g, '\n    ');
      await this.eachLine((l, last) => `    ${indent(l)}${last ? '' : ','}`, out);
      return out('  ]\n}');
    }
    if (this.rows === 0) return out(`no WAL files in ${head.archive} match`);
    out(this.line(COLUMNS.map((c) => c.title)));
    await this.eachLine((l) => this.line(l.split('\t')), out);
    const k = this.kinds;
    out(
      `${count(k.segment, 'segment')}, ${count(k.partial, 'partial')}, ${count(k.backup, 'backup label')}, ${count(k.history, 'history file')}; ` +
        `${formatBytes(this.stored)} stored${this.original > 0 ? ` for ${formatBytes(this.original)} of WAL` : ''}`,
    );
  }

  private async eachLine(render: (line: string, last: boolean) => string, out: (text: string) => void): Promise<void> {
    let held: string | undefined;
    let chunk: string[] = [];
    let seen = 0;
    for await (const l of createInterface({ input: createReadStream(this.file, { encoding: 'utf8' }), crlfDelay: Infinity })) {
      if (held !== undefined) chunk.push(render(held, false));
      held = l;
      if (++seen % 512 === 0) {
        if (chunk.length > 0) out(chunk.join('\n'));
        chunk = [];
      }
    }
    if (held !== undefined) chunk.push(render(held, true));
    if (chunk.length > 0) out(chunk.join('\n'));
  }

  /** Closes the temp file once (a second close could hit a descriptor reused by someone else). */
  private closeFile(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }

  dispose(): void {
    this.closeFile();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
