// What every scenario shares: the run directory, the PostgreSQL OS user, the corpus, stand-in data
// directories, config files for both tools, the settle pause and the result rows.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { chownToPg, pgIds } from './corpus.mjs';
import { configText } from './pgbackrest.mjs';
import { sleep } from './proc.mjs';

export class BenchContext {
  constructor({ root, runDir, user, settleMs, log }) {
    this.root = root;
    this.runDir = runDir;
    this.user = user;
    this.ids = pgIds(user);
    this.settleMs = settleMs;
    this.log = log;
    this.rows = [];
    this.scenarios = {};
    this.counter = 0;
  }

  /** A new directory under the run directory, owned by the PostgreSQL OS user. */
  dir(name) {
    const path = join(this.runDir, `${name}-${++this.counter}`);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    chownToPg(path, this.user);
    return path;
  }

  /** Writes a file the PostgreSQL OS user can read. */
  file(path, text) {
    writeFileSync(path, text, { mode: 0o600 });
    chownToPg(path, this.user);
    return path;
  }

  /**
   * A stand-in data directory: the corpus cluster's pg_control and PG_VERSION, and `names` hard-linked
   * into pg_wal (the corpus files themselves, never modified by either tool). Both tools run with
   * cwd = this directory and %p = pg_wal/<name>, as PostgreSQL calls them.
   */
  standin(label, names) {
    const dir = this.dir(`standin-${label}`);
    for (const sub of ['global', 'pg_wal', 'pg_wal/archive_status']) {
      mkdirSync(join(dir, sub), { mode: 0o700 });
      chownToPg(join(dir, sub), this.user);
    }
    execFileSync('cp', ['-p', join(this.corpus.dir, 'pg_control'), join(dir, 'global', 'pg_control')]);
    execFileSync('cp', ['-p', join(this.corpus.dir, 'PG_VERSION'), join(dir, 'PG_VERSION')]);
    for (const name of names) linkSync(join(this.corpus.dir, name), join(dir, 'pg_wal', name));
    return dir;
  }

  /** Resets archive_status: `.ready` for each of `names`, nothing else. */
  markReady(standin, names) {
    const status = join(standin, 'pg_wal', 'archive_status');
    for (const f of readdirSync(status)) unlinkSync(join(status, f));
    for (const name of names) this.file(join(status, `${name}.ready`), '');
  }

  markDone(standin, name) {
    const status = join(standin, 'pg_wal', 'archive_status');
    renameSync(join(status, `${name}.ready`), join(status, `${name}.done`));
  }

  /** A walvault config file; `settings` are `name = value` lines of the options table. */
  walvaultConfig(dir, settings) {
    const text = Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n');
    return this.file(join(dir, 'walvault.conf'), `${text}\n`);
  }

  /** A pgbackrest.conf (see support/pgbackrest.mjs configText) in `dir`; returns its path. */
  pgbrConfig(dir, opts) {
    return this.file(join(dir, 'pgbackrest.conf'), configText({ lockDir: join(dir, 'lock'), logDir: join(dir, 'log'), ...opts }));
  }

  bin(name) {
    return join(this.root, 'bin', name);
  }

  /**
   * Lets the previous step's writes drain before the next timed step (this virtual disk throttles
   * sustained fsynced writes; see research/peer-baseline.md, Caveats).
   */
  async settle() {
    execFileSync('sync');
    await sleep(this.settleMs);
  }

  begin(name, settings) {
    this.scenarios[name] = { settings, loadavgStart: loadavg(), startedAt: new Date().toISOString(), notes: [] };
    this.current = name;
    this.t0 = performance.now();
    this.log(
      `== ${name} (load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')})`,
    );
  }

  end(extra = {}) {
    const s = this.scenarios[this.current];
    s.loadavgEnd = loadavg();
    s.seconds = (performance.now() - this.t0) / 1000;
    Object.assign(s, extra);
  }

  note(text) {
    this.scenarios[this.current].notes.push(text);
  }

  /**
   * One result row. `ours` / `theirs` are numbers (either may be undefined); `better` says which
   * direction wins ('lower' for times, 'higher' for rates), so the table can name the winner.
   */
  row(metric, { ours, theirs, unit, better, oursLabel, theirsLabel }) {
    this.rows.push({ scenario: this.current, metric, unit, better, ours, theirs, oursLabel, theirsLabel });
  }
}

/** Bytes of all regular files under `dir` (stored size of an archive or repository). */
export function treeBytes(dir) {
  let total = 0;
  let files = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        total += statSync(p).size;
        files++;
      }
    }
  };
  walk(dir);
  return { bytes: total, files };
}

/** WAL objects in a walvault archive / pgBackRest repository (segments only, by name pattern). */
export function countSegments(dir) {
  let n = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/^[0-9A-F]{24}-[0-9a-f]{40,64}\./.test(e.name)) n++;
    }
  };
  walk(dir);
  return n;
}
