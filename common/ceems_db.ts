// The contract between the API server and the load balancer over the API server's database: its file
// name, the internal service account, and the ownership and admin queries both answer with.

/** File name of the API server's database inside its data directory. */
export const DB_FILE = "ceems.db";

/**
 * CEEMS's internal service account. It is an admin only on requests the API server has authenticated
 * as a configured service client (`ceems_api_server.admin.service_clients`); never by name alone.
 */
export const SERVICE_ACCOUNT = "ceems-int-svc";

/** The part of node:sqlite's DatabaseSync these queries use. */
export interface QueryableDb {
  prepare(sql: string): { get(...args: (string | number)[]): unknown; all(...args: (string | number)[]): unknown[] };
}

/**
 * Units of `?1` (a JSON array) in clusters `?2` (a JSON array; empty: any cluster) that user `?3` may see:
 * those they started, and those of a project they are a member of in the unit's cluster. One statement
 * whatever the list lengths, so statement caches stay small.
 */
const OWNED_UNITS = `SELECT COUNT(DISTINCT uuid) AS n FROM units
  WHERE uuid IN (SELECT value FROM json_each(?1))
    AND (json_array_length(?2) = 0 OR cluster_id IN (SELECT value FROM json_each(?2)))
    AND (username = ?3 OR (cluster_id, project) IN (
      SELECT u.cluster_id, j.value FROM users u, json_each(u.projects) j WHERE u.name = ?3))`;

/** True when `user` may see every unit of `uuids` (in `clusterIds`, or any cluster when empty). */
export function ownsAllUnits(db: QueryableDb, user: string, uuids: string[], clusterIds: string[]): boolean {
  const uniq = [...new Set(uuids)];
  if (uniq.length === 0) return false;
  const row = db.prepare(OWNED_UNITS).get(JSON.stringify(uniq), JSON.stringify(clusterIds), user) as { n: number };
  return row.n >= uniq.length;
}

/** True when `user` is in the admin_users table (the service account never is, by name). */
export function isAdminInDb(db: QueryableDb, user: string): boolean {
  if (user === SERVICE_ACCOUNT) return false;
  return db.prepare("SELECT 1 AS one FROM admin_users WHERE name = ? LIMIT 1").get(user) !== undefined;
}

/** Cluster ids the database holds units of (what the API's `/clusters/admin` lists). */
export function clusterIdsInDb(db: QueryableDb): string[] {
  const rows = db.prepare("SELECT DISTINCT cluster_id FROM units ORDER BY cluster_id").all() as {
    cluster_id: string;
  }[];
  return rows.map((r) => r.cluster_id);
}
