// Shared fixtures of the load balancer tests: a CEEMS-schema API database with two users' units,
// the matching Prometheus series, and an in-process LB in front of a real Prometheus.

import { DatabaseSync } from "node:sqlite";
import { nullLogger } from "../../common/log.ts";
import { emptyWebConfig } from "../../common/web/web_config.ts";
import { serve, type WebServer } from "../../common/web/server.ts";
import type { Strategy } from "../../lb/config.ts";
import { pyroscopeHandler, tsdbHandler } from "../../lb/frontend.ts";
import { CachedOwnership, DbOwnership, type OwnershipChecker } from "../../lb/ownership.ts";
import { ServerPool } from "../../lb/pool.ts";
import { type BackfillSeries, startPrometheus, toOpenMetrics } from "../helpers/prometheus_server.ts";

/** The cluster the test units run in. */
export const CLUSTER = "slurm-0";
/** Units per user in CLUSTER (carol is a member of alice's project and sees alice's units). */
export const UNITS: Record<string, string[]> = {
  alice: ["1001", "1002"],
  bob: ["2001", "2002"],
  carol: ["1001", "1002"],
};
/** A unit of alice's in another cluster, not visible through CLUSTER. */
export const OTHER_CLUSTER_UNIT = "3001";
/** Every unit id with series in Prometheus. */
export const ALL_UNITS = ["1001", "1002", "2001", "2002", OTHER_CLUSTER_UNIT];
export const ADMIN = "admin1";

/** Creates `<dir>/ceems.db` with CEEMS's units, users and admin_users tables. */
export function createUnitsDb(dir: string): string {
  const path = `${dir}/ceems.db`;
  const db = new DatabaseSync(path);
  db.exec(`
    CREATE TABLE units (id INTEGER PRIMARY KEY, resource_manager TEXT, cluster_id TEXT, uuid TEXT, name TEXT,
      project TEXT, groupname TEXT, username TEXT, created_at TEXT, started_at TEXT, ended_at TEXT,
      created_at_ts INTEGER, started_at_ts INTEGER, ended_at_ts INTEGER, elapsed TEXT, state TEXT,
      allocation TEXT DEFAULT '{}', tags TEXT DEFAULT '{}', ignore INTEGER DEFAULT 0, num_updates INTEGER DEFAULT 0,
      last_updated_at TEXT);
    CREATE INDEX idx_cluster_id_usr_uuid ON units (cluster_id, username, uuid);
    CREATE TABLE users (id INTEGER PRIMARY KEY, uid TEXT, cluster_id TEXT, resource_manager TEXT, name TEXT,
      projects TEXT DEFAULT '[]', tags TEXT DEFAULT '[]', last_updated_at TEXT);
    CREATE TABLE admin_users (id INTEGER PRIMARY KEY, uid TEXT DEFAULT '', cluster_id TEXT DEFAULT 'all',
      resource_manager TEXT DEFAULT '', name TEXT, projects TEXT DEFAULT '[]', tags TEXT DEFAULT '[]',
      last_updated_at TEXT);
  `);
  const unit = db.prepare(
    "INSERT INTO units (resource_manager, cluster_id, uuid, name, project, groupname, username, state) " +
      "VALUES ('slurm', ?, ?, 'job', ?, 'grp', ?, 'COMPLETED')",
  );
  unit.run(CLUSTER, "1001", "p-alice", "alice");
  unit.run(CLUSTER, "1002", "p-alice", "alice");
  unit.run(CLUSTER, "2001", "p-bob", "bob");
  unit.run(CLUSTER, "2002", "p-bob", "bob");
  unit.run("slurm-1", OTHER_CLUSTER_UNIT, "p-alice", "alice");
  const user = db.prepare("INSERT INTO users (cluster_id, resource_manager, name, projects) VALUES (?, 'slurm', ?, ?)");
  user.run(CLUSTER, "alice", '["p-alice"]');
  user.run(CLUSTER, "bob", '["p-bob"]');
  user.run(CLUSTER, "carol", '["p-alice"]');
  user.run("slurm-1", "alice", '["p-alice"]');
  db.prepare("INSERT INTO admin_users (name, tags) VALUES (?, '[\"ceems\"]')").run(ADMIN);
  db.close();
  return path;
}

