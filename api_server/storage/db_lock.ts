// One writer per database: an exclusive lock on `<data.path>/ceems.db.lock`, taken at start-up and held for
// the life of the process (the kernel drops it when the process ends, however it ends).

import { join } from "node:path";
import { DB_FILE } from "../../common/ceems_db.ts";

/** File name of the writer lock beside the database. */
export const LOCK_FILE = `${DB_FILE}.lock`;

/** A held writer lock. */
export interface DbLock {
  path: string;
  release(): void;
}

/** Another process holds the lock: a second API server on the same data directory. */
export class DbLockedError extends Error {}

/**
 * Takes the writer lock of the database in `dataPath` without waiting. Throws {@link DbLockedError} naming the
 * holder's pid when another process holds it.
 */
export function lockDatabase(dataPath: string): DbLock {
  const path = join(dataPath, LOCK_FILE);
  let file: Deno.FsFile;
  let writable = true;
  try {
    file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o640 });
  } catch (e) {
    // A lock file another user created: flock needs only an open descriptor, read access is enough.
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    file = Deno.openSync(path, { read: true });
    writable = false;
  }
  if (!file.tryLockSync(true)) {
    let holder = "";
    try {
      holder = Deno.readTextFileSync(path).trim();
    } catch { /* unreadable: no pid to name */ }
    file.close();
    throw new DbLockedError(
      `${join(dataPath, DB_FILE)} is in use by another ceems api${
        holder ? ` (pid ${holder})` : ""
      }: one API server per data directory`,
    );
  }
  if (writable) {
    file.truncateSync(0);
    file.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
  }
  return {
    path,
    release: () => {
      try {
        file.unlockSync();
      } finally {
        file.close();
      }
    },
  };
}
