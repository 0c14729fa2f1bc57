// One update window written as one SQLite transaction, fed in slices: units upserted (new ones in
// multi-row INSERTs, known ones merged), usage summed per key at the end, then memberships and update_state.

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { AVG_WEIGHTS, METRIC_COLUMNS, type MetricMap, type Project, type Unit, type User } from "../models.ts";
import { encodeGo } from "../http/json.ts";
import { mergeMetrics, metricMaps } from "./rows.ts";
import type { UpdateBatch } from "./storage.ts";

/** Everything of a window but its units (which arrive in slices). */
export type WindowMeta = Omit<UpdateBatch, "units">;

/** Metric maps are stored in CEEMS's output encoding (sorted keys, %.8f floats) so reads splice them as is. */
const metricJson = (m: MetricMap | undefined) => (m && Object.keys(m).length ? encodeGo(m, true) : "{}");
const mapJson = (m: unknown) => encodeGo(m ?? {}, false);
const isoSeconds = (ms: number) => new Date(ms).toISOString().slice(0, 19);
const ph = (n: number) => Array(n).fill("?").join(",");

const UNIT_INSERT_COLS =
  `resource_manager, cluster_id, uuid, name, project, groupname, username, created_at, started_at, ended_at, created_at_ts, started_at_ts, ended_at_ts, elapsed, state, allocation, tags, ${
    METRIC_COLUMNS.join(", ")
  }, ignore, num_updates, last_updated_at`;
const UNIT_ROW_PH = `(${Array(18 + METRIC_COLUMNS.length).fill("?").join(",")}, 1, ?)`;
/** New units are inserted this many rows per statement (one bind/step for 32 rows: ~1,000 parameters). */
const INSERT_BATCH = 32;
/** Known units are looked up this many per statement. */
const LOOKUP_CHUNK = 500;
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

/** Sums a window's units per usage key: totals add, averages weight by their time key. */
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

type StoredRow = Record<string, string | number>;

/**
 * A window's transaction: {@link begin}, {@link add} as many unit slices as needed, then {@link commit}; any
 * failure must be followed by {@link rollback}, which keeps the failure's own error visible.
 */
export class WindowWriter {
  readonly #now: string;
  readonly #day: string;
  /** Rows of the window's units known so far (id -1: inserted by this window, not yet read back). */
  readonly #known = new Map<string, StoredRow>();
  readonly #usage = new Map<string, { u: Unit; acc: UsageAccumulator; newUnits: number }>();
  #pending: (string | number)[] = [];
  #pendingRows = 0;

  constructor(
    readonly db: DatabaseSync,
    readonly stmt: (sql: string) => StatementSync,
    readonly meta: WindowMeta,
  ) {
    this.#now = isoSeconds(meta.windowEndMs);
    this.#day = this.#now.slice(0, 10);
  }

  /** Opens the write transaction and runs the retention purge in it. */
  begin(): void {
    this.db.exec("BEGIN IMMEDIATE");
    if (this.meta.retentionMs > 0) this.#purge(this.meta.windowEndMs - this.meta.retentionMs);
  }

