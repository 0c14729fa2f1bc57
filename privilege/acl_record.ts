// The root-only record of the ACL entries a run added (one file per process in /run/ceems), written before
// the drop and never after it, so that a start after kill -9 removes exactly what a dead run left behind.

import { join } from "../common/path.ts";
import type { Logger } from "../common/log.ts";
import { ctimeNs } from "../ffi/libc.ts";
import { type AddedAcl, addedAclPresent, removeAddedAcl } from "./acl.ts";

/** Where records live (systemd: RuntimeDirectory=ceems with RuntimeDirectoryPreserve=yes). */
export const ACL_STATE_DIR = "/run/ceems";

interface RecordFile {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22): tells pid reuse apart. */
  startTicks: number;
  entries: AddedAcl[];
}

/** Start time (clock ticks since boot) of a live process, or undefined when it is gone. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

/** Throws unless `dir` exists (created 0700 if absent), belongs to root and only root can write it. */
function ensureRootDir(dir: string): void {
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const st = Deno.lstatSync(dir);
  if (!st.isDirectory || st.uid !== 0 || ((st.mode ?? 0) & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory only root can write`);
  }
}

/** The record of this process: rewritten (atomically, 0600) after each entry added. */
export class AclRecord {
  readonly #path: string;
  readonly #entries: AddedAcl[] = [];

  constructor(readonly dir = ACL_STATE_DIR, readonly pid = Deno.pid) {
    ensureRootDir(dir);
    this.#path = join(dir, `acl-${pid}.json`);
  }

  /** Entries recorded so far. */
  get entries(): readonly AddedAcl[] {
    return this.#entries;
  }

  /** Adds one entry to the record on disk. */
  add(a: AddedAcl): void {
    this.#entries.push(a);
    const rec: RecordFile = { pid: this.pid, startTicks: processStartTicks(this.pid) ?? 0, entries: this.#entries };
    const tmp = `${this.#path}.tmp`;
    Deno.writeTextFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
    Deno.renameSync(tmp, this.#path);
  }
}

/**
 * Removes what dead runs left (their records in `dir`): an entry goes only while it is still exactly the one
 * added and the path unchanged since (same ctime); anything changed since is left, with one warning.
 * Records of live processes are kept. Returns how many entries were removed.
 */
export function repairLeftoverAcls(logger: Logger, dir = ACL_STATE_DIR): number {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /^acl-\d+\.json$/.test(n));
  } catch {
    return 0;
  }
  ensureRootDir(dir);
  let removed = 0;
  for (const name of names) {
    const path = join(dir, name);
    let rec: RecordFile;
    try {
      const st = Deno.lstatSync(path);
      if (!st.isFile || st.uid !== 0) continue;
      rec = JSON.parse(Deno.readTextFileSync(path));
    } catch {
      continue;
    }
    if (processStartTicks(rec.pid) === rec.startTicks) continue; // still running
    for (const a of rec.entries) {
      let ctime: string;
      try {
        ctime = ctimeNs(a.path);
      } catch {
        continue; // the path is gone
      }
      if (ctime !== a.ctime) {
        // Removed at a clean shutdown (which changed the ctime), or changed by someone since: look, never force.
        try {
          if (addedAclPresent(a)) {
            logger.warn("ACL entry of a previous run left in place: the path changed since", {
              path: a.path,
              entry: `user:${a.uid}`,
            });
          }
        } catch {
          // unreadable ACL: leave it
        }
        continue;
      }
      try {
        if (removeAddedAcl(a) === "removed") removed++;
      } catch (e) {
        logger.warn("could not remove an ACL entry of a previous run", { path: a.path, err: (e as Error).message });
      }
    }
    Deno.removeSync(path);
  }
  if (removed) logger.info("removed ACL entries a previous run left", { count: removed });
  return removed;
}
