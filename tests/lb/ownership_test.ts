// Tests of unit ownership and admin look-ups: from a database the API server's own storage wrote, through
// the real API handler over HTTP, bounded in time, off the event loop, and the cache in front of both.

import bcrypt from "bcryptjs";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { apiHandler } from "../../api_server/http/api.ts";
import { SqliteStorage } from "../../api_server/storage/sqlite.ts";
import { SERVICE_ACCOUNT } from "../../common/ceems_db.ts";
import { nullLogger } from "../../common/log.ts";
import { serve, type WebServer } from "../../common/web/server.ts";
import { createHttpBackendClient } from "../../lb/http_client.ts";
import {
  CachedOwnership,
  DbOwnership,
  HttpOwnership,
  type OwnershipChecker,
  OwnershipError,
} from "../../lb/ownership.ts";
import { ADMIN, CLUSTER, createUnitsDb, OTHER_CLUSTER_UNIT, ownershipOnRunningApi } from "./fixtures.ts";

async function checkContract(o: OwnershipChecker, serviceIsAdmin = false) {
  assert(await o.owns("alice", CLUSTER, ["1001"]));
  assert(await o.owns("alice", CLUSTER, ["1001", "1002", "1001"]));
  assert(await o.owns("carol", CLUSTER, ["1002"]), "project members see the project's units");
  assert(!(await o.owns("alice", CLUSTER, ["1001", "2001"])));
  assert(!(await o.owns("bob", CLUSTER, ["1001"])));
  assert(!(await o.owns("alice", CLUSTER, [OTHER_CLUSTER_UNIT])), "units are per cluster");
  assert(await o.owns("alice", "slurm-1", [OTHER_CLUSTER_UNIT]));
  assert(!(await o.owns("carol", "slurm-1", [OTHER_CLUSTER_UNIT])), "project membership is per cluster");
  assert(!(await o.owns("alice", CLUSTER, [])));
  assert(!(await o.owns("mallory", CLUSTER, ["1001"])));
  assert(await o.isAdmin(ADMIN));
  assertEquals(await o.isAdmin(SERVICE_ACCOUNT), serviceIsAdmin, "the service account is no admin by name alone");
  assert(!(await o.isAdmin("alice")));
}

Deno.test("DbOwnership answers from a database the API server's storage wrote", async () => {
  const dir = await Deno.makeTempDir();
  const o = await ownershipOnRunningApi(dir);
  try {
    await checkContract(o);
    assertEquals(await o.clusterIds(), ["slurm-0", "slurm-1"]);
  } finally {
    o.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The real API handler on `storage`; basic-auth user `lb` is a service client, `grafana` is not. */
async function startApi(storage: SqliteStorage): Promise<WebServer> {
  const handler = apiHandler({
    storage,
    logger: nullLogger,
    routePrefix: "/",
    userHeaders: ["X-Grafana-User"],
    corsOrigin: "",
    maxRequestsPerMinute: 0,
    maxQueryPeriodMs: 0,
    adminUsers: [],
    serviceClients: ["lb"],
  });
  return await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: {
      basicAuthUsers: new Map([["lb", bcrypt.hashSync("lbpw", 4)], ["grafana", bcrypt.hashSync("gpw", 4)]]),
      headers: {},
    },
    logger: nullLogger,
    handler: (req, info) => handler(req, info) ?? new Response("not found", { status: 404 }),
  });
}

Deno.test("HttpOwnership against the real API handler; the service account needs the service client's credentials", async () => {
  const dir = await Deno.makeTempDir();
  await createUnitsDb(dir);
  const storage = new SqliteStorage(dir);
  const api = await startApi(storage);
  const base = `http://${api.addresses[0]}`;
  const asLb = new HttpOwnership(base, createHttpBackendClient({ basic_auth: { username: "lb", password: "lbpw" } }));
  const asGrafana = new HttpOwnership(
    base,
    createHttpBackendClient({ basic_auth: { username: "grafana", password: "gpw" } }),
  );
  try {
    await checkContract(asLb, true); // authenticated as a configured service client
    await checkContract(asGrafana);
    assertEquals(await asLb.clusterIds(), ["slurm-0", "slurm-1"]);
    await assertRejects(() => asGrafana.clusterIds(), /HTTP 403/);
    // A Grafana login named like the service account gets nothing from the API server either.
    const r = await fetch(`${base}/api/v1/users/admin?role=admin`, {
      headers: { "X-Grafana-User": SERVICE_ACCOUNT, Authorization: `Basic ${btoa("grafana:gpw")}` },
    });
    assertEquals(r.status, 403);
    assert((await r.text()).includes("reserved"));
  } finally {
    asLb.close();
    asGrafana.close();
    await api.close();
    storage.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HttpOwnership fails closed within its timeout when the API server hangs", async () => {
  // A server that accepts connections and never answers.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) conns.push(c);
  })().catch(() => {});
  const o = new HttpOwnership(`http://127.0.0.1:${listener.addr.port}`, createHttpBackendClient({}), 300);
  try {
    const t0 = performance.now();
    const err = await o.owns("alice", CLUSTER, ["1001"]).then(() => undefined, (e) => e);
    const took = performance.now() - t0;
    assert(err instanceof OwnershipError && err.kind === "timeout", String(err));
    assert(took >= 250 && took < 2_000, `took ${took} ms`);
  } finally {
    o.close();
    listener.close();
    for (const c of conns) c.close();
  }
});

