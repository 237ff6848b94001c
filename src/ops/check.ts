/**
 * `walvault check`: is this server set up to archive into this archive? One result per item, in
 * the order an operator fixes things: PostgreSQL reachable, its WAL settings, the archiver, the
 * slot, the storage, a real segment making it into the archive, the archive's identity.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ArchiveContext } from '../archive/context.js';
import { findVersions } from '../archive/versions.js';
import { readIdentity } from '../archive/identity.js';
import { formatLsn } from '../segment/lsn.js';
import { errorText, formatBytes, formatDuration, formatTime } from '../common/format.js';
import {
  archiverFailing,
  closeServer,
  connectServer,
  readArchiver,
  readServerFacts,
  readSlot,
  switchWal,
  type ServerConnection,
  type ServerFacts,
} from '../postgres/sql.js';

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckItem {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export interface CheckOptions {
  readonly conninfo?: string;
  readonly slot?: string;
  /** The archive is fed by `walvault stream`, not archive_command: no archive_mode/archive_command checks. */
  readonly stream?: boolean;
  /** Force a segment switch and wait until the segment is archived. */
  readonly switchWal?: boolean;
  readonly switchWalTimeoutMs?: number;
  readonly pollMs?: number;
}

export interface CheckReport {
  readonly archive: string;
  readonly ok: boolean;
  readonly items: readonly CheckItem[];
}

export async function runChecks(ctx: ArchiveContext, opts: CheckOptions = {}): Promise<CheckReport> {
  const items: CheckItem[] = [];
  const add = (name: string, status: CheckStatus, detail: string): void => void items.push({ name, status, detail });
  let conn: ServerConnection | undefined;
  let facts: ServerFacts | undefined;
  try {
    try {
      conn = await connectServer(opts.conninfo, 'walvault check');
      facts = await readServerFacts(conn);
      add(
        'postgresql',
        'ok',
        `PostgreSQL ${facts.version} at ${conn.description}, system ${facts.systemId}, ` +
          `${facts.inRecovery ? 'in recovery' : 'primary'}, timeline ${facts.timeline}`,
      );
    } catch (err) {
      add('postgresql', 'fail', errorText(err));
    }
    if (conn && facts) await serverChecks(conn, facts, opts, add);
    else for (const name of serverItemNames(opts)) add(name, 'skip', 'PostgreSQL is not reachable');

    await storageCheck(ctx, add);

    if (opts.switchWal) {
      if (!conn || !facts) add('switch-wal', 'skip', 'PostgreSQL is not reachable');
      else if (facts.inRecovery) add('switch-wal', 'skip', 'the server is in recovery: only a primary can switch WAL');
      else await switchWalCheck(ctx, conn, opts, add);
    }

    await identityCheck(ctx, facts, add);
  } finally {
    await closeServer(conn);
  }
  return { archive: ctx.storage.description, ok: items.every((i) => i.status !== 'fail'), items };
}

/** archive_command may carry credentials in environment assignments; never print them. */
export function redactCommand(command: string): string {
  return command.replace(
    /\b([A-Za-z_][A-Za-z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|KEY)[A-Za-z0-9_]*)=('[^']*'|"[^"]*"|\S+)/gi,
    '$1=[redacted]',
  );
}

function serverItemNames(opts: CheckOptions): string[] {
  return ['wal_level', 'archive_mode', 'archive_command', 'archiver', ...(opts.slot !== undefined || opts.stream ? ['slot'] : [])];
}

type Add = (name: string, status: CheckStatus, detail: string) => void;

async function serverChecks(conn: ServerConnection, facts: ServerFacts, opts: CheckOptions, add: Add): Promise<void> {
  add(
    'wal_level',
    facts.walLevel === 'replica' || facts.walLevel === 'logical' ? 'ok' : 'fail',
    facts.walLevel === 'replica' || facts.walLevel === 'logical'
      ? facts.walLevel
      : `${facts.walLevel}: archived WAL cannot restore a base backup; set wal_level = replica and restart`,
  );

  if (opts.stream) {
    add('archive_mode', 'skip', 'the archive is fed by walvault stream');
    add('archive_command', 'skip', 'the archive is fed by walvault stream');
    add('archiver', 'skip', 'the archive is fed by walvault stream');
  } else {
    const mode = facts.archiveMode;
    if (mode === 'always') add('archive_mode', 'ok', mode);
    else if (mode === 'on' && facts.inRecovery) add('archive_mode', 'warn', "on: a server in recovery archives only with 'always'");
    else if (mode === 'on') add('archive_mode', 'ok', mode);
    else add('archive_mode', 'fail', `${mode}: nothing is archived; set archive_mode = on and restart`);

    if (facts.archiveLibrary !== null) {
      add('archive_command', 'fail', `archive_library = '${facts.archiveLibrary}' is set, so archive_command is not used`);
    } else if (facts.archiveCommand === '') {
      add('archive_command', 'fail', 'not set: set archive_command to run wal-push %p');
    } else if (/\bwal-push\b/.test(facts.archiveCommand)) {
      add('archive_command', 'ok', redactCommand(facts.archiveCommand));
    } else {
      add('archive_command', 'fail', `does not run wal-push: '${redactCommand(facts.archiveCommand)}'`);
    }

    const a = await readArchiver(conn);
    const last = a.lastArchivedWal
      ? `last ${a.lastArchivedWal} at ${a.lastArchivedTime ? formatTime(a.lastArchivedTime) : '?'}`
      : 'nothing archived yet';
    if (archiverFailing(a)) {
      add(
        'archiver',
        'fail',
        `failing: ${a.failedCount} failures, the last for ${a.lastFailedWal ?? '?'} at ${a.lastFailedTime ? formatTime(a.lastFailedTime) : '?'}; ${last} (see the PostgreSQL log)`,
      );
    } else {
      add('archiver', 'ok', `${a.archivedCount} archived, ${a.failedCount} failed; ${last}`);
    }
  }

  if (opts.slot === undefined) {
    if (opts.stream) add('slot', 'warn', 'no slot: the server may recycle WAL the agent has not received yet');
    return;
  }
  const slot = await readSlot(conn, opts.slot);
  if (!slot) add('slot', 'fail', `'${opts.slot}' does not exist (create it, or run walvault stream with --create-slot)`);
  else if (slot.type !== 'physical') add('slot', 'fail', `'${slot.name}' is a ${slot.type} slot, walvault needs a physical one`);
  else if (slot.walStatus === 'lost')
    add('slot', 'fail', `'${slot.name}' has lost required WAL (wal_status = lost): the archive has a hole`);
  else {
    const lag = `restart_lsn ${slot.restartLsn ? formatLsn(slot.restartLsn) : 'none'}, ${slot.lagBytes === null ? 'lag unknown' : `${formatBytes(slot.lagBytes)} behind`}`;
    if (!slot.active) add('slot', 'fail', `'${slot.name}' is not active (is walvault stream running?); ${lag}`);
    else add('slot', 'ok', `'${slot.name}' active, ${lag}${slot.walStatus ? `, wal_status ${slot.walStatus}` : ''}`);
  }
}

