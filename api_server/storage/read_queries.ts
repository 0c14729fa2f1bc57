// Every read of the HTTP API on one read-only SQLite connection: one prepared statement per query shape
// (list filters bind one JSON array through json_each, whatever their length), rows produced lazily.

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { METRIC_COLUMNS, UNIT_FIELDS, USAGE_FIELDS } from "../models.ts";
import type { ClusterStats, ScopeQuery, UnitQuery, UsageCurrentQuery } from "./storage.ts";
import { isAdminInDb, ownsAllUnits, type QueryableDb } from "../../common/ceems_db.ts";
import { memberRow, mergeMetrics, metricMaps, unitRow, usageRow } from "./rows.ts";

/** Statements kept per connection; shapes are few (which filters are present), this only bounds odd field sets. */
const MAX_STATEMENTS = 128;

const isoSeconds = (ms: number) => new Date(ms).toISOString().slice(0, 19);
/** A list bound as one JSON array parameter. */
const inList = (col: string) => `${col} IN (SELECT value FROM json_each(?))`;
const json = (xs: string[]) => JSON.stringify([...new Set(xs)]);

const cmp = (a: unknown, b: unknown) => {
  const x = String(a ?? ""), y = String(b ?? "");
  return x < y ? -1 : x > y ? 1 : 0;
};

/** The API's queries on a read-only connection. */
export class ReadQueries {
  /** Idle prepared statements per SQL text (a statement being iterated is taken out, so interleaved reads never share one). */
  readonly #idle = new Map<string, StatementSync[]>();
  /** The connection with statement caching, for the queries shared with the load balancer (run at once). */
  readonly #shared: QueryableDb = { prepare: (sql) => this.#run(sql, (s) => s) };

  constructor(readonly db: DatabaseSync) {}

