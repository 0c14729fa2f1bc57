// Tests of `filter_labels`: labels configured on a TSDB backend disappear from query, series and
// label answers of a real Prometheus, for users and admins alike; other backends are untouched.

import { assert, assertEquals } from "../helpers/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { serve } from "../../common/web/server.ts";
import { emptyWebConfig } from "../../common/web/web_config.ts";
import { tsdbHandler } from "../../lb/frontend.ts";
import { CachedOwnership } from "../../lb/ownership.ts";
import { ServerPool } from "../../lb/pool.ts";
import { startPrometheus, toOpenMetrics } from "../helpers/prometheus_server.ts";
import { ADMIN, ownershipOnRunningApi, unitSeries } from "./fixtures.ts";

Deno.test("filter_labels removes labels from query, series, labels and label values answers", async () => {
  const dir = await Deno.makeTempDir();
  const now = Date.now();
  const prom = await startPrometheus({ openMetrics: toOpenMetrics(unitSeries(), now - 600e3, now + 1200e3, 30e3) });
  const ownership = new CachedOwnership(await ownershipOnRunningApi(dir));
  const pool = new ServerPool("round-robin", nullLogger);
  pool.add("slurm-0", { url: prom.url, client: {}, filterLabels: ["hostname", "gpuuuid"] });
  // Same Prometheus, no filtering, under another id (the DB has units for slurm-1 too).
  pool.add("slurm-1", { url: prom.url, client: {}, filterLabels: [] });
  const server = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: emptyWebConfig,
    logger: nullLogger,
    handler: tsdbHandler({ pool, ownership, logger: nullLogger }),
  });
  const get = async (path: string, user = "alice", cluster = "slurm-0") => {
    const r = await fetch(`http://${server.addresses[0]}${path}`, {
      headers: { "X-Grafana-User": user, "X-Ceems-Cluster-Id": cluster },
    });
    assertEquals(r.status, 200, path);
    return (await r.json()).data;
  };
  const own = encodeURIComponent('ceems_cpu_usage{uuid="1001"}');
  try {
    const q = await get(`/api/v1/query?query=${own}`);
    assertEquals(q.result.length, 1);
    assertEquals(Object.keys(q.result[0].metric).sort(), ["__name__", "manager", "uuid"]);
    const now = Math.floor(Date.now() / 1000);
    const qr = await get(`/api/v1/query_range?query=${own}&start=${now - 300}&end=${now}&step=60`);
    assertEquals(Object.keys(qr.result[0].metric).sort(), ["__name__", "manager", "uuid"]);
    assert(qr.result[0].values.length > 0);
    const series = await get(`/api/v1/series?match[]=${own}`);
    assertEquals(Object.keys(series[0]).sort(), ["__name__", "manager", "uuid"]);
    const labels = await get(`/api/v1/labels?match[]=${own}`);
    assertEquals(labels.sort(), ["__name__", "manager", "uuid"]);
    assertEquals(await get(`/api/v1/label/hostname/values?match[]=${own}`), []);
    assertEquals(await get(`/api/v1/label/uuid/values?match[]=${own}`), ["1001"]);
    const admin = await get(`/api/v1/query?query=${encodeURIComponent("node_load1")}`, ADMIN);
    assertEquals(Object.keys(admin.result[0].metric).sort(), ["__name__", "instance"]);
    const unfiltered = await get(
      `/api/v1/query?query=${encodeURIComponent('ceems_cpu_usage{uuid="3001"}')}`,
      "alice",
      "slurm-1",
    );
    assertEquals(Object.keys(unfiltered.result[0].metric).sort(), [
      "__name__",
      "gpuuuid",
      "hostname",
      "manager",
      "uuid",
    ]);
  } finally {
    await server.close();
    pool.stop();
    ownership.close();
    await prom.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
