/**
 * Human-readable rendering of one pino JSON record, for operators at a terminal. Pure: pino has
 * already applied redaction before the record reaches us, so a secret never gets here in clear.
 */

/** Fields shown elsewhere in the line (or not at all: pid and hostname are noise on a terminal). */
const HIDDEN = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'command', 'component']);

/** `2026-12-01T21:31:10.123Z INFO  stream/walstream: connected timeline=1 serverLsn=0/3000060` */
export function formatLogRecord(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`; // not ours: pass it through untouched
  }
  const time = typeof rec['time'] === 'string' ? rec['time'] : new Date(Number(rec['time'] ?? Date.now())).toISOString();
  const level = String(rec['level'] ?? 'info')
    .toUpperCase()
    .padEnd(5);
  const where = [rec['command'], rec['component']].filter((v) => typeof v === 'string' && v !== '').join('/');
  const fields = Object.entries(rec)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${formatValue(v)}`);
  const parts = [time, level, where === '' ? undefined : `${where}:`, String(rec['msg'] ?? ''), ...fields];
  return `${parts.filter((p) => p !== undefined && p !== '').join(' ')}\n`;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'object' && v !== null) {
    // pino's error serializer: the message is what an operator needs; the stack is for json logs.
    const e = v as { type?: unknown; message?: unknown; stack?: unknown };
    if (typeof e.message === 'string' && typeof e.stack === 'string') return JSON.stringify(e.message);
    return JSON.stringify(v);
  }
  return String(v);
}