  #take(sql: string): StatementSync {
    return this.#idle.get(sql)?.pop() ?? this.db.prepare(sql);
  }

  #give(sql: string, s: StatementSync): void {
    let l = this.#idle.get(sql);
    if (!l) {
      if (this.#idle.size >= MAX_STATEMENTS) this.#idle.clear();
      this.#idle.set(sql, l = []);
    }
    if (l.length < 2) l.push(s);
  }

  /** Runs `f` on a statement for `sql` that nothing else uses meanwhile. */
  #run<T>(sql: string, f: (s: StatementSync) => T): T {
    const s = this.#take(sql);
    try {
      return f(s);
    } finally {
      this.#give(sql, s);
    }
  }

  /** Rows of `sql`, read lazily on a statement held until the iteration ends. */
  *#iterate(sql: string, args: (string | number)[]): Generator<Record<string, unknown>> {
    const s = this.#take(sql);
    try {
      yield* s.iterate(...args) as Iterable<Record<string, unknown>>;
    } finally {
      this.#give(sql, s);
    }
  }

  #all(sql: string, args: (string | number)[] = []): Record<string, unknown>[] {
    return this.#run(sql, (s) => s.all(...args) as Record<string, unknown>[]);
  }

  /** Number of prepared statements held (bounded by query shapes). */
  get statements(): number {
    let n = 0;
    for (const l of this.#idle.values()) n += l.length;
    return n;
  }

  /** True when the database answers. */
  ping(): boolean {
    return this.#run("SELECT 1 AS ok", (s) => (s.get() as { ok: number }).ok === 1);
  }

  isAdmin(user: string): boolean {
    return isAdminInDb(this.#shared, user);
  }

  /** True when every uuid is a unit of `user` or of one of their projects. */
  verifyOwnership(user: string, uuids: string[], clusterIds: string[]): boolean {
    return ownsAllUnits(this.#shared, user, uuids, clusterIds);
  }

  /**
   * Units matching `q`, ordered by cluster and uuid, as response objects, produced lazily. The uuid list or
   * the user list drives the search (index look-ups per value); an admin window without either uses the
   * ended_at_ts index.
   */
  *units(q: UnitQuery): Generator<Record<string, unknown>> {
    const cols = q.fields.length ? q.fields : [...UNIT_FIELDS];
    const args: (string | number)[] = [];
    let from = "units u";
    const where = ["u.ignore = 0"];
    let users = q.users;
    if (q.uuids.length) {
      from = "json_each(?) AS l CROSS JOIN units u ON u.uuid = l.value";
      args.push(json(q.uuids));
    } else if (users) {
      from = "json_each(?) AS l CROSS JOIN units u ON u.username = l.value";
      args.push(json(users));
      users = undefined;
    }
    if (users) {
      where.push(inList("u.username"));
      args.push(json(users));
    }
    if (q.clusterIds.length) {
      where.push(inList("u.cluster_id"));
      args.push(json(q.clusterIds));
    }
    if (q.projects.length) {
      where.push(inList("u.project"));
      args.push(json(q.projects));
    }
    if (!q.uuids.length) {
      where.push(`(u.ended_at_ts BETWEEN ? AND ?${q.running ? " OR u.ended_at_ts = 0" : ""})`);
      args.push(q.fromMs, q.toMs);
    }
    const sql = `SELECT ${cols.map((c) => `u.${c}`).join(", ")} FROM ${from} WHERE ${
      where.join(" AND ")
    } ORDER BY u.cluster_id, u.uuid`;
    const colSet = new Set(cols);
    for (const r of this.#iterate(sql, args)) yield unitRow(r, colSet);
  }

  users(q: ScopeQuery): Record<string, unknown>[] {
    const where: string[] = [];
    const args: string[] = [];
    if (q.users) {
      where.push(inList("name"));
      args.push(json(q.users));
    }
    if (q.clusterIds.length) {
      where.push(inList("cluster_id"));
      args.push(json(q.clusterIds));
    }
    if (q.projects.length) {
      where.push(`EXISTS (SELECT 1 FROM json_each(projects) p WHERE p.value IN (SELECT value FROM json_each(?)))`);
      args.push(json(q.projects));
    }
    const rows = this.#all(
      `SELECT uid, cluster_id, resource_manager, name, projects, tags FROM users${
        where.length ? ` WHERE ${where.join(" AND ")}` : ""
      } ORDER BY cluster_id, name`,
      args,
    );
    return rows.map((r) => memberRow(r, "projects"));
  }

  adminUsers(): Record<string, unknown>[] {
    const rows = this.#all(
      "SELECT uid, cluster_id, resource_manager, name, projects, tags FROM admin_users ORDER BY name",
    );
    return rows.map((r) => memberRow(r, "projects"));
  }

  projects(q: ScopeQuery): Record<string, unknown>[] {
    const where: string[] = [];
    const args: string[] = [];
    if (q.users) {
      where.push(`EXISTS (SELECT 1 FROM json_each(users) m WHERE m.value IN (SELECT value FROM json_each(?)))`);
      args.push(json(q.users));
    } else {
      where.push("EXISTS (SELECT 1 FROM json_each(users))");
    }
    if (q.clusterIds.length) {
      where.push(inList("cluster_id"));
      args.push(json(q.clusterIds));
    }
    if (q.projects.length) {
      where.push(inList("name"));
      args.push(json(q.projects));
    }
    const rows = this.#all(
      `SELECT uid, cluster_id, resource_manager, name, users, tags FROM projects WHERE ${
        where.join(" AND ")
      } ORDER BY cluster_id, name`,
      args,
    );
    return rows.map((r) => memberRow(r, "users"));
  }

  clusters(): { id: string; manager: string }[] {
    const rows = this.#all("SELECT DISTINCT cluster_id, resource_manager FROM units ORDER BY cluster_id") as {
      cluster_id: string;
      resource_manager: string;
    }[];
    return rows.map((r) => ({ id: r.cluster_id, manager: r.resource_manager }));
  }

  /** SQL restricting (cluster_id, project) to the projects of q.users (or every project with members). */
  #projectScope(q: ScopeQuery): { sql: string; args: string[] } {
    const args: string[] = [];
    const parts: string[] = [];
    if (q.users) {
      parts.push(
        "(cluster_id, project) IN (SELECT u.cluster_id, j.value FROM users u, json_each(u.projects) j WHERE u.name IN (SELECT value FROM json_each(?)))",
      );
      args.push(json(q.users));
    } else {
      parts.push(
        "(cluster_id, project) IN (SELECT p.cluster_id, p.name FROM projects p WHERE EXISTS (SELECT 1 FROM json_each(p.users)))",
      );
    }
    if (q.clusterIds.length) {
      parts.push(inList("cluster_id"));
      args.push(json(q.clusterIds));
    }
    if (q.projects.length) {
      parts.push(inList("project"));
      args.push(json(q.projects));
    }
    return { sql: parts.join(" AND "), args };
  }

  usageGlobal(q: ScopeQuery, fields: string[]): Record<string, unknown>[] {
    const s = this.#projectScope(q);
    const rows = this.#all(
      `SELECT ${USAGE_FIELDS.join(", ")} FROM usage WHERE ${s.sql} ORDER BY cluster_id, username, project`,
      s.args,
    );
    return rows.map((r) => usageRow(r, fields));
  }

  /**
   * Usage aggregated from units updated in [fromMs, toMs] (the last_updated_at index bounds the rows read to
   * the window), or from the per-day table with `experimental`.
   */
  usageCurrent(q: UsageCurrentQuery, fields: string[]): Record<string, unknown>[] {
    const s = this.#projectScope(q);
    const rows = q.experimental
      ? this.#iterate(
        `SELECT cluster_id, resource_manager, num_units, project, groupname, username, ${
          METRIC_COLUMNS.join(", ")
        } FROM daily_usage WHERE last_updated_at BETWEEN ? AND ? AND ${s.sql} ORDER BY cluster_id, username, project`,
        [isoSeconds(q.fromMs).slice(0, 10), isoSeconds(q.toMs).slice(0, 10), ...s.args],
      )
      : this.#iterate(
        `SELECT cluster_id, resource_manager, project, groupname, username, ${
          METRIC_COLUMNS.join(", ")
        } FROM units WHERE ignore = 0 AND last_updated_at BETWEEN ? AND ?${
          q.terminated ? " AND ended_at_ts > 0" : ""
        } AND ${s.sql} ORDER BY cluster_id, username, project`,
        [isoSeconds(q.fromMs), isoSeconds(q.toMs), ...s.args],
      );
    const extra = q.groupBy ?? [];
    const groups = new Map<string, Record<string, unknown>>();
    for (const r of rows) {
      // As CEEMS: GROUP BY username, project and any requested groupby columns; other columns from a member row.
      let key = `${r.username}\0${r.project}`;
      for (const c of extra) key += `\0${r[c]}`;
      const maps = metricMaps(r);
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
        const merged = mergeMetrics(g as Record<string, never>, maps);
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
      where.push(inList("cluster_id"));
      args.push(json(clusterIds));
    }
    if (window) {
      where.push("(ended_at_ts BETWEEN ? AND ? OR ended_at_ts = 0)");
      args.push(window.fromMs, window.toMs);
    }
    return this.#all(
      `SELECT cluster_id, resource_manager, COUNT(*) AS num_units,
        SUM(CASE WHEN ended_at_ts > 0 THEN 1 ELSE 0 END) AS num_inactive_units,
        SUM(CASE WHEN ended_at_ts = 0 THEN 1 ELSE 0 END) AS num_active_units,
        COUNT(DISTINCT project) AS num_projects, COUNT(DISTINCT username) AS num_users
       FROM units WHERE ${where.join(" AND ")} GROUP BY cluster_id, resource_manager ORDER BY cluster_id`,
      args,
    ) as unknown as ClusterStats[];
  }

  /** Drops the prepared statements (before the connection is closed). */
  clear(): void {
    this.#idle.clear();
  }
}
