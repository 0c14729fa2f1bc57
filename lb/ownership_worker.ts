// Worker thread of the load balancer's database ownership checks: SQLite runs here, read-only, so a
// locked or slow database never stalls the event loop; the file is reopened when it is replaced.

/// <reference lib="deno.worker" />

import { DatabaseSync } from "node:sqlite";
import { clusterIdsInDb, isAdminInDb, ownsAllUnits } from "../common/ceems_db.ts";
import {
  type OwnershipFailure,
  type OwnershipReply,
  type OwnershipRequest,
  type OwnershipWorkerInit,
  READY_ID,
} from "./ownership_protocol.ts";
import { pathExists } from "../common/fs.ts";

let init: OwnershipWorkerInit | undefined;
let db: DatabaseSync | undefined;
let openedIno: number | null | undefined;

function closeDb(): void {
  try {
    db?.close();
  } catch {
    // already closed or broken: nothing to release
  }
  db = undefined;
}

/** Opens the database, or reopens it when the file at the path is no longer the one open (a restore). */
function current(): DatabaseSync {
  const { dbPath, busyTimeoutMs } = init!;
  const st = Deno.statSync(dbPath);
  if (db && st.ino === openedIno) return db;
  closeDb();
  // Read access is checked on the file itself so a permission problem is told apart from a busy database.
  Deno.openSync(dbPath, { read: true }).close();
  // Read-only down to the WAL index: mode=ro for the database, readonly_shm=1 so the -shm file is opened
  // read-only too, even when this user could write it.
  const uri = `file:${dbPath.split("/").map(encodeURIComponent).join("/")}?mode=ro&readonly_shm=1`;
  const fresh = new DatabaseSync(uri, { readOnly: true });
  fresh.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db = fresh;
  openedIno = st.ino;
  return db;
}

function answer(req: OwnershipRequest): boolean | string[] {
  const conn = current();
  switch (req.op) {
    case "owns":
      return ownsAllUnits(conn, req.user, req.uuids, [req.clusterId]);
    case "isAdmin":
      return isAdminInDb(conn, req.user);
    case "clusterIds":
      return clusterIdsInDb(conn);
  }
}

self.onmessage = (e: MessageEvent<OwnershipWorkerInit | OwnershipRequest>) => {
  if (!init) {
    init = e.data as OwnershipWorkerInit;
    return;
  }
  const req = e.data as OwnershipRequest;
  try {
    self.postMessage({ id: req.id, ok: true, value: answer(req) } satisfies OwnershipReply);
  } catch (err) {
    // A failed statement may leave a connection that keeps failing (a deleted file, a broken WAL): start over.
    closeDb();
    const kind: OwnershipFailure = err instanceof Deno.errors.PermissionDenied ? "permission" : "unavailable";
    let error = (err as Error).message;
    if (kind === "unavailable" && !pathExists(`${init.dbPath}-shm`)) {
      error += " (no WAL index: the read-only LB reads the database while `ceems api` runs and keeps its -shm file)";
    }
    self.postMessage({ id: req.id, ok: false, kind, error } satisfies OwnershipReply);
  }
};

self.postMessage({ id: READY_ID, ok: true, value: true } satisfies OwnershipReply);
