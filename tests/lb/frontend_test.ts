// Tests of the TSDB frontend's routing rules: the cluster header, the `ceems_id` matcher overriding
// it (ownership is then checked in that cluster), /health, and admin pass-through of other paths.

import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { serve } from "../../common/web/server.ts";
import { emptyWebConfig } from "../../common/web/web_config.ts";
import { tsdbHandler } from "../../lb/frontend.ts";
import { CachedOwnership, DbOwnership } from "../../lb/ownership.ts";
import { ServerPool } from "../../lb/pool.ts";
import { analyseQuery } from "../../lb/promql_access.ts";
import { startPrometheus, toOpenMetrics } from "../helpers/prometheus_server.ts";
import { ADMIN, createUnitsDb, ownershipOnRunningApi, unitSeries } from "./fixtures.ts";

Deno.test("analyseQuery reports ceems_id equality matchers", () => {
  assertEquals(analyseQuery('a{uuid="1", ceems_id="slurm-1"}'), {
    ok: true,
    units: ["1"],
    clusterIds: ["slurm-1"],
    printed: ['a{uuid="1", ceems_id="slurm-1"}'],
  });
  assertEquals(analyseQuery('a{uuid="1", ceems_id=~".+"}'), {
    ok: true,
    units: ["1"],
    printed: ['a{uuid="1", ceems_id=~".+"}'],
  });
});

Deno.test("frontend: cluster header, ceems_id override, /health and admin pass-through", async () => {
  const dir = await Deno.makeTempDir();
  const now = Date.now();
  const prom = await startPrometheus({ openMetrics: toOpenMetrics(unitSeries(), now - 600e3, now + 1200e3, 30e3) });
  const ownership = new CachedOwnership(await ownershipOnRunningApi(dir));
  const pool = new ServerPool("round-robin", nullLogger);
  pool.add("slurm-0", { url: prom.url, client: {}, filterLabels: [] });
  pool.add("slurm-1", { url: prom.url, client: {}, filterLabels: [] });
  const server = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: emptyWebConfig,
    logger: nullLogger,
    handler: tsdbHandler({ pool, ownership, logger: nullLogger }),
  });
  const get = async (path: string, headers: Record<string, string>) => {
    const r = await fetch(`http://${server.addresses[0]}${path}`, { headers });
    return { status: r.status, text: await r.text() };
  };
  const q = (query: string) => `/api/v1/query?query=${encodeURIComponent(query)}`;
  const alice = { "X-Grafana-User": "alice", "X-Ceems-Cluster-Id": "slurm-0" };
  try {
    let r = await get("/health", { "X-Ceems-Cluster-Id": "slurm-1" });
    assertEquals([r.status, r.text], [200, "CEEMS LB Server is healthy"]);
    r = await get("/health", {});
    assertEquals(r.status, 400);
    assertEquals(JSON.parse(r.text), {
      status: "error",
      data: null,
      errorType: "bad_request",
      error: "invalid cluster ID. Set cluster ID using X-Ceems-Cluster-Id header in Prometheus datasource.",
    });
    // 3001 is alice's in slurm-1 only: refused in slurm-0, allowed once ceems_id names slurm-1.
    r = await get(q('ceems_cpu_usage{uuid="3001"}'), alice);
    assertEquals(r.status, 403);
    r = await get(q('ceems_cpu_usage{uuid="3001", ceems_id="slurm-1"}'), alice);
    assertEquals(r.status, 200, r.text);
    r = await get(q('ceems_cpu_usage{uuid="1001", ceems_id="slurm-1"}'), alice);
    assertEquals(r.status, 403);
    r = await get(
      q('ceems_cpu_usage{uuid="3001", ceems_id="slurm-1"} + ceems_cpu_usage{uuid="1001", ceems_id="slurm-0"}'),
      alice,
    );
    assertEquals(r.status, 403);
    assertMatch(r.text, /several clusters/);
    r = await get(q('ceems_cpu_usage{uuid="1001", ceems_id="nowhere"}'), alice);
    assertEquals(r.status, 400);
    r = await get("/api/v1/status/config", alice);
    assertEquals(r.status, 403);
    assertEquals(JSON.parse(r.text).error, "user do not have permissions to this resource");
    r = await get("/api/v1/status/config", { ...alice, "X-Grafana-User": ADMIN });
    assertEquals(r.status, 200);
    assertMatch(r.text, /"yaml"/);
    r = await get(q('ceems_cpu_usage{uuid="1001"}'), { "X-Ceems-Cluster-Id": "slurm-0" });
    assertEquals(r.status, 401);
    assertMatch(JSON.parse(r.text).error, /no user header found/);
  } finally {
    await server.close();
    pool.stop();
    ownership.close();
    await prom.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "frontend on a locked database: /health and cached users are served at once, the others get 503",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = await createUnitsDb(dir);
    // A rollback-journal database (as a restored or hand-made copy may be): a writer's exclusive lock makes
    // readers wait even when their connection is already open (in WAL mode it would not).
    const setup = new DatabaseSync(path);
    setup.exec("PRAGMA journal_mode = DELETE");
    setup.close();
    const pool = new ServerPool("round-robin", nullLogger);
    const backend = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => Response.json({ status: "success", data: { resultType: "vector", result: [] } }),
    );
    pool.add("slurm-0", { url: `http://127.0.0.1:${backend.addr.port}`, client: {}, filterLabels: [] });
    const ownership = new CachedOwnership(new DbOwnership(path, 1_000));
    const server = await serve({
      addresses: ["127.0.0.1:0"],
      webConfig: emptyWebConfig,
      logger: nullLogger,
      handler: tsdbHandler({ pool, ownership, logger: nullLogger }),
    });
    const timed = async (path: string, user?: string) => {
      const t0 = performance.now();
      const headers: Record<string, string> = { "X-Ceems-Cluster-Id": "slurm-0" };
      if (user) headers["X-Grafana-User"] = user;
      const r = await fetch(`http://${server.addresses[0]}${path}`, { headers });
      await r.body?.cancel();
      return { status: r.status, ms: performance.now() - t0 };
    };
    const q = `/api/v1/query?query=${encodeURIComponent('ceems_cpu_usage{uuid="1001"}')}`;
    let locker: DatabaseSync | undefined;
    try {
      assertEquals((await timed(q, "alice")).status, 200); // alice's grant is cached now
      // Another process takes an exclusive lock (and keeps it): the LB's next reads wait, on its worker thread.
      const db = new DatabaseSync(path);
      locker = db;
      db.exec("BEGIN EXCLUSIVE; UPDATE units SET name = 'x'");
      const bob = timed(q.replace("1001", "2001"), "bob");
      await new Promise((r) => setTimeout(r, 100));
      const during = [await timed("/health"), await timed(q, "alice"), await timed("/health")];
      for (const d of during) {
        assertEquals(d.status, 200);
        assert(d.ms < 250, `served in ${d.ms.toFixed(0)} ms while the database was locked`);
      }
      const b = await bob;
      assertEquals(b.status, 503, "an ownership question that cannot be answered fails closed");
      assert(b.ms < 3_000, `answered in ${b.ms.toFixed(0)} ms`);
    } finally {
      locker?.close();
      await server.close();
      pool.stop();
      ownership.close();
      await backend.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
