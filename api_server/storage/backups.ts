// Online backups of the API server's database: a consistent copy written beside the others under a
// temporary name, given the live database's mode, renamed into place, then old copies pruned by count or age.

import { backup as sqliteBackup, type DatabaseSync } from "node:sqlite";
import { join } from "node:path";

/** Which backups to keep after a new one is written (0 = no limit). */
export interface BackupRetention {
  /** Keep at most this many backups (the newest). */
  keep: number;
  /** Delete backups older than this (ms). */
  maxAgeMs: number;
}

/** Backup file names: CEEMS's `ceems-YYYYMMDDHHMM.db`, ours with seconds. */
const BACKUP_NAME = /^ceems-(\d{12}|\d{14})\.db$/;

const pad = (n: number) => String(n).padStart(2, "0");

/** The backup file name for time `d` (UTC). */
export function backupName(d: Date): string {
  return `ceems-${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${
    pad(d.getUTCMinutes())
  }${pad(d.getUTCSeconds())}.db`;
}

/**
 * Copies `source` (a connection to the live database `livePath`) into `dir` with the live file's mode;
 * resolves to the new file's path once it is complete and renamed into place.
 */
export async function writeBackup(source: DatabaseSync, livePath: string, dir: string, now = new Date()) {
  Deno.mkdirSync(dir, { recursive: true });
  const name = backupName(now);
  const tmp = join(dir, `.${name}.partial`);
  try {
    await sqliteBackup(source, tmp, { rate: 25 });
    // The copy holds the same data as the live database: the same access.
    Deno.chmodSync(tmp, Deno.statSync(livePath).mode! & 0o777);
    const dest = join(dir, name);
    Deno.renameSync(tmp, dest);
    return dest;
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw e;
  }
}

/** Deletes backups in `dir` beyond the newest `keep` or older than `maxAgeMs`; returns the deleted names. */
export function pruneBackups(dir: string, r: BackupRetention, now = Date.now()): string[] {
  const files = [...Deno.readDirSync(dir)].filter((e) => e.isFile && BACKUP_NAME.test(e.name)).map((e) => e.name)
    .sort().reverse();
  const gone: string[] = [];
  files.forEach((name, i) => {
    const path = join(dir, name);
    const tooMany = r.keep > 0 && i >= r.keep;
    const tooOld = r.maxAgeMs > 0 && now - (Deno.statSync(path).mtime?.getTime() ?? now) > r.maxAgeMs;
    if (!tooMany && !tooOld) return;
    Deno.removeSync(path);
    gone.push(name);
  });
  return gone;
}
