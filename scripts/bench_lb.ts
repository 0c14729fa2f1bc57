// Benchmark of `ceems lb`: latency added over querying a real Prometheus directly (p50, p99) and
// throughput with 50 concurrent clients, direct and through the LB, in one run, reported as ratios.

import { join } from "node:path";
import { CEEMS_ENV, freePort, mainTs } from "../tests/helpers/process.ts";
import { startPrometheus, toOpenMetrics } from "../tests/helpers/prometheus_server.ts";
import { analyseQuery } from "../lb/promql_access.ts";
import { CLUSTER, runningApiDb, unitSeries } from "../tests/lb/fixtures.ts";
import { closedLoopRate } from "./bench_load.ts";

const SEQUENTIAL = Number(Deno.env.get("BENCH_LB_REQUESTS") ?? 2000);
const CLIENTS = 50;
const SECONDS = Number(Deno.env.get("BENCH_LB_SECONDS") ?? 4);
/** An instant query of one unit, and a dashboard-like query with aggregations, matching and a comment. */
const QUERIES: [string, string][] = [
  ["one unit", 'ceems_cpu_usage{uuid="1001"}'],
  [
    "dashboard",
    'sum by (uuid) (rate(ceems_cpu_usage{uuid=~"1001|1002"}[5m])) / on(uuid) group_left() ' +
    'sum by (uuid) (ceems_mem_usage{uuid=~"1001|1002"} offset 1m) # per-unit ratio',
  ],
];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function once(url: string, headers: HeadersInit): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(url, { headers });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return performance.now() - t0;
}

function throughput(url: string, headers: HeadersInit): Promise<number> {
  return closedLoopRate(CLIENTS, SECONDS, () => once(url, headers));
}

const dir = await Deno.makeTempDir({ prefix: "ceems-bench-lb-" });
// The API server's database as it leaves it while running (the LB, dropped to nobody, reads it read-only).
const api = await runningApiDb(dir);
const now = Date.now();
const prom = await startPrometheus({ openMetrics: toOpenMetrics(unitSeries(), now - 3600e3, now + 3600e3, 30e3) });
await Deno.writeTextFile(
  join(dir, "lb.yml"),
  `ceems_lb:\n  backends: [{id: ${CLUSTER}, tsdb: [{web: {url: "${prom.url}"}}]}]\nceems_api_server:\n  data: {path: "${dir}"}\n`,
);
const port = freePort();
const lb = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", mainTs, "lb", `--config.file=${dir}/lb.yml`, `--web.listen-address=127.0.0.1:${port}`],
  env: CEEMS_ENV,
  stdout: "null",
  stderr: "piped",
}).spawn();
const lbStderr = new Response(lb.stderr).text();
try {
  const lbHeaders = { "X-Ceems-Cluster-Id": CLUSTER, "X-Grafana-User": "alice" };
  const urls = (q: string) => {
    const e = encodeURIComponent(q);
    return { direct: `${prom.url}/api/v1/query?query=${e}`, viaLb: `http://127.0.0.1:${port}/api/v1/query?query=${e}` };
  };
  for (let i = 0; i < 100; i++) {
    try {
      await once(urls(QUERIES[0][1]).viaLb, lbHeaders);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const f = (x: number) => x.toFixed(3);
  const results: Record<string, unknown>[] = [];
  console.log(
    `ceems lb benchmark (non-admin user, DB ownership); latency over ${SEQUENTIAL} interleaved requests each`,
  );
  for (const [name, q] of QUERIES) {
    const { direct, viaLb } = urls(q);
    for (let i = 0; i < 300; i++) {
      await once(direct, {});
      await once(viaLb, lbHeaders);
    }
    const d: number[] = [];
    const l: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      d.push(await once(direct, {}));
      l.push(await once(viaLb, lbHeaders));
    }
    d.sort((a, b) => a - b);
    l.sort((a, b) => a - b);
    // The LB's own work on the query (parse, check, print), in this process, as the floor of what it adds.
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) analyseQuery(q);
    const analyseMs = (performance.now() - t0) / 2000;
    const r = {
      query: name,
      direct_p50_ms: quantile(d, 0.5),
      lb_p50_ms: quantile(l, 0.5),
      added_p50_ms: quantile(l, 0.5) - quantile(d, 0.5),
      direct_p99_ms: quantile(d, 0.99),
      lb_p99_ms: quantile(l, 0.99),
      added_p99_ms: quantile(l, 0.99) - quantile(d, 0.99),
      parse_check_print_ms: analyseMs,
    };
    results.push(r);
    console.log(`  ${name}: parse+check+print ${f(analyseMs)} ms
    p50  direct ${f(r.direct_p50_ms)} ms   lb ${f(r.lb_p50_ms)} ms   added ${
      f(r.added_p50_ms)
    } ms  (goal <= 1 ms)  ratio ${f(r.lb_p50_ms / r.direct_p50_ms)}
    p99  direct ${f(r.direct_p99_ms)} ms   lb ${f(r.lb_p99_ms)} ms   added ${f(r.added_p99_ms)} ms  ratio ${
      f(r.lb_p99_ms / r.direct_p99_ms)
    }`);
  }
  const { direct, viaLb } = urls(QUERIES[0][1]);
  // ABBA order cancels a linear drift of the shared machine's load between the two measurements.
  const d1 = await throughput(direct, {});
  const l1 = await throughput(viaLb, lbHeaders);
  const l2 = await throughput(viaLb, lbHeaders);
  const d2 = await throughput(direct, {});
  const directRps = (d1 + d2) / 2;
  const lbRps = (l1 + l2) / 2;
  console.log(`throughput (one unit) with ${CLIENTS} concurrent clients, 2 x ${SECONDS} s each (ABBA order):
  direct ${directRps.toFixed(0)} req/s   lb ${lbRps.toFixed(0)} req/s   ratio ${
    (100 * lbRps / directRps).toFixed(1)
  } % (goal >= 90 %)`);
  console.log(JSON.stringify({ requests: SEQUENTIAL, latency: results, direct_rps: directRps, lb_rps: lbRps }));
} finally {
  try {
    lb.kill("SIGTERM");
  } catch { /* exited already: its stderr says why */ }
  const st = await lb.status;
  if (!st.success) console.error(`ceems lb exited ${st.code}: ${await lbStderr}`);
  await prom.stop();
  api.storage.close();
  await Deno.remove(dir, { recursive: true });
}
