// `ceems tool tsdb …` against a real Prometheus 2.42 holding a cluster's series (IPMI+RAPL node with eBPF
// counters, Redfish node with two chassis and a DCGM exporter, an emissions job): the generated rules load
// into that Prometheus and every recorded series has data; relabel configs and updater queries follow.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { mainTs } from "../helpers/process.ts";
import { startPrometheus, toOpenMetrics } from "../helpers/prometheus_server.ts";
import { cluster, STEP } from "./cluster_fixture.ts";
import { parse as parseYaml } from "yaml";

/** The samples of an instant query. */
async function query(url: string, q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = await r.json();
  if (j.status !== "success") throw new Error(`${q}: ${JSON.stringify(j)}`);
  return j.data.result;
}

/** Runs `ceems tool <args>` with `stdin` written to its standard input. */
async function tool(args: string[], stdin = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", mainTs, "tool", ...args],
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

Deno.test({
  name: "ceems tool tsdb: rules generated from a real Prometheus load into it and record every series",
  sanitizeResources: false,
  async fn() {
    const now = Date.now();
    const from = now - 20 * 60_000;
    const rulesDir = Deno.makeTempDirSync({ prefix: "ceems-tool-rules-" });
    // Samples end now: the rules find them for the next ~50 s (the rate window). Later samples would put
    // the backfilled block past Prometheus's head, and recorded samples at now would be out of bounds.
    const prom = await startPrometheus({
      openMetrics: toOpenMetrics(cluster(), from, now, STEP),
      config: `global: {scrape_interval: 15s, evaluation_interval: 1s}\nrule_files: ['${rulesDir}/*.rules']\n`,
      args: ["--web.enable-lifecycle"],
    });
    try {
      const win = [`--url=${prom.url}`, `--start=${Math.floor(from / 1000)}`, `--end=${Math.floor(now / 1000)}`];
      // Two Redfish chassis: the operator picks Chassis_1 ("0") when asked.
      const gen = await tool([
        "tsdb",
        "create-recording-rules",
        ...win,
        "--country-code=FR",
        `--output-dir=${rulesDir}`,
      ], "0\n");
      assertEquals(gen.code, 0, gen.stderr);
      assertMatch(gen.stderr, /Multiple chassis found for ceems_redfish_current_watts for job cpu-redfish/);
      assertEquals([...Deno.readDirSync(rulesDir)].map((e) => e.name).sort(), [
        "cpu-ipmi.rules",
        "cpu-redfish.rules",
        "dcgm-gpu.rules",
      ]);
      for (const f of Deno.readDirSync(rulesDir)) {
        const chk = await new Deno.Command("promtool", { args: ["check", "rules", join(rulesDir, f.name)] }).output();
        assertEquals(chk.code, 0, new TextDecoder().decode(chk.stdout) + new TextDecoder().decode(chk.stderr));
      }
      assertMatch(Deno.readTextFileSync(join(rulesDir, "cpu-redfish.rules")), /chassis=~"Chassis_1"/);
      const reload = await fetch(`${prom.url}/-/reload`, { method: "POST" });
      await reload.body?.cancel();
      assertEquals(reload.status, 200);

      const want: [string, number][] = [
        ["uuid:ceems_cpu_usage:ratio_irate", 4],
        ["uuid:ceems_cpu_memory_usage:ratio", 4],
        ["uuid:ceems_host_power_watts:pue", 4],
        ['uuid:ceems_host_emissions_g_s:pue{provider="owid"}', 4],
        ['uuid:ceems_host_emissions_g_s:pue{provider="rte"}', 4],
        ["uuid:ceems_gpu_power_watts:pue", 1],
        ["uuid:ceems_gpu_usage:ratio", 1],
        ["uuid:ceems_gpu_memory_usage:ratio", 1],
        ["uuid:ceems_gpu_emissions_g_s:pue", 2],
        ["uuid:ceems_io_read_bytes:irate", 1],
        ["uuid:ceems_net_ingress_bytes:irate", 1],
        ["job:ceems_cpu_usage:avg_ratio_irate", 2],
        ["job:ceems_cpu_memory_usage:avg_ratio", 2],
        ["job:ceems_host_power_watts:pue", 2],
        ['job:ceems_host_emissions_g_s:pue{country_code="FR"}', 4],
        ["job:ceems_gpu_power_watts:pue", 1],
        ["job:ceems_gpu_usage:avg", 1],
        ["job:ceems_io_read_bytes:sum_irate", 1],
        ["job:ceems_net_ingress_bytes:sum_irate", 1],
      ];
      const deadline = Date.now() + 30_000;
      let missing: string[] = [];
      while (Date.now() < deadline) {
        missing = [];
        for (const [q, n] of want) {
          const r = await query(prom.url, q);
          if (r.length !== n || r.some((s) => !Number.isFinite(Number(s.value[1])))) {
            missing.push(`${q}: ${r.length}/${n}`);
          }
        }
        if (!missing.length) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assertEquals(missing, [], "recorded series with data");
      // Node power of the Redfish node is Chassis_1 less the GPU: 400 − 250 = 150 W (PUE 1). An evaluation from
      // before the GPU's first scrape records 400: wait for one that has both.
      let watts = NaN;
      for (const until = Date.now() + 20_000; Date.now() < until;) {
        const job = await query(prom.url, 'job:ceems_host_power_watts:pue{job="cpu-redfish"}');
        watts = Number(job[0]?.value[1]);
        if (watts === 150) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assertEquals(watts, 150);

      const relabel = await tool(["tsdb", "create-relabel-configs", ...win]);
      assertEquals(relabel.code, 0, relabel.stderr);
      const rc = parseYaml(relabel.stdout) as {
        scrape_configs: { job_name: string; metric_relabel_configs: unknown[] }[];
      };
      assertEquals(rc.scrape_configs.map((s) => s.job_name), ["dcgm"]);
      assertEquals(rc.scrape_configs[0].metric_relabel_configs.length, 4);

      // The window holds both the backfilled raw series (which end at `now`) and every recorded sample (all
      // after the reload), however long or short the steps above took. Its end is rounded up: on a fast
      // machine the whole test fits in a second or two, and a rule group (each evaluates at its own offset
      // in the 1 s interval) may have recorded its first sample after the whole second before now.
      const upd = await tool([
        "tsdb",
        "create-ceems-tsdb-updater-queries",
        `--url=${prom.url}`,
        `--start=${Math.floor(from / 1000)}`,
        `--end=${Math.ceil(Date.now() / 1000)}`,
      ]);
      assertEquals(upd.code, 0, upd.stderr);
      const q = (parseYaml(upd.stdout) as { queries: Record<string, Record<string, string>> }).queries;
      assertEquals(Object.keys(q.total_cpu_emissions_gms ?? {}).sort(), ["owid_total", "rte_total"], upd.stdout);
      assert(q.avg_gpu_usage?.global.includes("uuid:ceems_gpu_usage:ratio"), upd.stdout);
      assert(q.total_io_read_stats?.bytes_total.includes("ceems_ebpf_read_bytes_total"), upd.stdout);
      // Every query is valid PromQL Prometheus evaluates once the template variables are filled in.
      for (const [metric, subs] of Object.entries(q)) {
        for (const [sub, tpl] of Object.entries(subs)) {
          const text = tpl.replaceAll("{{.UUIDs}}", "ni-1|nr-1").replaceAll("{{.Range}}", "5m")
            .replaceAll("{{.ScrapeIntervalMilli}}", "15000").replaceAll("{{.ScrapeInterval}}", "15s");
          await query(prom.url, text).catch((e) => {
            throw new Error(`${metric}.${sub}: ${e}`);
          });
        }
      }
    } finally {
      await prom.stop();
      Deno.removeSync(rulesDir, { recursive: true });
    }
  },
});
