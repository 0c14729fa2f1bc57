// SQLite implementation of the API server's Storage on node:sqlite (WAL, ordered migrations, idempotent
// upserts in one transaction per update window, online backups, retention purge) — the embedded default.

import { backup as sqliteBackup, DatabaseSync, type StatementSync } from "node:sqlite";
import { join } from "node:path";
import {
  addMaps,
  AVG_WEIGHTS,
  avgMaps,
  METRIC_COLUMNS,
  type MetricMap,
  type Project,
  type Unit,
  UNIT_FIELDS,
  USAGE_FIELDS,
  type User,
} from "../models.ts";
import type { ClusterStats, ScopeQuery, Storage, UnitQuery, UpdateBatch, UsageCurrentQuery } from "./storage.ts";
import { MIGRATIONS } from "./migrations.ts";
import { DB_FILE, isAdminInDb, ownsAllUnits, type QueryableDb } from "../../common/ceems_db.ts";
import { encodeGo, RawJson } from "../http/json.ts";

/** Metric maps are stored in CEEMS's output encoding (sorted keys, %.8f floats) so reads splice them as is. */
const metricJson = (m: MetricMap | undefined) => (m && Object.keys(m).length ? encodeGo(m, true) : "{}");
const mapJson = (m: unknown) => encodeGo(m ?? {}, false);

const UNIT_INSERT_COLS =
  `resource_manager, cluster_id, uuid, name, project, groupname, username, created_at, started_at, ended_at, created_at_ts, started_at_ts, ended_at_ts, elapsed, state, allocation, tags, ${
    METRIC_COLUMNS.join(", ")
  }, ignore, num_updates, last_updated_at`;
const UNIT_ROW_PH = `(${Array(18 + METRIC_COLUMNS.length).fill("?").join(",")}, 1, ?)`;
/** New units are inserted this many rows per statement (one bind/step for 32 rows: ~1,000 parameters). */
const INSERT_BATCH = 32;
const insertUnitsSql = (rows: number) =>
  `INSERT INTO units (${UNIT_INSERT_COLS}) VALUES ${Array(rows).fill(UNIT_ROW_PH).join(",")}`;

/** Appends the bound values of a new unit row (UNIT_ROW_PH) to `out`. */
function pushUnitValues(out: (string | number)[], u: Unit, now: string): void {
  const inc = u as unknown as Record<string, MetricMap | undefined>;
  out.push(
    u.resource_manager,
    u.cluster_id,
    u.uuid,
    u.name,
    u.project,
    u.groupname,
    u.username,
    u.created_at,
    u.started_at,
    u.ended_at,
    u.created_at_ts,
    u.started_at_ts,
    u.ended_at_ts,
    u.elapsed,
    u.state,
    mapJson(u.allocation),
    mapJson(u.tags),
  );
  for (const c of METRIC_COLUMNS) out.push(metricJson(inc[c]));
  out.push(u.ignore ? 1 : 0, now);
}

const JSON_UNIT_COLS = new Set<string>(["allocation", "tags", ...METRIC_COLUMNS]);

/** Name of the DB file under the data path, as CEEMS names it. */
export { DB_FILE };

const isoSeconds = (ms: number) => new Date(ms).toISOString().slice(0, 19);
const ph = (n: number) => Array(n).fill("?").join(",");

const cmp = (a: unknown, b: unknown) => {
  const x = String(a ?? ""), y = String(b ?? "");
  return x < y ? -1 : x > y ? 1 : 0;
};

function parseJson(v: unknown, def: unknown): unknown {
  if (typeof v !== "string" || v === "") return def;
  try {
    return JSON.parse(v);
  } catch {
    return def;
  }
}

/** Merges an incoming window's metric maps into stored ones: totals add, averages weight by time. */
function mergeMetrics(
  old: Record<string, MetricMap>,
  inc: Record<string, MetricMap | undefined>,
): Record<string, MetricMap> {
  const out: Record<string, MetricMap> = {};
  const oldT = old.total_time_seconds ?? {};
  const incT = inc.total_time_seconds ?? {};
  for (const c of METRIC_COLUMNS) {
    const w = AVG_WEIGHTS[c];
    out[c] = w ? avgMaps(old[c], inc[c], oldT[w] ?? 0, incT[w] ?? 0) : addMaps(old[c], inc[c]);
  }
  return out;
}

