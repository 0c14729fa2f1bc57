// The API server's TSDB updater against a real VictoriaMetrics holding the recording-rule series of
// units with known values: the same averages, energy (kWh) and emissions (g) as from Prometheus, with the
// queries `ceems tool tsdb create-ceems-tsdb-updater-queries` prints for that VictoriaMetrics.

import { bareUnit } from "../helpers/tsdb_units.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { nullLogger } from "../../common/log.ts";
import type { UpdaterConfig } from "../../api_server/config.ts";
import { TsdbUpdater } from "../../api_server/updater/tsdb.ts";
import { runCeems } from "../helpers/process.ts";
import { startVictoriaMetrics, type VmSample } from "../helpers/victoria_metrics.ts";
import { parse as parseYaml } from "yaml";

const N = 12; // more than the minimum batch of 10: two batches
const cpu = (i: number) => 10 + i; // percent
const mem = (i: number) => 20 + i; // percent
const power = (i: number) => 50 + 10 * i; // watts
const emis = (i: number) => 0.001 * (i + 1); // g/s

const unit = bareUnit;

Deno.test({
  name: "tsdb updater on VictoriaMetrics: known averages, energy and emissions with the tool's queries",
  sanitizeResources: false,
  async fn() {
    const step = 15_000;
    const end = Math.floor((Date.now() - 20 * 60_000) / 60_000) * 60_000;
    const start = end - 3_600_000;
    const samples: VmSample[] = [];
    for (let t = start - 10 * 60_000; t <= end + 5 * 60_000; t += step) {
      for (let i = 0; i < N; i++) {
        const labels = { uuid: `job${i}`, instance: "n:9010", job: "ceems" };
        samples.push({ name: "uuid:ceems_cpu_usage:ratio_irate", labels, value: cpu(i), timeMs: t });
        samples.push({ name: "uuid:ceems_cpu_memory_usage:ratio", labels, value: mem(i), timeMs: t });
        samples.push({ name: "uuid:ceems_host_power_watts:pue", labels, value: power(i), timeMs: t });
        samples.push({
          name: "uuid:ceems_host_emissions_g_s:pue",
          labels: { ...labels, provider: "owid" },
          value: emis(i),
          timeMs: t,
        });
      }
    }
    const vm = await startVictoriaMetrics({ samples });
    try {
      // The tool discovers the series in VictoriaMetrics and prints the queries for them.
      const s = Math.floor(start / 1000);
      const gen = await runCeems([
        "tool",
        "tsdb",
        "create-ceems-tsdb-updater-queries",
        `--url=${vm.url}`,
        `--start=${s}`,
        `--end=${s + 3600}`,
      ]);
      assertEquals(gen.code, 0, gen.stderr);
      const queries = (parseYaml(gen.stdout) as { queries: Record<string, Record<string, string>> }).queries;
      assertEquals(Object.keys(queries).sort(), [
        "avg_cpu_mem_usage",
        "avg_cpu_usage",
        "total_cpu_emissions_gms",
        "total_cpu_energy_usage_kwh",
      ]);
      const cfg: UpdaterConfig = {
        id: "vm",
        updater: "tsdb",
        url: vm.url,
        web: {},
        extraConfig: {
          queryMaxSeries: 50,
          queryMinSamples: 0.5,
          queryBatchSize: 0,
          cutoffMs: 0,
          deleteIgnored: false,
          labelsToDrop: [],
          queries,
        },
      };
      const up = new TsdbUpdater(cfg, nullLogger);
      // VictoriaMetrics answers /api/v1/status/config with its scrape config; it has no /status/flags.
      assertEquals((await up.settings()).scrapeIntervalMs, 15_000);
      const units = Array.from({ length: N }, (_, i) => unit(`job${i}`, start, end));
      await up.update(units, start, end);
      for (let i = 0; i < N; i++) {
        const u = units[i];
        assertEquals(u.avg_cpu_usage?.global, cpu(i), `avg cpu of job${i}`);
        assertEquals(u.avg_cpu_mem_usage?.global, mem(i), `avg memory of job${i}`);
        // 240 points of 15 s in the hour: W × 240 × 15000 ms / 3.6e9 = W / 1000 kWh
        const kwh = u.total_cpu_energy_usage_kwh!.total;
        assert(Math.abs(kwh - power(i) / 1000) < 1e-9, `energy of job${i}: ${kwh} != ${power(i) / 1000}`);
        const g = u.total_cpu_emissions_gms!.owid_total;
        assert(Math.abs(g - emis(i) * 3600) < 1e-6, `emissions of job${i}: ${g} != ${emis(i) * 3600}`);
      }
    } finally {
      await vm.stop();
    }
  },
});
