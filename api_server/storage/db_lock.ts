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
  try {
    Deno.openSync(path, { write: true, create: true, mode: 0o644 }).close();
    // Readable by all whatever the umask (it holds a pid): a server started as root, or directly as the service
    // user (CEEMS's units), takes the same lock on the same file.
    try {
      Deno.chmodSync(path, 0o644);
    } catch { /* not ours: its mode is its owner's */ }
  } catch (e) {
    // A lock file another user created: flock needs only an open descriptor, read access is enough.
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
  }
  // The lock is held through a read-only descriptor: a root start keeps nothing open for writing past the drop.
  const file = Deno.openSync(path, { read: true });
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
  try {
    Deno.writeTextFileSync(path, `${Deno.pid}\n`);
  } catch { /* a lock file of another user's: no pid recorded */ }
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
