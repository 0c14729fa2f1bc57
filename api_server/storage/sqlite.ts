// SQLite implementation of the API server's Storage on node:sqlite (WAL, ordered migrations, each update
// window one transaction, online backups, integrity check), plus synchronous reads for in-process callers.

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { join } from "node:path";
import type { Unit } from "../models.ts";
import type { ClusterStats, ScopeQuery, Storage, UnitQuery, UpdateBatch, UsageCurrentQuery } from "./storage.ts";
import { MIGRATIONS } from "./migrations.ts";
import { adoptCeemsDatabase, isUnadoptedCeemsDatabase } from "./adopt_ceems.ts";
import { DB_FILE, SERVICE_ACCOUNT } from "../../common/ceems_db.ts";
import { ReadQueries } from "./read_queries.ts";
import { insertAdmin, type WindowMeta, WindowWriter } from "./window_writer.ts";
import { type BackupRetention, pruneBackups, writeBackup } from "./backups.ts";

/** Name of the DB file under the data path, as CEEMS names it. */
export { DB_FILE };

/** Units written between two yields to the event loop inside a window's transaction (in-process use). */
const WRITE_CHUNK = 2000;

/** A database file that exists but is empty: SQLite would silently start a new database in it. */
export class EmptyDatabaseError extends Error {}

/** Throws {@link EmptyDatabaseError} when `path` exists with zero bytes (a truncated or failed restore). */
export function refuseEmptyDatabase(path: string): void {
  let size: number;
  try {
    size = Deno.statSync(path).size;
  } catch {
    return; // absent: a new database
  }
  if (size === 0) {
    throw new EmptyDatabaseError(
      `${path} is empty (0 bytes); restore a backup into it or remove it to start a new database`,
    );
  }
}

/** The node:sqlite store. */
export class SqliteStorage implements Storage {
  /** The write connection (update cycle). */
  readonly db: DatabaseSync;
  /** A read-only connection: sees committed windows only, never a window being written. */
  readonly #ro: DatabaseSync;
  /** The API's queries on the read-only connection. */
  readonly reads: ReadQueries;
  readonly path: string;
  #stmts = new Map<string, StatementSync>();
  /** Serialises write transactions (clusters catch up concurrently). */
  #writeLock: Promise<void> = Promise.resolve();
  #window: WindowWriter | undefined;