/** Magnitude of every foreign value: any number at or above it in alice's answers is a leak. */
export const FOREIGN_MAGNITUDE = 1e15;

/** Series of every unit (alice's values small, others' huge) plus a non-unit series. */
export function unitSeries(): BackfillSeries[] {
  const out: BackfillSeries[] = [];
  for (const uuid of ALL_UNITS) {
    const small = uuid.startsWith("100");
    const base = small ? 1 : FOREIGN_MAGNITUDE * 10;
    for (const name of ["ceems_cpu_usage", "ceems_mem_usage"]) {
      out.push({
        name,
        labels: { uuid, hostname: `node-${uuid}`, manager: "slurm", gpuuuid: `GPU-${uuid}` },
        value: (i) => base + (i % 10) / 10,
      });
    }
  }
  out.push({ name: "node_load1", labels: { instance: "node-1:9100" }, value: () => FOREIGN_MAGNITUDE * 5 });
  return out;
}

/** A real Prometheus with the unit series and an in-process LB (TSDB + Pyroscope frontends). */
export interface LbStack {
  prom: { url: string };
  lbUrl: string;
  pool: ServerPool;
  ownership: OwnershipChecker;
  close(): Promise<void>;
}

/** Starts Prometheus (backfilled from an hour ago to half an hour ahead) and the LB in this process. */
export async function startLbStack(strategy: Strategy = "round-robin"): Promise<LbStack> {
  const dir = await Deno.makeTempDir({ prefix: "ceems-lb-" });
  const dbPath = createUnitsDb(dir);
  const now = Date.now();
  const prom = await startPrometheus({ openMetrics: toOpenMetrics(unitSeries(), now - 3600e3, now + 1800e3, 30e3) });
  const pool = new ServerPool(strategy, nullLogger);
  pool.add(CLUSTER, { url: prom.url, client: {}, filterLabels: [] });
  const ownership = new CachedOwnership(new DbOwnership(dbPath), 30_000);
  let server: WebServer | undefined;
  try {
    server = await serve({
      addresses: ["127.0.0.1:0"],
      webConfig: emptyWebConfig,
      logger: nullLogger,
      handler: tsdbHandler({ pool, ownership, logger: nullLogger }),
    });
  } catch (e) {
    await prom.stop();
    throw e;
  }
  return {
    prom,
    lbUrl: `http://${server.addresses[0]}`,
    pool,
    ownership,
    async close() {
      await server!.close();
      pool.stop();
      ownership.close();
      await prom.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Re-exported for the Pyroscope tests. */
export { pyroscopeHandler };

/** Unit ids and foreign-magnitude values found in a Prometheus API answer (series labels and values). */
export function leakedUnits(body: unknown, owned: string[]): string[] {
  const leaks: string[] = [];
  const visit = (v: unknown, key?: string) => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, key);
    } else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "uuid" && typeof x === "string" && !owned.includes(x)) leaks.push(`uuid=${x}`);
        else if (k === "instance" && typeof x === "string") leaks.push(`instance=${x}`);
        else if ((k === "gpuuuid" || k === "hostname") && typeof x === "string" && !owned.some((o) => x.endsWith(o))) {
          leaks.push(`${k}=${x}`);
        } else visit(x, k);
      }
    } else if (typeof v === "string" && (key === "value" || key === "values" || key === "data")) {
      const n = Number(v);
      if (Number.isFinite(n) && Math.abs(n) >= FOREIGN_MAGNITUDE) leaks.push(`value=${v}`);
      if (ALL_UNITS.includes(v) && !owned.includes(v)) leaks.push(`label value ${v}`);
    }
  };
  visit(body);
  return leaks;
}