/** Sums a batch's units per usage key in place: totals add, averages weight by their time key. */
class UsageAccumulator {
  #tot: Record<string, MetricMap> = {};
  #vw: Record<string, MetricMap> = {};
  #w: Record<string, MetricMap> = {};
  #v: Record<string, MetricMap> = {};
  #n: Record<string, MetricMap> = {};

  add(u: Record<string, MetricMap | undefined>): void {
    const t = u.total_time_seconds ?? {};
    for (const c of METRIC_COLUMNS) {
      const m = u[c];
      if (!m) continue;
      const wk = AVG_WEIGHTS[c];
      if (!wk) {
        const acc = (this.#tot[c] ??= {});
        for (const k in m) acc[k] = (acc[k] ?? 0) + (Number.isFinite(m[k]) ? m[k] : 0);
        continue;
      }
      const w = t[wk] ?? 0;
      const vw = (this.#vw[c] ??= {}), ws = (this.#w[c] ??= {}), vs = (this.#v[c] ??= {}), ns = (this.#n[c] ??= {});
      for (const k in m) {
        const v = Number.isFinite(m[k]) ? m[k] : 0;
        vw[k] = (vw[k] ?? 0) + v * w;
        ws[k] = (ws[k] ?? 0) + w;
        vs[k] = (vs[k] ?? 0) + v;
        ns[k] = (ns[k] ?? 0) + 1;
      }
    }
  }

  result(): Record<string, MetricMap> {
    const out: Record<string, MetricMap> = { ...this.#tot };
    for (const c in this.#vw) {
      const m: MetricMap = {};
      for (const k in this.#vw[c]) {
        const w = this.#w[c][k];
        m[k] = w > 0 ? this.#vw[c][k] / w : this.#v[c][k] / this.#n[c][k];
      }
      out[c] = m;
    }
    return out;
  }
}

/** A prepared statement from a bounded per-connection cache (query shapes vary with list lengths). */
function cached(cache: Map<string, StatementSync>, db: DatabaseSync, sql: string): StatementSync {
  let s = cache.get(sql);
  if (!s) {
    if (cache.size >= 256) cache.clear();
    s = db.prepare(sql);
    cache.set(sql, s);
  }
  return s;
}

/** Units written between two yields to the event loop inside a window's transaction. */
const WRITE_CHUNK = 2000;

/** The node:sqlite store. */
export class SqliteStorage implements Storage {
  /** The write connection (update cycle). */
  readonly db: DatabaseSync;
  /** A read-only connection for the API: sees committed windows only, never a window being written. */
  readonly #ro: DatabaseSync;
  readonly path: string;
  #stmts = new Map<string, StatementSync>();
  #rstmts = new Map<string, StatementSync>();
  /** Serialises write transactions (clusters catch up concurrently). */
  #writeLock: Promise<void> = Promise.resolve();

  /** Opens (creating and migrating) `<dataPath>/ceems.db`. */
  constructor(dataPath: string, opts: { readOnly?: boolean } = {}) {
    if (!opts.readOnly) Deno.mkdirSync(dataPath, { recursive: true });
    this.path = join(dataPath, DB_FILE);
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
  }

  /** Applies pending migrations in order; returns the resulting schema version. */
  migrate(): number {
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
        this.db.exec("ROLLBACK");
        throw new Error(`migration ${version + 1} failed: ${(e as Error).message}`);
      }
    }
    return version;
  }

  #stmt(sql: string): StatementSync {
    return cached(this.#stmts, this.db, sql);
  }

  #rstmt(sql: string): StatementSync {
    return cached(this.#rstmts, this.#ro, sql);
  }

  /** The read connection with statement caching, for the queries shared with the load balancer. */
  #reader: QueryableDb = { prepare: (sql) => this.#rstmt(sql) };

  lastUpdateMs(clusterId: string): number | undefined {
    const r = this.#stmt("SELECT last_update_ms FROM update_state WHERE cluster_id = ?").get(clusterId) as
      | { last_update_ms: number }
      | undefined;
    return r?.last_update_ms;
  }

  applyUpdate(b: UpdateBatch): Promise<void> {
    const run = this.#writeLock.then(() => this.#apply(b));
    this.#writeLock = run.catch(() => {});
    return run;
  }

  async #apply(b: UpdateBatch): Promise<void> {
    const now = isoSeconds(b.windowEndMs);
    const day = now.slice(0, 10);
    this.db.exec("BEGIN IMMEDIATE");
    try {
      if (b.retentionMs > 0) this.#purge(b.windowEndMs - b.retentionMs);
      await this.#upsertUnits(b.units, now, day);
      for (const u of b.users) this.#upsertMember("users", "projects", u, u.projects, now);
      for (const p of b.projects) this.#upsertMember("projects", "users", p, p.users, now);
      if (b.adminUsers.length) {
        this.#stmt("DELETE FROM admin_users").run();
        for (const a of b.adminUsers) {
          this.#stmt(
            "INSERT INTO admin_users (uid, cluster_id, resource_manager, name, projects, tags, last_updated_at) VALUES ('', 'all', '', ?, '[]', ?, ?) ON CONFLICT (cluster_id, name) DO UPDATE SET tags = excluded.tags, last_updated_at = excluded.last_updated_at",
          ).run(a.name, JSON.stringify([a.source]), now);
        }
      }
      this.#stmt(
        "INSERT INTO update_state (cluster_id, last_update_ms) VALUES (?, ?) ON CONFLICT (cluster_id) DO UPDATE SET last_update_ms = excluded.last_update_ms",
      ).run(b.clusterId, b.windowEndMs);
      this.db.exec("COMMIT");
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
  }

  #purge(beforeMs: number): void {
    this.#stmt("DELETE FROM units WHERE ended_at_ts > 0 AND ended_at_ts <= ?").run(beforeMs);
    this.#stmt("DELETE FROM usage WHERE last_updated_at <= ?").run(isoSeconds(beforeMs));
    this.#stmt("DELETE FROM daily_usage WHERE last_updated_at <= ?").run(isoSeconds(beforeMs).slice(0, 10));
  }

  /** Existing rows of the batch's units, looked up in chunks by (cluster_id, uuid). */
  #existing(units: Unit[]): Map<string, Record<string, string | number>> {
    const out = new Map<string, Record<string, string | number>>();
    const byCluster = new Map<string, string[]>();
    for (const u of units) {
      if (!byCluster.has(u.cluster_id)) byCluster.set(u.cluster_id, []);
      byCluster.get(u.cluster_id)!.push(u.uuid);
    }
    const CHUNK = 500;
    for (const [cluster, uuids] of byCluster) {
      for (let i = 0; i < uuids.length; i += CHUNK) {
        const part = uuids.slice(i, i + CHUNK);
        const rows = this.#stmt(
          `SELECT id, uuid, ${METRIC_COLUMNS.join(", ")} FROM units WHERE cluster_id = ? AND uuid IN (${
            ph(part.length)
          })`,
        ).all(cluster, ...part) as Record<string, string | number>[];
        for (const r of rows) out.set(`${cluster}\0${r.uuid}`, r);
      }
    }
    return out;
  }

  /** Upserts units (new ones in multi-row INSERTs), then each usage key once with the batch's merged metrics. */
  async #upsertUnits(units: Unit[], now: string, day: string): Promise<void> {
    const existing = this.#existing(units);
    const usage = new Map<string, { u: Unit; acc: UsageAccumulator; newUnits: number }>();
    const pending: (string | number)[] = [];
    let pendingRows = 0;
    const flush = () => {
      if (pendingRows) this.#stmt(insertUnitsSql(pendingRows)).run(...pending);
      pending.length = 0;
      pendingRows = 0;
    };
    let n = 0;
    for (const u of units) {
      // Let API requests run (on the read connection, against the last committed state) during big windows.
      if (++n % WRITE_CHUNK === 0) await new Promise((r) => setTimeout(r, 0));
      const key = `${u.cluster_id}\0${u.uuid}`;
      const old = existing.get(key);
      if (!old) {
        pushUnitValues(pending, u, now);
        if (++pendingRows === INSERT_BATCH) flush();
        // A uuid repeated within the batch counts once and updates the row inserted for it.
        existing.set(key, { id: -1 });
      } else {
        if (old.id === -1) flush();
        this.#updateUnit(u, old, now);
      }
      if (u.ignore) continue;
      const uk = `${u.cluster_id}\0${u.username}\0${u.project}`;
      const g = usage.get(uk);
      if (!g) {
        const acc = new UsageAccumulator();
        acc.add(u as unknown as Record<string, MetricMap | undefined>);
        usage.set(uk, { u, acc, newUnits: old ? 0 : 1 });
      } else {
        g.acc.add(u as unknown as Record<string, MetricMap | undefined>);
        g.newUnits += old ? 0 : 1;
        g.u = u;
      }
    }
    flush();
    for (const g of usage.values()) {
      const maps = g.acc.result();
      this.#upsertUsage("usage", g.u, maps, g.newUnits, now);
      this.#upsertUsage("daily_usage", g.u, maps, g.newUnits, day);
    }
  }

  /** Updates a stored unit: its fields replaced, its metrics merged with the stored ones. */
  #updateUnit(u: Unit, old: Record<string, string | number>, now: string): void {
    if (old.id === -1) {
      old = this.#stmt(`SELECT id, ${METRIC_COLUMNS.join(", ")} FROM units WHERE cluster_id = ? AND uuid = ?`).get(
        u.cluster_id,
        u.uuid,
      ) as Record<string, string | number>;
    }
    const inc = u as unknown as Record<string, MetricMap | undefined>;
    const oldMaps: Record<string, MetricMap> = {};
    for (const c of METRIC_COLUMNS) oldMaps[c] = parseJson(old[c], {}) as MetricMap;
    const merged = mergeMetrics(oldMaps, inc);
    this.#stmt(
      `UPDATE units SET name = ?, project = ?, groupname = ?, username = ?, started_at = ?, started_at_ts = ?, ended_at = ?, ended_at_ts = ?, elapsed = ?, state = ?, allocation = ?, tags = ?, ${
        METRIC_COLUMNS.map((c) => `${c} = ?`).join(", ")
      }, ignore = ?, num_updates = num_updates + 1, last_updated_at = ? WHERE id = ?`,
    ).run(
      u.name,
      u.project,
      u.groupname,
      u.username,
      u.started_at,
      u.started_at_ts,
      u.ended_at,
      u.ended_at_ts,
      u.elapsed,
      u.state,
      mapJson(u.allocation),
      mapJson(u.tags),
      ...METRIC_COLUMNS.map((c) => metricJson(merged[c])),
      u.ignore ? 1 : 0,
      now,
      old.id as number,
    );
  }

  #upsertUsage(
    table: string,
    u: Unit,
    inc: Record<string, MetricMap | undefined>,
    newUnits: number,
    stamp: string,
  ): void {
    const byDay = table === "daily_usage";
    const old = this.#stmt(
      `SELECT id, ${METRIC_COLUMNS.join(", ")} FROM ${table} WHERE cluster_id = ? AND username = ? AND project = ?${
        byDay ? " AND last_updated_at = ?" : ""
      }`,
    ).get(...[u.cluster_id, u.username, u.project, ...(byDay ? [stamp] : [])]) as
      | Record<string, string | number>
      | undefined;
    if (!old) {
      this.#stmt(
        `INSERT INTO ${table} (resource_manager, cluster_id, num_units, project, groupname, username, ${
          METRIC_COLUMNS.join(", ")
        }, num_updates, last_updated_at) VALUES (${ph(6 + METRIC_COLUMNS.length)}, 1, ?)`,
      ).run(
        u.resource_manager,
        u.cluster_id,
        newUnits,
        u.project,
        u.groupname,
        u.username,
        ...METRIC_COLUMNS.map((c) => metricJson(inc[c])),
        stamp,
      );
      return;
    }
    const oldMaps: Record<string, MetricMap> = {};
    for (const c of METRIC_COLUMNS) oldMaps[c] = parseJson(old[c], {}) as MetricMap;
    const merged = mergeMetrics(oldMaps, inc);
    this.#stmt(
      `UPDATE ${table} SET num_units = num_units + ?, groupname = ?, ${
        METRIC_COLUMNS.map((c) => `${c} = ?`).join(", ")
      }, num_updates = num_updates + 1, last_updated_at = ? WHERE id = ?`,
    ).run(newUnits, u.groupname, ...METRIC_COLUMNS.map((c) => metricJson(merged[c])), stamp, old.id as number);
  }

  #upsertMember(table: string, listCol: string, m: User | Project, list: string[], now: string): void {
    this.#stmt(
      `INSERT INTO ${table} (uid, cluster_id, resource_manager, name, ${listCol}, tags, last_updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cluster_id, name) DO UPDATE SET uid = excluded.uid, resource_manager = excluded.resource_manager, ${listCol} = excluded.${listCol}, tags = excluded.tags, last_updated_at = excluded.last_updated_at`,
    ).run(m.uid, m.cluster_id, m.resource_manager, m.name, JSON.stringify(list), JSON.stringify(m.tags), now);
  }

  async backup(dir: string): Promise<string> {
    Deno.mkdirSync(dir, { recursive: true });
    const d = new Date();
    const p = (n: number) => String(n).padStart(2, "0");
    const name = `ceems-${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${
      p(d.getUTCMinutes())
    }${p(d.getUTCSeconds())}.db`;
    const tmp = join(dir, `.${name}.partial`);
    await sqliteBackup(this.#ro, tmp, { rate: 25 });
    const dest = join(dir, name);
    Deno.renameSync(tmp, dest);
    return dest;
  }

  ping(): boolean {
    try {
      return (this.#rstmt("SELECT 1 AS ok").get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  isAdmin(user: string): boolean {
    return isAdminInDb(this.#reader, user);
  }

  units(q: UnitQuery): Record<string, unknown>[] {
    const where: string[] = ["ignore = 0"];
    const args: (string | number)[] = [];
    if (q.users) {
      where.push(`username IN (${ph(q.users.length)})`);
      args.push(...q.users);
    }
    if (q.clusterIds.length) {
      where.push(`cluster_id IN (${ph(q.clusterIds.length)})`);
      args.push(...q.clusterIds);
    }
    if (q.projects.length) {
      where.push(`project IN (${ph(q.projects.length)})`);
      args.push(...q.projects);
    }
    if (q.uuids.length) {
      where.push(`uuid IN (${ph(q.uuids.length)})`);
      args.push(...q.uuids);
    } else {
      where.push(`(ended_at_ts BETWEEN ? AND ?${q.running ? " OR ended_at_ts = 0" : ""})`);
      args.push(q.fromMs, q.toMs);
    }
    const cols = q.fields.length ? q.fields : [...UNIT_FIELDS];
    const sql = `SELECT ${cols.join(", ")} FROM units WHERE ${where.join(" AND ")} ORDER BY cluster_id, uuid`;
    const rows = this.#rstmt(sql).all(...args) as Record<string, unknown>[];
    const colSet = new Set(cols);
    return rows.map((r) => unitRow(r, colSet));
  }

  verifyOwnership(user: string, uuids: string[], clusterIds: string[]): boolean {
    return ownsAllUnits(this.#reader, user, uuids, clusterIds);
  }

  users(q: ScopeQuery): Record<string, unknown>[] {
    const { where, args } = scopeWhere(q, "name", "projects");
    const rows = this.#rstmt(
      `SELECT uid, cluster_id, resource_manager, name, projects, tags FROM users${where} ORDER BY cluster_id, name`,
    ).all(...args) as Record<string, unknown>[];
    return rows.map((r) => memberRow(r, "projects"));
  }

  adminUsers(): Record<string, unknown>[] {
    const rows = this.#rstmt(
      "SELECT uid, cluster_id, resource_manager, name, projects, tags FROM admin_users ORDER BY name",
    ).all() as Record<string, unknown>[];
    return rows.map((r) => memberRow(r, "projects"));
  }

  projects(q: ScopeQuery): Record<string, unknown>[] {
    const where: string[] = [];
    const args: string[] = [];
    if (q.users) {
      where.push(`EXISTS (SELECT 1 FROM json_each(users) WHERE value IN (${ph(q.users.length)}))`);
      args.push(...q.users);
    } else {
      where.push("EXISTS (SELECT 1 FROM json_each(users))");
    }
    if (q.clusterIds.length) {
      where.push(`cluster_id IN (${ph(q.clusterIds.length)})`);
      args.push(...q.clusterIds);
    }
    if (q.projects.length) {
      where.push(`name IN (${ph(q.projects.length)})`);
      args.push(...q.projects);
    }
    const rows = this.#rstmt(
      `SELECT uid, cluster_id, resource_manager, name, users, tags FROM projects WHERE ${
        where.join(" AND ")
      } ORDER BY cluster_id, name`,
    ).all(...args) as Record<string, unknown>[];
    return rows.map((r) => memberRow(r, "users"));
  }

  clusters(): { id: string; manager: string }[] {
    const rows = this.#rstmt(
      "SELECT DISTINCT cluster_id, resource_manager FROM units ORDER BY cluster_id",
    ).all() as { cluster_id: string; resource_manager: string }[];
    return rows.map((r) => ({ id: r.cluster_id, manager: r.resource_manager }));
  }

  /** SQL restricting (cluster_id, project) to the projects of q.users (or every project with members). */
  #projectScope(q: ScopeQuery): { sql: string; args: string[] } {
    const args: string[] = [];
    const parts: string[] = [];
    if (q.users) {
      parts.push(
        `(cluster_id, project) IN (SELECT u.cluster_id, j.value FROM users u, json_each(u.projects) j WHERE u.name IN (${
          ph(q.users.length)
        }))`,
      );
      args.push(...q.users);
    } else {
      parts.push(
        "(cluster_id, project) IN (SELECT p.cluster_id, p.name FROM projects p WHERE EXISTS (SELECT 1 FROM json_each(p.users)))",
      );
    }
    if (q.clusterIds.length) {
      parts.push(`cluster_id IN (${ph(q.clusterIds.length)})`);
      args.push(...q.clusterIds);
    }
    if (q.projects.length) {
      parts.push(`project IN (${ph(q.projects.length)})`);
      args.push(...q.projects);
    }
    return { sql: parts.join(" AND "), args };
  }

  usageGlobal(q: ScopeQuery, fields: string[]): Record<string, unknown>[] {
    const s = this.#projectScope(q);
    const rows = this.#rstmt(
      `SELECT ${USAGE_FIELDS.join(", ")} FROM usage WHERE ${s.sql} ORDER BY cluster_id, username, project`,
    ).all(...s.args) as Record<string, unknown>[];
    return rows.map((r) => usageRow(r, fields));
  }

  usageCurrent(
    q: UsageCurrentQuery,
    fields: string[],
  ): Record<string, unknown>[] {
    const s = this.#projectScope(q);
    // experimental: from the per-day usage table (days touching the window) instead of the units.
    const rows = q.experimental
      ? this.#rstmt(
        `SELECT cluster_id, resource_manager, num_units, project, groupname, username, ${
          METRIC_COLUMNS.join(", ")
        } FROM daily_usage WHERE last_updated_at BETWEEN ? AND ? AND ${s.sql} ORDER BY cluster_id, username, project`,
      ).all(isoSeconds(q.fromMs).slice(0, 10), isoSeconds(q.toMs).slice(0, 10), ...s.args) as Record<string, unknown>[]
      : this.#rstmt(
        `SELECT cluster_id, resource_manager, project, groupname, username, ${
          METRIC_COLUMNS.join(", ")
        } FROM units WHERE ignore = 0 AND last_updated_at BETWEEN ? AND ?${
          q.terminated ? " AND ended_at_ts > 0" : ""
        } AND ${s.sql} ORDER BY cluster_id, username, project`,
      ).all(isoSeconds(q.fromMs), isoSeconds(q.toMs), ...s.args) as Record<string, unknown>[];
    const extra = q.groupBy ?? [];
    const groups = new Map<string, Record<string, unknown>>();
    for (const r of rows) {
      // As CEEMS: GROUP BY username, project and any requested groupby columns; other columns from a member row.
      let key = `${r.username}\0${r.project}`;
      for (const c of extra) key += `\0${r[c]}`;
      const maps: Record<string, MetricMap> = {};
      for (const c of METRIC_COLUMNS) maps[c] = parseJson(r[c], {}) as MetricMap;
      const g = groups.get(key);
      if (!g) {
        groups.set(key, {
          cluster_id: r.cluster_id,
          resource_manager: r.resource_manager,
          num_units: (r.num_units as number | undefined) ?? 1,
          project: r.project,
          groupname: r.groupname,
          username: r.username,
          ...maps,
        });
      } else {
        const merged = mergeMetrics(g as Record<string, MetricMap>, maps);
        Object.assign(g, merged, { num_units: (g.num_units as number) + ((r.num_units as number | undefined) ?? 1) });
      }
    }
    const ordered = [...groups.values()].sort((a, b) =>
      cmp(a.cluster_id, b.cluster_id) || cmp(a.username, b.username) || cmp(a.project, b.project)
    );
    return ordered.map((g) => usageRow(g, fields, true));
  }

  stats(clusterIds: string[], window?: { fromMs: number; toMs: number }): ClusterStats[] {
    const where: string[] = ["ignore = 0"];
    const args: (string | number)[] = [];
    if (clusterIds.length) {
      where.push(`cluster_id IN (${ph(clusterIds.length)})`);
      args.push(...clusterIds);
    }
    if (window) {
      where.push("(ended_at_ts BETWEEN ? AND ? OR ended_at_ts = 0)");
      args.push(window.fromMs, window.toMs);
    }
    return this.#rstmt(
      `SELECT cluster_id, resource_manager, COUNT(*) AS num_units,
        SUM(CASE WHEN ended_at_ts > 0 THEN 1 ELSE 0 END) AS num_inactive_units,
        SUM(CASE WHEN ended_at_ts = 0 THEN 1 ELSE 0 END) AS num_active_units,
        COUNT(DISTINCT project) AS num_projects, COUNT(DISTINCT username) AS num_users
       FROM units WHERE ${where.join(" AND ")} GROUP BY cluster_id, resource_manager ORDER BY cluster_id`,
    ).all(...args) as unknown as ClusterStats[];
  }

  close(): void {
    this.#stmts.clear();
    this.#rstmts.clear();
    this.#ro.close();
    // Fold the WAL into the database and empty it even while readers (the load balancer) keep the file open:
    // a stopped API server then leaves no frames behind for a restored database file to pick up.
    try {
      this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch { /* a reader in the middle of a read: the WAL stays, SQLite replays it at the next open */ }
    this.db.close();
  }
}

