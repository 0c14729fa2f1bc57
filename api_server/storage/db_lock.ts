// One writer per database: an exclusive lock on `<data.path>/ceems.db.lock`, taken at start-up and held for
// the life of the process (the kernel drops it when the process ends, however it ends).

import { join } from "node:path";
import { DB_FILE } from "../../common/ceems_db.ts";
import { closeRaw, ErrnoError, O_CLOEXEC, O_NOFOLLOW, O_RDONLY, openRaw } from "../../ffi/libc.ts";

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
 * Opens the lock file without following a symbolic link, creating it (mode 0644) when missing; returns the
 * raw descriptor. The data directory belongs to the service user, who could plant a link to a file of root's
 * before a root start: nothing here is done by path after this open.
 */
function openLockFile(path: string): number {
  const open = () => openRaw(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  try {
    return open();
  } catch (e) {
    if (e instanceof ErrnoError && e.code === "ELOOP") {
      throw new Error(`${path} is a symbolic link: refusing to use it as the writer lock`);
    }
    if (!(e instanceof ErrnoError && e.code === "ENOENT")) throw e;
  }
  try {
    // O_CREAT|O_EXCL: never follows a link, even a dangling one.
    Deno.openSync(path, { write: true, createNew: true, mode: 0o644 }).close();
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  return open();
}

/**
 * Takes the writer lock of the database in `dataPath` without waiting. Throws {@link DbLockedError} naming the
 * holder's pid when another process holds it.
 */
export function lockDatabase(dataPath: string): DbLock {
  const path = join(dataPath, LOCK_FILE);
  const fd = openLockFile(path);
  // Every later step goes through the opened file itself (/proc/self/fd/N names that inode, not the path).
  const self = `/proc/self/fd/${fd}`;
  let file: Deno.FsFile;
  try {
    if (!Deno.statSync(self).isFile) throw new Error(`${path} is not a regular file`);
    // Readable by all whatever the umask (it holds a pid): a server started as root, or directly as the service
    // user (CEEMS's units), takes the same lock on the same file.
    try {
      Deno.chmodSync(self, 0o644);
    } catch { /* not ours: its mode is its owner's */ }
    // The lock is held through a read-only descriptor: a root start keeps nothing open for writing past the drop.
    file = Deno.openSync(self, { read: true });
    if (!file.tryLockSync(true)) {
      let holder = "";
      try {
        holder = Deno.readTextFileSync(self).trim();
      } catch { /* unreadable: no pid to name */ }
      file.close();
      throw new DbLockedError(
        `${join(dataPath, DB_FILE)} is in use by another ceems api${
          holder ? ` (pid ${holder})` : ""
        }: one API server per data directory`,
      );
    }
    try {
      Deno.writeTextFileSync(self, `${Deno.pid}\n`);
    } catch { /* a lock file of another user's: no pid recorded */ }
  } finally {
    closeRaw(fd);
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
