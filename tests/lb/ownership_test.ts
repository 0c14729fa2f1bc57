// Tests of unit ownership and admin look-ups: straight from a CEEMS-schema SQLite DB, through an
// HTTP server speaking the API's `/units/verify` contract, and the cache in front of both.

import { assert, assertEquals } from "../helpers/assert.ts";
import { createHttpBackendClient } from "../../lb/http_client.ts";
import { CachedOwnership, DbOwnership, HttpOwnership, type OwnershipChecker } from "../../lb/ownership.ts";
import { ADMIN, CLUSTER, createUnitsDb, OTHER_CLUSTER_UNIT } from "./fixtures.ts";

async function checkContract(o: OwnershipChecker) {
  assert(await o.owns("alice", CLUSTER, ["1001"]));
  assert(await o.owns("alice", CLUSTER, ["1001", "1002", "1001"]));
  assert(await o.owns("carol", CLUSTER, ["1002"]), "project members see the project's units");
  assert(!(await o.owns("alice", CLUSTER, ["1001", "2001"])));
  assert(!(await o.owns("bob", CLUSTER, ["1001"])));
  assert(!(await o.owns("alice", CLUSTER, [OTHER_CLUSTER_UNIT])), "units are per cluster");
  assert(await o.owns("alice", "slurm-1", [OTHER_CLUSTER_UNIT]));
  assert(!(await o.owns("alice", CLUSTER, [])));
  assert(!(await o.owns("mallory", CLUSTER, ["1001"])));
  assert(await o.isAdmin(ADMIN));
  assert(await o.isAdmin("ceems-int-svc"));
  assert(!(await o.isAdmin("alice")));
  assertEquals((await o.clusterIds()).sort(), ["slurm-0", "slurm-1"]);
}

Deno.test("DbOwnership answers from the API server's units, users and admin_users tables", async () => {
  const dir = await Deno.makeTempDir();
  const o = new DbOwnership(createUnitsDb(dir));
  try {
    await checkContract(o);
  } finally {
    o.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** An HTTP server answering `/api/v1/units/verify` and `/api/v1/users/admin` as CEEMS's API does, from the DB. */
function apiServer(db: DbOwnership, calls: string[]) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    const user = req.headers.get("x-grafana-user") ?? "";
    calls.push(`${u.pathname}?${u.searchParams}`);
    const json = (status: number, body: unknown) => Response.json(body, { status });
    if (u.pathname === "/api/v1/units/verify") {
      const uuids = u.searchParams.getAll("uuid");
      if (!uuids.length) return json(400, { status: "error", errorType: "bad_data", error: "missing uuids" });
      const ok = await db.owns(user, u.searchParams.get("cluster_id") ?? "", uuids);
      return ok ? json(200, { status: "success", data: null }) : json(403, {
        status: "error",
        data: null,
        errorType: "forbidden",
        error: "user do not have permissions on uuids",
      });
    }
    if (u.pathname === "/api/v1/clusters/admin" && user === "ceems-int-svc") {
      return json(200, {
        status: "success",
        data: [{ id: "slurm-0", manager: "slurm" }, { id: "slurm-1", manager: "slurm" }],
      });
    }
    if (u.pathname === "/api/v1/users/admin" && u.searchParams.get("role") === "admin") {
      if (user !== "ceems-int-svc") return json(403, { status: "error", errorType: "forbidden" });
      return json(200, { status: "success", data: [{ cluster_id: "all", name: ADMIN, tags: ["ceems"] }] });
    }
    return json(404, { status: "error" });
  });
}

Deno.test("HttpOwnership follows the /units/verify contract; CachedOwnership spares repeated calls", async () => {
  const dir = await Deno.makeTempDir();
  const db = new DbOwnership(createUnitsDb(dir));
  const calls: string[] = [];
  const server = apiServer(db, calls);
  const http = new HttpOwnership(`http://127.0.0.1:${server.addr.port}`, createHttpBackendClient({}));
  try {
    await checkContract(http);
    assert(calls.includes("/api/v1/units/verify?uuid=1001&cluster_id=slurm-0"), calls.join("\n"));

    let now = 0;
    const cached = new CachedOwnership(http, 1000, () => now);
    calls.length = 0;
    assert(await cached.owns("alice", CLUSTER, ["1001", "1002"]));
    assert(await cached.owns("alice", CLUSTER, ["1002"]));
    assert(await cached.owns("alice", CLUSTER, ["1001"]));
    assert(!(await cached.owns("alice", CLUSTER, ["2001"])));
    assert(!(await cached.owns("alice", CLUSTER, ["2001"])));
    assert(!(await cached.owns("bob", CLUSTER, ["1001"])), "a grant to alice is not a grant to bob");
    assert(await cached.isAdmin(ADMIN));
    assert(await cached.isAdmin(ADMIN));
    assertEquals(calls.length, 4);
    now = 1500; // entries expired
    assert(await cached.owns("alice", CLUSTER, ["1001"]));
    assertEquals(calls.length, 5);
  } finally {
    http.close();
    db.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DbOwnership sees units the API server adds to its WAL-mode DB while the LB runs", async () => {
  const dir = await Deno.makeTempDir();
  const path = createUnitsDb(dir);
  const { DatabaseSync } = await import("node:sqlite");
  const api = new DatabaseSync(path);
  api.exec("PRAGMA journal_mode=WAL");
  const o = new DbOwnership(path);
  try {
    assert(!(await o.owns("alice", CLUSTER, ["5001"])));
    api.prepare("INSERT INTO units (cluster_id, uuid, project, username) VALUES (?, '5001', 'p-alice', 'alice')")
      .run(CLUSTER);
    assert(await o.owns("alice", CLUSTER, ["5001"]));
    assert(await o.owns("carol", CLUSTER, ["5001"]));
  } finally {
    o.close();
    api.close();
    await Deno.remove(dir, { recursive: true });
  }
});
