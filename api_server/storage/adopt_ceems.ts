// Adopting a database CEEMS made (golang-migrate schema version 9: CEEMS 0.9 and 0.10): the same tables and
// columns as ours, so adoption adds what ceems keeps besides (update_state, its indexes) and records our version.

import type { DatabaseSync } from "node:sqlite";

/** The golang-migrate version of CEEMS 0.9 and 0.10's schema (000009_rename_outgress_to_egress). */
export const CEEMS_SCHEMA_VERSION = 9;

/** A CEEMS database not adopted yet: CEEMS's users index (ceems names its own differently), no update_state. */
export function isUnadoptedCeemsDatabase(db: DatabaseSync): boolean {
  const has = (type: string, name: string) =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?").get(type, name) !== undefined;
  return has("index", "uq_cluster_id_user") && !has("table", "update_state");
}

/**
 * Brings a CEEMS 0.9/0.10 database to `ourVersion`: runs every migration of ours (each creates only what is
 * missing: tables and indexes `IF NOT EXISTS`) in one transaction and records the version. Throws, changing
 * nothing, for another CEEMS schema version or a dirty one. One-way: CEEMS cannot open it afterwards.
 */
export function adoptCeemsDatabase(db: DatabaseSync, migrations: string[][], ourVersion: number): void {
  const row = db.prepare("SELECT version, dirty FROM schema_migrations").get() as
    | { version: number; dirty: number }
    | undefined;
  if (!row) throw new Error("a CEEMS database without schema_migrations: not one CEEMS 0.9 or 0.10 made");
  if (row.dirty) throw new Error(`a CEEMS database left dirty at schema version ${row.version}: restore a backup`);
  if (row.version !== CEEMS_SCHEMA_VERSION) {
    throw new Error(
      `a CEEMS database at schema version ${row.version}: ceems adopts version ${CEEMS_SCHEMA_VERSION} ` +
        "(CEEMS 0.9 and 0.10); open it once with CEEMS 0.9 or later first",
    );
  }
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const step of migrations) for (const sql of step) db.exec(sql);
    db.exec("DELETE FROM schema_migrations");
    db.prepare("INSERT INTO schema_migrations (version, dirty) VALUES (?, 0)").run(ourVersion);
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw new Error(`adopting the CEEMS database failed: ${(e as Error).message}`);
  }
}
