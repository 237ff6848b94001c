/**
 * Connection strings as DBAs write them: a `postgresql://` URI or libpq `key=value` pairs. Anything
 * not given falls back to the standard PG* environment variables (node-postgres reads those itself).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../common/errors.js';

export interface ConnInfo {
  /** Options for `new pg.Client()`. */
  readonly pgConfig: Record<string, unknown> & { application_name?: string };
  /** host:port/user for messages and logs; never the password. */
  readonly description: string;
}

const KEY_MAP: Record<string, string> = {
  host: 'host',
  hostaddr: 'host',
  port: 'port',
  user: 'user',
  password: 'password',
  dbname: 'database',
  application_name: 'application_name',
  connect_timeout: 'connectionTimeoutMillis',
  sslmode: 'sslmode',
  sslrootcert: 'sslrootcert',
  sslcert: 'sslcert',
  sslkey: 'sslkey',
};

export function parseConnInfo(text: string, env: NodeJS.ProcessEnv = process.env): ConnInfo {
  const trimmed = text.trim();
  let cfg: Record<string, unknown> = {};
  if (/^postgres(ql)?:\/\//.test(trimmed)) {
    cfg = { connectionString: trimmed };
    const url = new URL(trimmed);
    const sslmode = url.searchParams.get('sslmode');
    if (sslmode) cfg['ssl'] = sslOptions(sslmode, url.searchParams.get('sslrootcert') ?? undefined);
  } else if (trimmed !== '') {
    const pairs = parseKeywordValue(trimmed);
    for (const [k, v] of pairs) {
      const mapped = KEY_MAP[k];
      if (!mapped) throw new ConfigError(`unable to parse connection string: unsupported keyword '${k}'`);
      cfg[mapped] = mapped === 'port' ? Number(v) : mapped === 'connectionTimeoutMillis' ? Number(v) * 1000 : v;
    }
  }
  const sslmode = (cfg['sslmode'] as string | undefined) ?? env['PGSSLMODE'];
  if (sslmode && !('connectionString' in cfg)) {
    cfg['ssl'] = sslOptions(sslmode, (cfg['sslrootcert'] as string | undefined) ?? env['PGSSLROOTCERT']);
  }
  delete cfg['sslmode'];
  delete cfg['sslrootcert'];
  const host = (cfg['host'] as string | undefined) ?? env['PGHOST'] ?? 'localhost';
  const port = (cfg['port'] as number | undefined) ?? env['PGPORT'] ?? 5432;
  const user = (cfg['user'] as string | undefined) ?? env['PGUSER'] ?? '(default user)';
  const description = 'connectionString' in cfg ? redactUrl(trimmed) : `${host}:${port} as ${user}`;
  return { pgConfig: cfg, description };
}

/** libpq rules: key = value, values may be single-quoted with \\ and \' escapes. */
function parseKeywordValue(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new ConfigError(`unable to parse connection string: ${why}`);
  };
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const keyStart = i;
    while (i < text.length && /[a-z_]/.test(text[i]!)) i++;
    const key = text.slice(keyStart, i);
    if (!key) fail(`expected a keyword at position ${keyStart}`);
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text[i] !== '=') fail(`expected '=' after '${key}'`);
    i++;
    while (i < text.length && /\s/.test(text[i]!)) i++;
    let value = '';
    if (text[i] === "'") {
      i++;
      while (i < text.length && text[i] !== "'") {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      if (text[i] !== "'") fail(`unterminated quoted value for '${key}'`);
      i++;
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
    }
    out.push([key, value]);
  }
  return out;
}

function sslOptions(mode: string, rootCertFile: string | undefined): boolean | Record<string, unknown> {
  switch (mode) {
    case 'disable':
      return false;
    case 'allow':
    case 'prefer':
    case 'require':
      // libpq's require does not verify the server certificate.
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full': {
      const opts: Record<string, unknown> = { rejectUnauthorized: true };
      if (rootCertFile) opts['ca'] = readFileSync(rootCertFile, 'utf8');
      if (mode === 'verify-ca') opts['checkServerIdentity'] = () => undefined;
      return opts;
    }
    default:
      throw new ConfigError(`unable to parse connection string: unknown sslmode '${mode}'`);
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgresql://(unparsable)';
  }
}
