/**
 * Layout for the operator commands' readable output: tables, aligned fields, a progress bar. Pure;
 * every command also has `--json`, so nothing here has to be parseable.
 */
import { formatBytes } from '../../common/format.js';

export interface Column {
  readonly title: string;
  readonly align?: 'left' | 'right';
}

/** A plain table: a header line, then one line per row, columns separated by two spaces. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        const w = widths[i] ?? 0;
        return c.align === 'right' ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join('\n');
}

/** `key: value` lines with the values aligned. */
export function renderFields(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n');
}

/** `[#########...........]  45%  123/456 objects  1.2 GiB`: one line for a TTY progress bar. */
export function renderProgressBar(p: { done: number; total: number; bytes: number; width?: number; what?: string }): string {
  const width = p.width ?? 30;
  const fraction = p.total === 0 ? 1 : Math.min(1, p.done / p.total);
  const filled = Math.round(fraction * width);
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}  ${p.done}/${p.total} ${p.what ?? 'objects'}  ${formatBytes(p.bytes)}`;
}