  #purge(beforeMs: number): void {
    this.stmt("DELETE FROM units WHERE ended_at_ts > 0 AND ended_at_ts <= ?").run(beforeMs);
    this.stmt("DELETE FROM usage WHERE last_updated_at <= ?").run(isoSeconds(beforeMs));
    this.stmt("DELETE FROM daily_usage WHERE last_updated_at <= ?").run(isoSeconds(beforeMs).slice(0, 10));
  }

  /** Upserts a slice of the window's units (a uuid repeated within the window counts once). */
  add(units: Unit[]): void {
    this.#lookup(units);
    for (const u of units) {
      const key = `${u.cluster_id}\0${u.uuid}`;
      const old = this.#known.get(key);
      if (!old) {
        pushUnitValues(this.#pending, u, this.#now);
        if (++this.#pendingRows === INSERT_BATCH) this.#flush();
        this.#known.set(key, { id: -1 });
      } else {
        if (old.id === -1) this.#flush();
        this.#updateUnit(u, old);
      }
      if (u.ignore) continue;
      const uk = `${u.cluster_id}\0${u.username}\0${u.project}`;
      const g = this.#usage.get(uk);
      const inc = u as unknown as Record<string, MetricMap | undefined>;
      if (!g) {
        const acc = new UsageAccumulator();
        acc.add(inc);
        this.#usage.set(uk, { u, acc, newUnits: old ? 0 : 1 });
      } else {
        g.acc.add(inc);
        g.newUnits += old ? 0 : 1;
        g.u = u;
      }
    }
    this.#flush();
  }

  /** Writes usage, memberships, admins and the window's end, and commits. */
  commit(): void {
    for (const g of this.#usage.values()) {
      const maps = g.acc.result();
      this.#upsertUsage("usage", g.u, maps, g.newUnits, this.#now);
      this.#upsertUsage("daily_usage", g.u, maps, g.newUnits, this.#day);
    }
    const m = this.meta;
    for (const u of m.users) this.#upsertMember("users", "projects", u, u.projects);
    for (const p of m.projects) this.#upsertMember("projects", "users", p, p.users);
    if (m.adminUsers.length) {
      this.stmt("DELETE FROM admin_users").run();
      for (const a of m.adminUsers) insertAdmin(this.stmt, a.name, a.source, this.#now);
    }
    this.stmt(
      "INSERT INTO update_state (cluster_id, last_update_ms) VALUES (?, ?) ON CONFLICT (cluster_id) DO UPDATE SET last_update_ms = excluded.last_update_ms",
    ).run(m.clusterId, m.windowEndMs);
    this.db.exec("COMMIT");
  }

  /** Rolls back whatever is open; never throws (SQLite may already have rolled back, e.g. on a full disk). */
  rollback(): void {
    try {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
    } catch { /* the transaction is gone either way; the caller reports the error that caused this */ }
  }

  /** Reads the stored rows of a slice's units not seen yet in this window, by (cluster_id, uuid). */
  #lookup(units: Unit[]): void {
    const byCluster = new Map<string, string[]>();
    for (const u of units) {
      if (this.#known.has(`${u.cluster_id}\0${u.uuid}`)) continue;
      if (!byCluster.has(u.cluster_id)) byCluster.set(u.cluster_id, []);
      byCluster.get(u.cluster_id)!.push(u.uuid);
    }
    for (const [cluster, uuids] of byCluster) {
      for (let i = 0; i < uuids.length; i += LOOKUP_CHUNK) {
        const part = uuids.slice(i, i + LOOKUP_CHUNK);
        const rows = this.stmt(
          `SELECT id, uuid, ${METRIC_COLUMNS.join(", ")} FROM units WHERE cluster_id = ? AND uuid IN (${
            ph(part.length)
          })`,
        ).all(cluster, ...part) as StoredRow[];
        for (const r of rows) this.#known.set(`${cluster}\0${r.uuid}`, r);
      }
    }
  }

  #flush(): void {
    if (this.#pendingRows) this.stmt(insertUnitsSql(this.#pendingRows)).run(...this.#pending);
    this.#pending = [];
    this.#pendingRows = 0;
  }

  /** Updates a stored unit: its fields replaced, its metrics merged with the stored ones. */
  #updateUnit(u: Unit, old: StoredRow): void {
    if (old.id === -1) {
      old = this.stmt(`SELECT id, ${METRIC_COLUMNS.join(", ")} FROM units WHERE cluster_id = ? AND uuid = ?`).get(
        u.cluster_id,
        u.uuid,
      ) as StoredRow;
    }
    const merged = mergeMetrics(metricMaps(old), u as unknown as Record<string, MetricMap | undefined>);
    this.stmt(
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
      this.#now,
      old.id as number,
    );
  }

  #upsertUsage(table: string, u: Unit, inc: Record<string, MetricMap | undefined>, n: number, stamp: string): void {
    const byDay = table === "daily_usage";
    const old = this.stmt(
      `SELECT id, ${METRIC_COLUMNS.join(", ")} FROM ${table} WHERE cluster_id = ? AND username = ? AND project = ?${
        byDay ? " AND last_updated_at = ?" : ""
      }`,
    ).get(...[u.cluster_id, u.username, u.project, ...(byDay ? [stamp] : [])]) as StoredRow | undefined;
    if (!old) {
      this.stmt(
        `INSERT INTO ${table} (resource_manager, cluster_id, num_units, project, groupname, username, ${
          METRIC_COLUMNS.join(", ")
        }, num_updates, last_updated_at) VALUES (${ph(6 + METRIC_COLUMNS.length)}, 1, ?)`,
      ).run(
        u.resource_manager,
        u.cluster_id,
        n,
        u.project,
        u.groupname,
        u.username,
        ...METRIC_COLUMNS.map((c) => metricJson(inc[c])),
        stamp,
      );
      return;
    }
    const merged = mergeMetrics(metricMaps(old), inc);
    this.stmt(
      `UPDATE ${table} SET num_units = num_units + ?, groupname = ?, ${
        METRIC_COLUMNS.map((c) => `${c} = ?`).join(", ")
      }, num_updates = num_updates + 1, last_updated_at = ? WHERE id = ?`,
    ).run(n, u.groupname, ...METRIC_COLUMNS.map((c) => metricJson(merged[c])), stamp, old.id as number);
  }

  #upsertMember(table: string, listCol: string, m: User | Project, list: string[]): void {
    this.stmt(
      `INSERT INTO ${table} (uid, cluster_id, resource_manager, name, ${listCol}, tags, last_updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cluster_id, name) DO UPDATE SET uid = excluded.uid, resource_manager = excluded.resource_manager, ${listCol} = excluded.${listCol}, tags = excluded.tags, last_updated_at = excluded.last_updated_at`,
    ).run(m.uid, m.cluster_id, m.resource_manager, m.name, JSON.stringify(list), JSON.stringify(m.tags), this.#now);
  }
}

/** Inserts (or re-tags) one admin_users row of `source` ("ceems" from the config, "grafana" from teams). */
export function insertAdmin(stmt: (sql: string) => StatementSync, name: string, source: string, now: string): void {
  stmt(
    "INSERT INTO admin_users (uid, cluster_id, resource_manager, name, projects, tags, last_updated_at) VALUES ('', 'all', '', ?, '[]', ?, ?) ON CONFLICT (cluster_id, name) DO UPDATE SET tags = excluded.tags, last_updated_at = excluded.last_updated_at",
  ).run(name, JSON.stringify([source]), now);
}
