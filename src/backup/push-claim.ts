/**
 * The records a running backup-push keeps: started.json claims the name (create-only, so two
 * backup-pushes started in the same second get different names), heartbeat.json says it is alive,
 * failed.json says why it gave up.
 */
import type { ArchiveContext } from '../archive/context.js';
import { WRITER } from '../archive/context.js';
import { ObjectExistsError, describeCause, type WalvaultError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { failedKey, heartbeatKey, startedKey } from './layout.js';
import { backupName, type BackupType } from './names.js';
import { BACKUP_FORMAT_VERSION, HEARTBEAT_INTERVAL_MS, encodeRecord, newStartedRecord, type HeartbeatRecord } from './record.js';

export interface Claim {
  readonly name: string;
  readonly startTime: Date;
}

/** Takes the first free name from now on, one second at a time (suffix F or I by `kind.type`). */
export async function claimBackupName(
  ctx: ArchiveContext,
  label: (name: string) => string,
  now = (): Date => new Date(),
  kind: { readonly type: BackupType; readonly parent: string | null } = { type: 'full', parent: null },
): Promise<Claim> {
  for (let attempt = 0; ; attempt++) {
    const startTime = now();
    const name = backupName(startTime, kind.type);
    const bytes = encodeRecord(newStartedRecord({ ...kind, name, label: label(name), startTime: startTime.toISOString(), writer: WRITER }));
    try {
      await ctx.storage.put(startedKey(name), bytes, { ifAbsent: true });
      return { name, startTime };
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
      // A retried S3 request may meet its own first attempt: the same bytes are our claim.
      const existing = await ctx.storage.getBuffer(startedKey(name)).catch(() => undefined);
      if (existing?.equals(bytes)) return { name, startTime };
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 1000 - (now().getTime() % 1000) + 5));
    }
  }
}

export type Phase = HeartbeatRecord['phase'];

/** Rewrites heartbeat.json every HEARTBEAT_INTERVAL_MS (and on each phase change) until stopped. */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private phase: Phase = 'checkpoint';
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: ArchiveContext,
    private readonly name: string,
    private readonly progress: () => { doneBytes: number; totalBytes: number | null },
    private readonly log: Logger,
    private readonly intervalMs = HEARTBEAT_INTERVAL_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  setPhase(phase: Phase): Promise<void> {
    this.phase = phase;
    return this.beat();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
  }

  /** Best effort: a missed heartbeat only makes the backup look older to other processes. */
  private beat(): Promise<void> {
    const { doneBytes, totalBytes } = this.progress();
    const record: HeartbeatRecord = {
      format: BACKUP_FORMAT_VERSION,
      name: this.name,
      at: new Date().toISOString(),
      doneBytes,
      totalBytes,
      phase: this.phase,
    };
    this.writing = this.writing
      .then(() => this.ctx.storage.put(heartbeatKey(this.name), encodeRecord(record)))
      .catch((err: unknown) => this.log.warn({ err }, 'unable to write the backup heartbeat'));
    return this.writing;
  }
}

/** failed.json, best effort: the failure itself is what the caller reports. */
export async function recordFailure(ctx: ArchiveContext, name: string, err: unknown, log: Logger): Promise<void> {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as WalvaultError).code) : 'WV_ERR_FAILURE';
  try {
    await ctx.storage.put(
      failedKey(name),
      encodeRecord({ format: BACKUP_FORMAT_VERSION, name, at: new Date().toISOString(), error: describeCause(err), code }),
    );
  } catch (e) {
    log.warn({ err: e }, 'unable to record the backup failure');
  }
}
