// TSDB updater against a real Prometheus backfilled with synthetic series whose aggregates are known:
// averages, energy (kWh) and emissions (g) per unit with CEEMS's default queries, batching, cutoff, outages.

import { bareUnit } from "../../helpers/tsdb_units.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { type Sample, startPrometheus } from "../../helpers/prometheus.ts";
import { nullLogger } from "../../../common/log.ts";
import type { UpdaterConfig } from "../../../api_server/config.ts";
import { batchSize, renderQuery, TsdbUpdater } from "../../../api_server/updater/tsdb.ts";

const QUERIES = {
  avg_cpu_usage: {
    global:
      'avg_over_time(avg by (uuid) (uuid:ceems_cpu_usage:ratio_irate{uuid=~"{{.UUIDs}}"} >= 0 < inf)[{{.Range}}:])',
  },
  avg_gpu_usage: {
    global: 'avg_over_time(avg by (uuid) (uuid:ceems_gpu_usage:ratio{uuid=~"{{.UUIDs}}"} >= 0 < inf)[{{.Range}}:])',
  },
  total_cpu_energy_usage_kwh: {
    total:
      'sum_over_time(sum by (uuid) (uuid:ceems_host_power_watts:pue{uuid=~"{{.UUIDs}}"} >= 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 3.6e9',
  },
  total_cpu_emissions_gms: {
    rte_total:
      'sum_over_time(sum by (uuid) (uuid:ceems_host_emissions_g_s:pue{uuid=~"{{.UUIDs}}",provider="rte"} >= 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 1e3',
  },
};

function updaterConfig(url: string, cutoffMs = 0): UpdaterConfig {
  return {
    id: "tsdb-0",
    updater: "tsdb",
    url,
    web: {},
    extraConfig: {
      queryMaxSeries: 50,
      queryMinSamples: 0.5,
      queryBatchSize: 0,
      cutoffMs,
      deleteIgnored: false,
      labelsToDrop: [],
      queries: QUERIES,
    },
  };
}

const unit = bareUnit;

const N = 25; // more than the minimum batch of 10: three batches
const cpu = (i: number) => 10 + i; // percent
const power = (i: number) => 50 + 10 * i; // watts
const emis = (i: number) => 0.001 * (i + 1); // g/s

