// Shared fixtures of the load balancer tests: a CEEMS-schema API database with two users' units,
// the matching Prometheus series, and an in-process LB in front of a real Prometheus.

import type { Unit, User } from "../../api_server/models.ts";
import { SqliteStorage } from "../../api_server/storage/sqlite.ts";
import { SERVICE_ACCOUNT } from "../../common/ceems_db.ts";
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

/** A completed unit of `user` in `project` of `cluster`, as the API server stores it. */
function unit(cluster: string, uuid: string, project: string, user: string): Unit {
  const start = Date.parse("2026-11-01T00:00:00Z");
  return {
    cluster_id: cluster,
    resource_manager: "slurm",
    uuid,
    name: "job",
    project,
    groupname: "grp",
    username: user,
    created_at: "2026-11-01T00:00:00+0000",
    started_at: "2026-11-01T00:00:00+0000",
    ended_at: "2026-11-01T01:00:00+0000",
    created_at_ts: start,
    started_at_ts: start,
    ended_at_ts: start + 3600e3,
    elapsed: "01:00:00",
    state: "COMPLETED",
    allocation: {},
    tags: {},
    total_time_seconds: { walltime: 3600 },
  };
}

/**
 * Creates `<dir>/ceems.db` the way the API server does (its migrations, one update window per cluster):
 * units, users with their projects, and admins (`ceems-int-svc` included, as the API server writes it).
 */
export async function createUnitsDb(dir: string): Promise<string> {
  const storage = new SqliteStorage(dir);
  const member = (cluster: string, name: string, project: string): User => ({
    uid: "",
    cluster_id: cluster,
    resource_manager: "slurm",
    name,
    projects: [project],
    tags: [],
  });
  const window = (cluster: string, units: Unit[], users: User[]) => ({
    clusterId: cluster,
    windowStartMs: Date.parse("2026-11-01T00:00:00Z"),
    windowEndMs: Date.parse("2026-11-01T02:00:00Z"),
    units,
    users,
    projects: [],
    adminUsers: [{ name: ADMIN, source: "ceems" }, { name: SERVICE_ACCOUNT, source: "ceems" }],
    retentionMs: 0,
  });
  try {
    await storage.applyUpdate(window(CLUSTER, [
      unit(CLUSTER, "1001", "p-alice", "alice"),
      unit(CLUSTER, "1002", "p-alice", "alice"),
      unit(CLUSTER, "2001", "p-bob", "bob"),
      unit(CLUSTER, "2002", "p-bob", "bob"),
    ], [member(CLUSTER, "alice", "p-alice"), member(CLUSTER, "bob", "p-bob"), member(CLUSTER, "carol", "p-alice")]));
    await storage.applyUpdate(
      window("slurm-1", [unit("slurm-1", OTHER_CLUSTER_UNIT, "p-alice", "alice")], [
        member("slurm-1", "alice", "p-alice"),
      ]),
    );
    return storage.path;
  } finally {
    storage.close();
  }
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
  const ownershipDb = await ownershipOnRunningApi(dir);
  const now = Date.now();
  const prom = await startPrometheus({ openMetrics: toOpenMetrics(unitSeries(), now - 3600e3, now + 1800e3, 30e3) });
  const pool = new ServerPool(strategy, nullLogger);
  pool.add(CLUSTER, { url: prom.url, client: {}, filterLabels: [] });
  const ownership = new CachedOwnership(ownershipDb, 30_000);
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

/** The gid of `nogroup`, the primary group of `nobody` that the LB drops to in these tests. */
export const NOGROUP = 65534;

/**
 * The database as a running API server leaves it for the LB: `<dir>/ceems.db` written by the API server's
 * storage and held open (so its -wal and -shm files exist), readable by the group `nobody` is in
 * (0640 root:nogroup, as the packaging gives the LB the API server's group), in a directory others may enter.
 */
export async function runningApiDb(dir: string): Promise<{ path: string; storage: SqliteStorage }> {
  const path = await createUnitsDb(dir);
  Deno.chmodSync(dir, 0o755);
  Deno.chownSync(path, 0, NOGROUP);
  Deno.chmodSync(path, 0o640);
  const storage = new SqliteStorage(dir);
  // SQLite creates -wal and -shm with the database's mode and owner: the LB can read them too.
  storage.ping();
  return { path, storage };
}

/** A DbOwnership on the database of an API server that runs until the checker is closed. */
class OwnershipOnRunningApi extends DbOwnership {
  constructor(path: string, readonly storage: SqliteStorage, timeoutMs?: number) {
    super(path, timeoutMs);
  }

  override close(): void {
    super.close();
    this.storage.close();
  }
}

/**
 * Ownership from the fixture database in `dir` while an API server holds it open, as in production (the
 * LB reads the WAL index read-only, so it needs the -shm file a running API server keeps).
 */
export async function ownershipOnRunningApi(dir: string, timeoutMs?: number): Promise<DbOwnership> {
  const { path, storage } = await runningApiDb(dir);
  return new OwnershipOnRunningApi(path, storage, timeoutMs);
}