async function storageCheck(ctx: ArchiveContext, add: Add): Promise<void> {
  const started = performance.now();
  const host =
    hostname()
      .replace(/[^A-Za-z0-9.-]/g, '_')
      .slice(0, 64) || 'host';
  const key = `check/${host}-${process.pid}-${randomBytes(6).toString('hex')}`;
  const body = Buffer.from(`walvault check probe ${new Date().toISOString()}\n${randomBytes(32).toString('hex')}\n`);
  let step = 'write';
  try {
    await ctx.storage.put(key, body);
    step = 'read';
    const back = await ctx.storage.getBuffer(key);
    if (!back.equals(body)) throw new Error(`read back ${back.length} bytes that differ from the ${body.length} written`);
    step = 'delete';
    await ctx.storage.delete([key]);
    if (await ctx.storage.head(key)) throw new Error('the probe object is still there after delete');
    add(
      'storage',
      'ok',
      `write, read and delete of '${key}' on ${ctx.storage.description} (${Math.round(performance.now() - started)} ms)`,
    );
  } catch (err) {
    add('storage', 'fail', `${step} failed on ${ctx.storage.description}: ${errorText(err)}`);
    if (step !== 'write') await ctx.storage.delete([key]).catch(() => undefined);
  }
}

async function switchWalCheck(ctx: ArchiveContext, conn: ServerConnection, opts: CheckOptions, add: Add): Promise<void> {
  const timeoutMs = opts.switchWalTimeoutMs ?? 60_000;
  const started = Date.now();
  let name: string;
  try {
    name = await switchWal(conn);
  } catch (err) {
    add('switch-wal', 'fail', `unable to switch WAL: ${errorText(err)}`);
    return;
  }
  for (;;) {
    if ((await findVersions(ctx, name)).length > 0) {
      add('switch-wal', 'ok', `${name} was archived ${formatDuration(Date.now() - started)} after the switch`);
      return;
    }
    if (Date.now() - started >= timeoutMs || ctx.signal?.aborted) {
      add(
        'switch-wal',
        'fail',
        `${name} is not in the archive ${formatDuration(Date.now() - started)} after the switch (see the PostgreSQL log for archive_command errors)`,
      );
      return;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}

async function identityCheck(ctx: ArchiveContext, facts: ServerFacts | undefined, add: Add): Promise<void> {
  let identity;
  try {
    identity = await readIdentity(ctx.storage);
  } catch (err) {
    add('identity', 'fail', errorText(err));
    return;
  }
  if (!identity) {
    add('identity', 'warn', 'the archive has no identity yet (nothing archived); run check with --switch-wal to archive a segment');
    return;
  }
  const what = `system ${identity.systemId}, PostgreSQL ${identity.pgMajor}, ${formatBytes(identity.walSegSize)} segments`;
  if (!facts) {
    add('identity', 'skip', `archive holds ${what}; PostgreSQL is not reachable to compare`);
    return;
  }
  const problems: string[] = [];
  if (identity.systemId !== facts.systemId)
    problems.push(`the archive belongs to database system ${identity.systemId}, this server is ${facts.systemId}`);
  if (identity.walSegSize !== facts.walSegSize) {
    problems.push(`the archive's segments are ${formatBytes(identity.walSegSize)}, this server's ${formatBytes(facts.walSegSize)}`);
  }
  if (identity.pgMajor !== facts.major)
    problems.push(`the archive holds PostgreSQL ${identity.pgMajor} WAL, this server is ${facts.major}`);
  add('identity', problems.length === 0 ? 'ok' : 'fail', problems.length === 0 ? what : problems.join('; '));
}
