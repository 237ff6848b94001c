/** Rendering of postgresql.conf / postgresql.auto.conf / pg_hba.conf content for harness clusters. */
import { readFile, writeFile } from 'node:fs/promises';

export type ConfValue = string | number | boolean;
export type ConfMap = Record<string, ConfValue>;

const NAME = /^[a-z_][a-z0-9_.]*$/i;

/** One `name = value` line; strings are single-quoted with quotes doubled, as the config parser expects. */
export function confLine(name: string, value: ConfValue): string {
  if (!NAME.test(name)) throw new TypeError(`invalid PostgreSQL setting name '${name}'`);
  let rendered: string;
  if (typeof value === 'boolean') rendered = value ? 'on' : 'off';
  else if (typeof value === 'number') rendered = String(value);
  else rendered = `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return `${name} = ${rendered}`;
}

export function renderConf(settings: ConfMap): string {
  return Object.entries(settings)
    .map(([k, v]) => confLine(k, v))
    .join('\n');
}

/** Settings every harness cluster starts from; callers override any of them. */
export function baseSettings(): ConfMap {
  return {
    listen_addresses: '127.0.0.1',
    // Test speed: WAL content is unchanged by fsync=off, only its durability on this machine.
    fsync: false,
    wal_level: 'replica',
    max_wal_senders: 10,
    max_replication_slots: 10,
    wal_keep_size: '64MB',
    shared_buffers: '32MB',
    max_connections: 40,
    log_line_prefix: '%m [%p] ',
    log_min_messages: 'info',
  };
}

const RUNTIME_BEGIN = '# >>> walvault pgcluster runtime (rewritten before every start)';
const RUNTIME_END = '# <<< walvault pgcluster runtime';

/**
 * Replaces the runtime block (port, socket directory) at the end of postgresql.conf. It is
 * rewritten at every start because a restored copy of a data directory needs its own port.
 */
export async function writeRuntimeBlock(confPath: string, settings: ConfMap): Promise<void> {
  const text = await readFile(confPath, 'utf8');
  const begin = text.indexOf(RUNTIME_BEGIN);
  const end = text.indexOf(RUNTIME_END);
  const kept = begin >= 0 && end > begin ? text.slice(0, begin) + text.slice(end + RUNTIME_END.length + 1) : text;
  const block = `${RUNTIME_BEGIN}\n${renderConf(settings)}\n${RUNTIME_END}\n`;
  await writeFile(confPath, `${kept.replace(/\n*$/, '\n')}${block}`);
}

export async function appendConf(confPath: string, heading: string, settings: ConfMap): Promise<void> {
  if (Object.keys(settings).length === 0) return;
  const text = await readFile(confPath, 'utf8');
  await writeFile(confPath, `${text.replace(/\n*$/, '\n')}\n# ${heading}\n${renderConf(settings)}\n`);
}

/**
 * Trust on loopback and the private socket only: harness clusters are never reachable from
 * elsewhere. Extra lines come first because the first matching line wins (e.g. a password rule for
 * one user must precede the trust lines).
 */
export function hbaContent(extra: string[] = []): string {
  return [
    '# TYPE  DATABASE     USER  ADDRESS        METHOD',
    ...extra,
    'local   all          all                  trust',
    'local   replication  all                  trust',
    'host    all          all   127.0.0.1/32   trust',
    'host    replication  all   127.0.0.1/32   trust',
    '',
  ].join('\n');
}