/** Turns a units row into a response object with Go's omitempty rules (uuid always present). */
function unitRow(r: Record<string, unknown>, cols: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of UNIT_FIELDS) {
    if (!cols.has(c)) {
      // Go encodes the uuid (no omitempty) even when it was not selected.
      if (c === "uuid") out.uuid = "";
      continue;
    }
    let v = r[c];
    if (JSON_UNIT_COLS.has(c)) {
      // Stored in output encoding: empty maps are omitted, others spliced without re-encoding.
      if (typeof v !== "string" || v === "" || v === "{}" || v === "null") continue;
      v = new RawJson(v);
    } else if (c !== "uuid" && (v === "" || v === 0 || v === null)) continue;
    out[c] = v;
  }
  return out;
}

function usageRow(r: Record<string, unknown>, fields: string[], parsed = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of USAGE_FIELDS) {
    const metric = (METRIC_COLUMNS as readonly string[]).includes(c);
    if (fields.length && !fields.includes(c)) {
      // Go encodes unselected non-omitempty fields with their zero value.
      if (!metric) out[c] = c === "num_units" ? 0 : "";
      continue;
    }
    let v = r[c];
    if (metric) {
      if (!parsed) v = parseJson(v, {});
      if (Object.keys(v as object).length === 0) continue;
    }
    out[c] = v ?? (c === "num_units" ? 0 : "");
  }
  return out;
}

function memberRow(r: Record<string, unknown>, listCol: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.uid) out.uid = r.uid;
  out.cluster_id = r.cluster_id;
  if (r.resource_manager) out.resource_manager = r.resource_manager;
  out.name = r.name;
  const list = parseJson(r[listCol], []) as unknown[];
  if (list.length) out[listCol] = list;
  const tags = parseJson(r.tags, []) as unknown[];
  if (tags.length) out.tags = tags;
  return out;
}

function scopeWhere(q: ScopeQuery, nameCol: string, listCol: string): { where: string; args: string[] } {
  const where: string[] = [];
  const args: string[] = [];
  if (q.users) {
    where.push(`${nameCol} IN (${ph(q.users.length)})`);
    args.push(...q.users);
  }
  if (q.clusterIds.length) {
    where.push(`cluster_id IN (${ph(q.clusterIds.length)})`);
    args.push(...q.clusterIds);
  }
  if (q.projects.length) {
    where.push(`EXISTS (SELECT 1 FROM json_each(${listCol}) WHERE value IN (${ph(q.projects.length)}))`);
    args.push(...q.projects);
  }
  return { where: where.length ? ` WHERE ${where.join(" AND ")}` : "", args };
}
