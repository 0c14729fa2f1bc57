// Unit ownership and admin look-ups for the load balancer: straight from the API server's SQLite DB
// (read-only) or through its HTTP API (`/api/v1/units/verify`), behind a short-lived cache.

import { DatabaseSync } from "node:sqlite";
import type { HttpBackendClient } from "./http_client.ts";

/** Answers who owns which units and who is an admin. */
export interface OwnershipChecker {
  /** True when `user` may see every unit of `uuids` in cluster `clusterId`. */
  owns(user: string, clusterId: string, uuids: string[]): Promise<boolean>;
  /** True when `user` is a CEEMS admin. */
  isAdmin(user: string): Promise<boolean>;
  /** Cluster ids the API server knows units of. */
  clusterIds(): Promise<string[]>;
  close(): void;
}

/** CEEMS's internal service account, always an admin. */
export const CEEMS_SERVICE_USER = "ceems-int-svc";

/**
 * Reads the API server's DB (`<data.path>/ceems.db`) read-only. A unit belongs to a user when the
 * user started it or is a member of its project in that cluster, as the API's `/units/verify` does.
 */
export class DbOwnership implements OwnershipChecker {
  #db: DatabaseSync;
  constructor(readonly dbPath: string) {
    this.#db = new DatabaseSync(dbPath, { readOnly: true });
    this.#db.exec("PRAGMA busy_timeout = 5000");
  }

  owns(user: string, clusterId: string, uuids: string[]): Promise<boolean> {
    if (uuids.length === 0) return Promise.resolve(false);
    const marks = uuids.map(() => "?").join(",");
    const row = this.#db.prepare(
      `SELECT COUNT(DISTINCT uuid) AS n FROM units WHERE cluster_id = ? AND uuid IN (${marks}) AND (
         username = ? OR project IN (
           SELECT j.value FROM users u, json_each(u.projects) j WHERE u.cluster_id = ? AND u.name = ?))`,
    ).get(clusterId, ...uuids, user, clusterId, user) as { n: number } | undefined;
    return Promise.resolve((row?.n ?? 0) >= new Set(uuids).size);
  }

  isAdmin(user: string): Promise<boolean> {
    if (user === CEEMS_SERVICE_USER) return Promise.resolve(true);
    let row: unknown;
    try {
      row = this.#db.prepare("SELECT 1 AS one FROM admin_users WHERE name = ? LIMIT 1").get(user);
    } catch {
      row = undefined; // a DB without the admin_users table has no admins
    }
    return Promise.resolve(row !== undefined);
  }

  clusterIds(): Promise<string[]> {
    const rows = this.#db.prepare("SELECT DISTINCT cluster_id FROM units").all() as { cluster_id: string }[];
    return Promise.resolve(rows.map((r) => r.cluster_id));
  }

  close(): void {
    this.#db.close();
  }
}

/** Asks the API server: `GET /api/v1/units/verify?uuid=..&cluster_id=..` with `X-Grafana-User`. */
export class HttpOwnership implements OwnershipChecker {
  constructor(readonly base: string, readonly client: HttpBackendClient) {}

  async owns(user: string, clusterId: string, uuids: string[]): Promise<boolean> {
    if (uuids.length === 0) return false;
    const params = new URLSearchParams();
    for (const u of uuids) params.append("uuid", u);
    params.append("cluster_id", clusterId);
    const resp = await this.client.fetch(`${this.base}/api/v1/units/verify?${params}`, {
      headers: { "X-Grafana-User": user },
    });
    const body = await resp.text();
    if (resp.status !== 200) return false;
    try {
      return JSON.parse(body).status === "success";
    } catch {
      return false;
    }
  }

  async isAdmin(user: string): Promise<boolean> {
    if (user === CEEMS_SERVICE_USER) return true;
    const resp = await this.client.fetch(`${this.base}/api/v1/users/admin?role=admin`, {
      headers: { "X-Grafana-User": CEEMS_SERVICE_USER },
    });
    const body = await resp.text();
    if (resp.status !== 200) return false;
    try {
      const data = JSON.parse(body).data as { name?: string }[] | null;
      return (data ?? []).some((u) => u?.name === user);
    } catch {
      return false;
    }
  }

  async clusterIds(): Promise<string[]> {
    const resp = await this.client.fetch(`${this.base}/api/v1/clusters/admin`, {
      headers: { "X-Grafana-User": CEEMS_SERVICE_USER },
    });
    const body = await resp.text();
    if (resp.status !== 200) throw new Error(`GET /api/v1/clusters/admin: HTTP ${resp.status}`);
    const data = JSON.parse(body).data as { id?: string }[] | null;
    return (data ?? []).map((c) => c?.id ?? "").filter((id) => id !== "");
  }

  close(): void {
    this.client.close();
  }
}

/** Caches answers of another checker for `ttlMs` (grants per unit, refusals per unit set). */
export class CachedOwnership implements OwnershipChecker {
  #granted = new Map<string, number>();
  #refused = new Map<string, number>();
  #admins = new Map<string, { admin: boolean; until: number }>();
  constructor(readonly inner: OwnershipChecker, readonly ttlMs = 30_000, readonly now = () => Date.now()) {}

  async owns(user: string, clusterId: string, uuids: string[]): Promise<boolean> {
    if (uuids.length === 0) return false;
    const t = this.now();
    const key = (u: string) => `${user}\u0000${clusterId}\u0000${u}`;
    const missing = [...new Set(uuids)].filter((u) => (this.#granted.get(key(u)) ?? 0) <= t);
    if (missing.length === 0) return true;
    const setKey = key(missing.sort().join("\u0001"));
    if ((this.#refused.get(setKey) ?? 0) > t) return false;
    const ok = await this.inner.owns(user, clusterId, missing);
    this.#prune(t);
    if (ok) { for (const u of missing) this.#granted.set(key(u), t + this.ttlMs); }
    else this.#refused.set(setKey, t + this.ttlMs);
    return ok;
  }

  async isAdmin(user: string): Promise<boolean> {
    const t = this.now();
    const hit = this.#admins.get(user);
    if (hit && hit.until > t) return hit.admin;
    const admin = await this.inner.isAdmin(user);
    this.#admins.set(user, { admin, until: t + this.ttlMs });
    return admin;
  }

  clusterIds(): Promise<string[]> {
    return this.inner.clusterIds();
  }

  #prune(t: number): void {
    if (this.#granted.size + this.#refused.size < 100_000) return;
    for (const m of [this.#granted, this.#refused]) for (const [k, until] of m) if (until <= t) m.delete(k);
  }

  close(): void {
    this.inner.close();
  }
}