  /** Opens (creating and migrating) `<dataPath>/ceems.db`; refuses an existing zero-length file. */
  constructor(dataPath: string, opts: { readOnly?: boolean } = {}) {
    if (!opts.readOnly) Deno.mkdirSync(dataPath, { recursive: true });
    this.path = join(dataPath, DB_FILE);
    refuseEmptyDatabase(this.path);
    this.db = new DatabaseSync(this.path, { readOnly: opts.readOnly ?? false });
    this.db.exec("PRAGMA busy_timeout = 5000");
    if (!opts.readOnly) {
      // A new DB gets 16 KiB pages (a no-op on an existing one): a window's random index inserts touch 4x fewer
      // pages, which halves the write syscalls of an ingest (measured: 4 KiB pages ~21k units/s of CPU, 16 KiB ~36k).
      this.db.exec("PRAGMA page_size = 16384");
      this.db.exec("PRAGMA journal_mode = WAL");
      // Up to 64 MiB of page cache for the writer: a window's dirty index pages stay in memory until its commit
      // instead of spilling to the WAL and being rewritten (the commit is still all-or-nothing).
      this.db.exec("PRAGMA cache_size = -65536");
      // As CEEMS (_synchronous=0): an OS crash can lose the last windows, but update_state lives in the same
      // transactions, so lost windows are simply fetched again; a killed process loses nothing (WAL).
      this.db.exec("PRAGMA synchronous = OFF");
      try {
        Deno.chmodSync(this.path, 0o640);
      } catch { /* not fatal */ }
      this.migrate();
    }
    this.#ro = new DatabaseSync(this.path, { readOnly: true });
    this.#ro.exec("PRAGMA busy_timeout = 5000");
    this.reads = new ReadQueries(this.#ro);
  }

  /** Applies pending migrations in order; returns the resulting schema version. */
  migrate(): number {
    // A database CEEMS 0.9/0.10 made numbers its migrations its own way: adopted once, then ours apply.
    if (isUnadoptedCeemsDatabase(this.db)) adoptCeemsDatabase(this.db, MIGRATIONS, MIGRATIONS.length);
    this.db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, dirty INTEGER NOT NULL)");
    const row = this.db.prepare("SELECT version, dirty FROM schema_migrations").get() as
      | { version: number; dirty: number }
      | undefined;
    let version = row?.version ?? 0;
    if (row?.dirty) throw new Error(`database schema is dirty at version ${version}; restore a backup`);
    for (; version < MIGRATIONS.length; version++) {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        for (const sql of MIGRATIONS[version]) this.db.exec(sql);
        this.db.exec("DELETE FROM schema_migrations");
        this.db.prepare("INSERT INTO schema_migrations (version, dirty) VALUES (?, 0)").run(version + 1);
        this.db.exec("COMMIT");
      } catch (e) {
        if (this.db.isTransaction) this.db.exec("ROLLBACK");
        throw new Error(`migration ${version + 1} failed: ${(e as Error).message}`);
      }
    }
    return version;
  }

  /** A cached statement on the write connection. */
  #stmt = (sql: string): StatementSync => {
    let s = this.#stmts.get(sql);
    if (!s) {
      if (this.#stmts.size >= 256) this.#stmts.clear();
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  };

  lastUpdateMs(clusterId: string): number | undefined {
    const r = this.#stmt("SELECT last_update_ms FROM update_state WHERE cluster_id = ?").get(clusterId) as
      | { last_update_ms: number }
      | undefined;
    return r?.last_update_ms;
  }

  runningUnits(clusterId: string, limit: number): string[] {
    const rows = this.#stmt(
      "SELECT uuid FROM units WHERE cluster_id = ? AND ended_at_ts = 0 ORDER BY last_updated_at DESC LIMIT ?",
    ).all(clusterId, limit) as { uuid: string }[];
    return rows.map((r) => r.uuid);
  }

  /** Opens a window's transaction; units follow with {@link addUnits}, then {@link commitWindow}. */
  beginWindow(meta: WindowMeta): void {
    if (this.#window) throw new Error("a window is already being written");
    const w = new WindowWriter(this.db, this.#stmt, meta);
    w.begin();
    this.#window = w;
  }

  /** Upserts a slice of the open window's units; on failure the window is rolled back and the error thrown. */
  addUnits(units: Unit[]): void {
    const w = this.#window;
    if (!w) throw new Error("no window is being written");
    this.#guard(w, () => w.add(units));
  }

  /** Commits the open window (or rolls it back and throws the error that stopped it). */
  commitWindow(): void {
    const w = this.#window;
    if (!w) throw new Error("no window is being written");
    this.#guard(w, () => w.commit());
    this.#window = undefined;
  }

  /** Rolls back the open window, if any. */
  abortWindow(): void {
    this.#window?.rollback();
    this.#window = undefined;
  }

  #guard(w: WindowWriter, f: () => void): void {
    try {
      f();
    } catch (e) {
      w.rollback();
      this.#window = undefined;
      throw e;
    }
  }

  applyUpdate(b: UpdateBatch): Promise<void> {
    const run = this.#writeLock.then(() => this.#apply(b));
    this.#writeLock = run.catch(() => {});
    return run;
  }

  async #apply(b: UpdateBatch): Promise<void> {
    const { units, ...meta } = b;
    this.beginWindow(meta);
    for (let i = 0; i < units.length; i += WRITE_CHUNK) {
      if (i) await new Promise((r) => setTimeout(r, 0));
      this.addUnits(units.slice(i, i + WRITE_CHUNK));
    }
    this.commitWindow();
  }

  /**
   * Makes the admin_users rows from the configuration ("ceems") exactly `names` (plus the service account),
   * leaving Grafana's: an admin removed from the configuration loses the right at start-up, not a window later.
   */
  replaceConfigAdmins(names: string[], nowMs = Date.now()): void {
    const keep = [...new Set([...names, SERVICE_ACCOUNT])];
    const now = new Date(nowMs).toISOString().slice(0, 19);
    this.db.exec("BEGIN IMMEDIATE");
    try {
      this.#stmt(
        "DELETE FROM admin_users WHERE tags = '[\"ceems\"]' AND name NOT IN (SELECT value FROM json_each(?))",
      ).run(JSON.stringify(keep));
      for (const n of keep) insertAdmin(this.#stmt, n, "ceems", now);
      this.db.exec("COMMIT");
    } catch (e) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw e;
    }
  }

  /** SQLite's quick_check: an empty list when the database is sound, else its first problems. */
  quickCheck(): string[] {
    const rows = this.db.prepare("PRAGMA quick_check(5)").all() as { quick_check: string }[];
    const msgs = rows.map((r) => r.quick_check);
    return msgs.length === 1 && msgs[0] === "ok" ? [] : msgs;
  }

  /** Writes a consistent copy into `dir` (the live file's mode) and prunes old copies; resolves to its path. */
  async backup(dir: string, retention: BackupRetention = { keep: 0, maxAgeMs: 0 }): Promise<string> {
    const dest = await writeBackup(this.#ro, this.path, dir);
    pruneBackups(dir, retention);
    return dest;
  }

  ping(): boolean {
    try {
      return this.reads.ping();
    } catch {
      return false;
    }
  }

  isAdmin(user: string): boolean {
    return this.reads.isAdmin(user);
  }

  units(q: UnitQuery): Record<string, unknown>[] {
    return [...this.reads.units(q)];
  }

  verifyOwnership(user: string, uuids: string[], clusterIds: string[]): boolean {
    return this.reads.verifyOwnership(user, uuids, clusterIds);
  }

  users(q: ScopeQuery): Record<string, unknown>[] {
    return this.reads.users(q);
  }

  adminUsers(): Record<string, unknown>[] {
    return this.reads.adminUsers();
  }

  projects(q: ScopeQuery): Record<string, unknown>[] {
    return this.reads.projects(q);
  }

  clusters(): { id: string; manager: string }[] {
    return this.reads.clusters();
  }

  usageGlobal(q: ScopeQuery, fields: string[]): Record<string, unknown>[] {
    return this.reads.usageGlobal(q, fields);
  }

  usageCurrent(q: UsageCurrentQuery, fields: string[]): Record<string, unknown>[] {
    return this.reads.usageCurrent(q, fields);
  }

  stats(clusterIds: string[], window?: { fromMs: number; toMs: number }): ClusterStats[] {
    return this.reads.stats(clusterIds, window);
  }

  close(): void {
    this.abortWindow();
    this.#stmts.clear();
    this.reads.clear();
    this.#ro.close();
    // Fold the WAL into the database and empty it even while readers (the load balancer) keep the file open:
    // a stopped API server then leaves no frames behind for a restored database file to pick up.
    try {
      this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch { /* a reader in the middle of a read: the WAL stays, SQLite replays it at the next open */ }
    this.db.close();
  }
}