Deno.test("tsdb updater computes known aggregates from a real Prometheus", async () => {
  const step = 15_000;
  const end = Math.floor((Date.now() - 20 * 60_000) / 60_000) * 60_000; // aligned to the minute
  const start = end - 3_600_000;
  const samples: Sample[] = [];
  for (let t = start - 10 * 60_000; t <= end + 5 * 60_000; t += step) {
    for (let i = 0; i < N; i++) {
      const labels = { uuid: `job${i}` };
      samples.push({ name: "uuid:ceems_cpu_usage:ratio_irate", labels, value: cpu(i), timeMs: t });
      samples.push({ name: "uuid:ceems_host_power_watts:pue", labels, value: power(i), timeMs: t });
      samples.push({
        name: "uuid:ceems_host_emissions_g_s:pue",
        labels: { ...labels, provider: "rte" },
        value: emis(i),
        timeMs: t,
      });
      if (i < 3) samples.push({ name: "uuid:ceems_gpu_usage:ratio", labels, value: 90, timeMs: t });
    }
  }
  const prom = await startPrometheus({ samples, scrapeInterval: "15s" });
  try {
    const up = new TsdbUpdater(updaterConfig(prom.url, 120_000), nullLogger);
    const s = await up.settings();
    assertEquals(s.scrapeIntervalMs, 15_000);
    // The batch formula caps each query: force a small max-samples to check it splits.
    assertEquals(batchSize(N, 3_600_000, { ...s, maxSamples: 50 * 240 * 10 }, 50, 0.5), 10);

    const units = Array.from({ length: N }, (_, i) => unit(`job${i}`, start, end));
    const short = unit("short", end - 60_000, end - 30_000); // 30 s < 2 min cutoff
    await up.update([...units, short], start, end);

    assertEquals(short.ignore, true);
    assertEquals(short.avg_cpu_usage, undefined);
    for (let i = 0; i < N; i++) {
      const u = units[i];
      assert(!u.ignore, `job${i} must not be ignored`);
      assertEquals(u.avg_cpu_usage?.global, cpu(i), `avg cpu of job${i}`);
      // 240 points of 15 s in the hour: W * 240 * 15000 ms / 3.6e9 = W / 1000 kWh
      const kwh = u.total_cpu_energy_usage_kwh!.total;
      assert(Math.abs(kwh - power(i) / 1000) < 1e-9, `energy of job${i}: ${kwh} != ${power(i) / 1000}`);
      const g = u.total_cpu_emissions_gms!.rte_total;
      assert(Math.abs(g - emis(i) * 3600) < 1e-6, `emissions of job${i}: ${g} != ${emis(i) * 3600}`);
      if (i < 3) assertEquals(u.avg_gpu_usage?.global, 90);
      else assertEquals(u.avg_gpu_usage, undefined);
    }

    // query_batch_size fixes the units per query: 25 units by 7 = 4 batches of the 4 queries, counted by
    // Prometheus itself; the aggregates are the same.
    const queries = async () => {
      const text = await (await fetch(`${prom.url}/metrics`)).text();
      const line = text.split("\n").find((l) =>
        l.startsWith("prometheus_http_requests_total{") && l.includes('handler="/api/v1/query"') &&
        l.includes('code="200"')
      );
      return Number(line?.split(" ").pop() ?? 0);
    };
    const before = await queries();
    const batched = new TsdbUpdater({
      ...updaterConfig(prom.url),
      extraConfig: { ...updaterConfig(prom.url).extraConfig, queryBatchSize: 7 },
    }, nullLogger);
    const again = Array.from({ length: N }, (_, i) => unit(`job${i}`, start, end));
    await batched.update(again, start, end);
    assertEquals(await queries() - before, 16);
    assertEquals(again.map((u) => u.avg_cpu_usage?.global), units.map((u) => u.avg_cpu_usage?.global));
  } finally {
    await prom.stop();
  }
});

Deno.test("tsdb updater: Prometheus down or hanging leaves units without aggregates", async () => {
  // A port with nothing listening.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (l.addr as Deno.NetAddr).port;
  l.close();
  const u1 = unit("a", 0, 1);
  await new TsdbUpdater(updaterConfig(`http://127.0.0.1:${closedPort}`), nullLogger).update([u1], 0, 3_600_000);
  assertEquals(u1.avg_cpu_usage, undefined);

  // A server that accepts and never answers: bounded by the fetch timeout.
  const hang = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const acceptLoop = (async () => {
    try {
      for await (const c of hang) conns.push(c);
    } catch { /* closed */ }
  })();
  try {
    const u2 = unit("b", 0, 1);
    const t0 = Date.now();
    const url = `http://127.0.0.1:${(hang.addr as Deno.NetAddr).port}`;
    await new TsdbUpdater(updaterConfig(url), nullLogger, 500).update([u2], 0, 3_600_000);
    assert(Date.now() - t0 < 10_000, "hanging Prometheus must time out");
    assertEquals(u2.avg_cpu_usage, undefined);
  } finally {
    for (const c of conns) c.close();
    hang.close();
    await acceptLoop;
  }
});

Deno.test("query templates render CEEMS variables and reject unknown ones", () => {
  assertEquals(
    renderQuery('x{uuid=~"{{.UUIDs}}"}[{{ .Range }}]', { UUIDs: "1|2", Range: "60s" }),
    'x{uuid=~"1|2"}[60s]',
  );
  let threw = false;
  try {
    renderQuery("{{.Nope}}", {});
  } catch {
    threw = true;
  }
  assert(threw);
});

