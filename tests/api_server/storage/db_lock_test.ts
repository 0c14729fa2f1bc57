// The writer lock beside the database: one holder at a time, and a lock path the service user replaced by a
// symbolic link (to a file of root's, or to nothing) is refused without touching what it points to.

import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import { DbLockedError, LOCK_FILE, lockDatabase } from "../../../api_server/storage/db_lock.ts";

Deno.test("db lock: a second holder is refused naming the first's pid; the file is 0644 and holds it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.umask(0o077);
    const lock = lockDatabase(dir);
    try {
      assertEquals(Deno.statSync(join(dir, LOCK_FILE)).mode! & 0o777, 0o644);
      assertEquals(Deno.readTextFileSync(join(dir, LOCK_FILE)), `${Deno.pid}\n`);
      let err: unknown;
      try {
        lockDatabase(dir);
      } catch (e) {
        err = e;
      }
      assert(err instanceof DbLockedError, `a second holder: ${err}`);
      assertMatch(err.message, new RegExp(`in use by another ceems api \\(pid ${Deno.pid}\\)`));
    } finally {
      lock.release();
    }
    lockDatabase(dir).release();
  } finally {
    Deno.umask(0o022);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("db lock: a symbolic link in place of the lock file is refused; its target is left as it was", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const victim = join(dir, "shadow");
    Deno.writeTextFileSync(victim, "secret\n", { mode: 0o600 });
    Deno.chmodSync(victim, 0o600);
    Deno.symlinkSync(victim, join(dir, LOCK_FILE));
    assertThrows(() => lockDatabase(dir), /is a symbolic link/);
    assertEquals([Deno.readTextFileSync(victim), Deno.statSync(victim).mode! & 0o777], ["secret\n", 0o600]);

    // A dangling link: nothing is created where it points.
    Deno.removeSync(join(dir, LOCK_FILE));
    Deno.symlinkSync(join(dir, "created-by-root"), join(dir, LOCK_FILE));
    assertThrows(() => lockDatabase(dir), /is a symbolic link/);
    assertThrows(() => Deno.statSync(join(dir, "created-by-root")), /No such file/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
