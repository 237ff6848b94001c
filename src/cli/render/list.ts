/** wal-list as a table with a summary line (`--json` prints the WalList itself). */
import { count, formatBytes, formatTime, shortSha } from '../../common/format.js';
import type { WalList, WalListRow } from '../../ops/list.js';
import { renderTable, type Column } from './layout.js';

/** wal-list's columns and a row's cells: shared with the streaming printer (list-stream.ts). */
export const WAL_LIST_COLUMNS: readonly Column[] = [
  { title: 'NAME' },
  { title: 'TYPE' },
  { title: 'TLI', align: 'right' },
  { title: 'START LSN' },
  { title: 'END LSN' },
  { title: 'ORIGINAL', align: 'right' },
  { title: 'STORED', align: 'right' },
  { title: 'CODEC' },
  { title: 'ENC' },
  { title: 'SHA256' },
  { title: 'UPLOADED' },
];

export function walListCells(r: WalListRow): string[] {
  return [
    r.name,
    r.kind,
    String(r.timeline),
    r.startLsn ?? '-',
    r.endLsn ?? '-',
    r.originalBytes === null ? '-' : formatBytes(r.originalBytes),
    formatBytes(r.storedBytes),
    r.codec,
    r.encrypted ? 'yes' : 'no',
    shortSha(r.sha256),
    formatTime(new Date(r.uploadedAt)),
  ];
}

export function renderWalList(list: WalList): string {
  if (list.rows.length === 0) return `no WAL files in ${list.archive} match`;
  const table = renderTable(WAL_LIST_COLUMNS, list.rows.map(walListCells));
  const n = (kind: WalListRow['kind']): number => list.rows.filter((r) => r.kind === kind).length;
  const stored = list.rows.reduce((n, r) => n + r.storedBytes, 0);
  const original = list.rows.reduce((n, r) => n + (r.originalBytes ?? 0), 0);
  const summary =
    `${count(n('segment'), 'segment')}, ${count(n('partial'), 'partial')}, ${count(n('backup'), 'backup label')}, ${count(n('history'), 'history file')}; ` +
    `${formatBytes(stored)} stored${original > 0 ? ` for ${formatBytes(original)} of WAL` : ''}`;
  return `${table}\n${summary}`;
}