Deno.test("tsdb updater authenticates to a Prometheus behind basic auth", async () => {
  const prom = await startPrometheus({ basicAuth: { user: "ceems", password: "s3cret" } });
  try {
    const withAuth: UpdaterConfig = {
      ...updaterConfig(prom.url),
      web: { url: prom.url, basic_auth: { username: "ceems", password: "s3cret" } },
    };
    assertEquals((await new TsdbUpdater(withAuth, nullLogger).settings()).scrapeIntervalMs, 15_000);
    let msg = "";
    try {
      await new TsdbUpdater(updaterConfig(prom.url), nullLogger).settings();
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.includes("401"), `unauthenticated request must fail with 401: ${msg}`);
  } finally {
    await prom.stop();
  }
});

Deno.test("tsdb updater deletes the series of ignored units when delete_ignored is set", async () => {
  const end = Math.floor((Date.now() - 20 * 60_000) / 60_000) * 60_000;
  const start = end - 3_600_000;
  const samples: Sample[] = [];
  for (let t = start; t <= end; t += 15_000) {
    for (const uuid of ["short", "long"]) {
      samples.push({ name: "uuid:ceems_cpu_usage:ratio_irate", labels: { uuid }, value: 1, timeMs: t });
    }
  }
  const prom = await startPrometheus({ samples });
  try {
    const cfg = updaterConfig(prom.url, 600_000);
    cfg.extraConfig.deleteIgnored = true;
    const up = new TsdbUpdater(cfg, nullLogger);
    const short = unit("short", end - 120_000, end - 60_000);
    const long = unit("long", start, end);
    await up.update([short, long], start, end);
    assertEquals(short.ignore, true);
    assertEquals(long.avg_cpu_usage?.global, 1);
    const left = await up.query("count by (uuid) (count_over_time(uuid:ceems_cpu_usage:ratio_irate[2h]))", end);
    assertEquals([...left.keys()], ["long"], "the short unit's series are gone");
  } finally {
    await prom.stop();
  }
});

Deno.test("tsdb updater: a batch's queries run concurrently; hung queries end at the update's deadline", async () => {
  const arrived: number[] = [];
  const prom = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/api/v1/status/config") {
      return Response.json({ status: "success", data: { yaml: "global:\n  scrape_interval: 15s\n" } });
    }
    if (path === "/api/v1/status/flags") return Response.json({ status: "success", data: {} });
    // Every query hangs until its client gives up.
    arrived.push(performance.now());
    await new Promise((r) => req.signal.addEventListener("abort", r));
    return new Response(null, { status: 503 });
  });
  try {
    const url = `http://127.0.0.1:${prom.addr.port}`;
    // Per-request bound 700 ms: four hung queries take 0.7 s together, not 2.8 s one after the other.
    const u = unit("a", 0, 3_600_000);
    let t0 = performance.now();
    await new TsdbUpdater(updaterConfig(url), nullLogger, 700, 10_000).update([u], 0, 3_600_000);
    let took = performance.now() - t0;
    assertEquals(arrived.length, 4);
    assert(arrived[3] - arrived[0] < 300, `queries sent together (${arrived.map((t) => Math.round(t - arrived[0]))})`);
    assert(took < 2_000, `took ${Math.round(took)} ms`);
    assertEquals(u.avg_cpu_usage, undefined);
    // Many batches of hung queries: the whole update stops at its deadline.
    arrived.length = 0;
    const cfg = updaterConfig(url);
    cfg.extraConfig.queryBatchSize = 1;
    const many = Array.from({ length: 20 }, (_, i) => unit(`u${i}`, 0, 3_600_000));
    t0 = performance.now();
    await new TsdbUpdater(cfg, nullLogger, 500, 1_200).update(many, 0, 3_600_000);
    took = performance.now() - t0;
    assert(took < 2_500, `took ${Math.round(took)} ms for 20 batches of hung queries`);
    assert(arrived.length <= 12, `${arrived.length} queries sent before the deadline`);
  } finally {
    await prom.shutdown();
  }
});