Deno.test("CachedOwnership spares repeated calls and caches no failure", async () => {
  const calls: string[] = [];
  let fail = false;
  const inner: OwnershipChecker = {
    owns: (user, _c, uuids) => {
      calls.push(`owns ${user} ${uuids}`);
      if (fail) return Promise.reject(new OwnershipError("timeout", "x"));
      return Promise.resolve(user === "alice" && uuids.every((u) => u.startsWith("100")));
    },
    isAdmin: (user) => {
      calls.push(`admin ${user}`);
      return Promise.resolve(user === ADMIN);
    },
    clusterIds: () => Promise.resolve([]),
    close: () => {},
  };
  let now = 0;
  const cached = new CachedOwnership(inner, 1000, () => now);
  assert(await cached.owns("alice", CLUSTER, ["1001", "1002"]));
  assert(await cached.owns("alice", CLUSTER, ["1002"]));
  assert(!(await cached.owns("alice", CLUSTER, ["2001"])));
  assert(!(await cached.owns("alice", CLUSTER, ["2001"])));
  assert(!(await cached.owns("bob", CLUSTER, ["1001"])), "a grant to alice is not a grant to bob");
  assert(await cached.isAdmin(ADMIN));
  assert(await cached.isAdmin(ADMIN));
  assertEquals(calls.length, 4);
  now = 1500;
  fail = true;
  await assertRejects(() => cached.owns("alice", CLUSTER, ["1001"]));
  fail = false;
  assert(await cached.owns("alice", CLUSTER, ["1001"]), "the failure was not cached");
  assertEquals(calls.length, 6);
});

Deno.test("DbOwnership sees units the API server adds while the LB runs, and a database restored under it", async () => {
  const dir = await Deno.makeTempDir();
  const path = await createUnitsDb(dir);
  const api = new DatabaseSync(path); // the API server runs: its WAL index exists
  api.prepare("SELECT COUNT(*) FROM units").get();
  const o = new DbOwnership(path);
  try {
    assert(!(await o.owns("alice", CLUSTER, ["5001"])));
    api.prepare(
      `INSERT INTO units (cluster_id, resource_manager, uuid, name, project, groupname, username, started_at,
         ended_at) VALUES (?, 'slurm', '5001', 'job', 'p-alice', 'grp', 'alice', 'x', 'y')`,
    ).run(CLUSTER);
    assert(await o.owns("alice", CLUSTER, ["5001"]));
    assert(await o.owns("carol", CLUSTER, ["5001"]));
    // The API server stops (folding its WAL into the file, as SqliteStorage.close does), then a backup is restored.
    api.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    api.close();
    // A restore: another database file renamed over the path. The LB must read the new file, not the deleted one.
    const other = await Deno.makeTempDir();
    const restored = await createUnitsDb(other);
    const db = new DatabaseSync(restored);
    db.prepare("DELETE FROM units WHERE uuid = '1001'").run();
    db.close();
    await Deno.rename(restored, path);
    assert(!(await o.owns("alice", CLUSTER, ["5001"])));
    assert(!(await o.owns("alice", CLUSTER, ["1001"])));
    assert(await o.owns("alice", CLUSTER, ["1002"]));
    await Deno.remove(other, { recursive: true });
    // The file gone: every question fails (503 for the client), none is answered from a stale connection.
    await Deno.remove(path);
    await assertRejects(() => o.owns("alice", CLUSTER, ["1002"]), /No such file|not found/i);
  } finally {
    o.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DbOwnership on a locked database: questions fail within the timeout, the event loop keeps running", async () => {
  const dir = await Deno.makeTempDir();
  const path = await createUnitsDb(dir);
  // Another connection takes an exclusive lock before the LB opens the database (an operator's sqlite3
  // session, a restore tool): SQLite makes the LB's reads wait (busy timeout) and then fail.
  const locker = new DatabaseSync(path);
  locker.exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE units SET name = 'x'");
  const o = new DbOwnership(path, 400);
  try {
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const t = performance.now();
      maxGap = Math.max(maxGap, t - last);
      last = t;
      ticks++;
    }, 5);
    const t0 = performance.now();
    const results = await Promise.allSettled([
      o.owns("alice", CLUSTER, ["1002"]),
      o.isAdmin("bob"),
      o.owns("bob", CLUSTER, ["2001"]),
    ]);
    const took = performance.now() - t0;
    clearInterval(timer);
    assert(
      results.every((r) => r.status === "rejected" && r.reason instanceof OwnershipError),
      JSON.stringify(results),
    );
    assert(took < 2_000, `questions took ${took} ms`);
    assert(ticks > 20 && maxGap < 100, `event loop stalled: ${ticks} ticks, longest gap ${maxGap.toFixed(1)} ms`);
    console.log(`locked database: failed in ${took.toFixed(0)} ms, longest event-loop gap ${maxGap.toFixed(1)} ms`);
    locker.exec("COMMIT; PRAGMA locking_mode = NORMAL");
    locker.close();
    const api = new SqliteStorage(dir); // the API server (re)starts and reads: its WAL index is there again
    api.ping();
    try {
      // The worker stuck on the lock was replaced; the new one may still be starting (slow on a loaded machine).
      let answered: boolean | undefined;
      for (let i = 0; i < 10 && answered === undefined; i++) {
        answered = await o.owns("alice", CLUSTER, ["1002"]).catch(() => undefined);
      }
      assertEquals(answered, true, "answers again once the lock is gone");
    } finally {
      api.close();
    }
  } finally {
    o.close();
    if (locker.isOpen) locker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
