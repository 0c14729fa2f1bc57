// The generated recording rules on VictoriaMetrics: `ceems tool tsdb create-recording-rules` discovers a
// cluster in a real VictoriaMetrics, vmalert evaluates the rules into it, and every recorded series holds
// the same values as Prometheus 2.42 records from the same samples and the same rules files.

import { join } from "node:path";
import { assertEquals } from "../helpers/assert.ts";
import { mainTs } from "../helpers/process.ts";
import { startPrometheus, toOpenMetrics } from "../helpers/prometheus_server.ts";
import { startVictoriaMetrics, startVmalert, type VmSample } from "../helpers/victoria_metrics.ts";
import { cluster, STEP } from "../tool/cluster_fixture.ts";

type Sample = { metric: Record<string, string>; value: [number, string] };

async function query(url: string, q: string): Promise<Sample[]> {
  const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = await r.json();
  if (j.status !== "success") throw new Error(`${q}: ${JSON.stringify(j)}`);
  return j.data.result;
}

/** Recorded series of a name as `labels → value`, rounded to 9 significant digits. */
function byLabels(samples: Sample[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of samples) {
    const { __name__: _, ...l } = s.metric;
    const key = Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(",");
    out[key] = Number(s.value[1]).toPrecision(9);
  }
  return out;
}

Deno.test({
  name: "recording rules on VictoriaMetrics (vmalert) record what Prometheus records from the same samples",
  sanitizeResources: false,
  async fn() {
    const now = Date.now();
    const from = now - 20 * 60_000;
    const series = cluster();
    const samples: VmSample[] = [];
    for (const s of series) {
      // VictoriaMetrics gets samples up to 3 min ahead: vmalert's chained rules reach it over remote write
      // and take several seconds per level to become searchable, so raw rates must not run dry meanwhile.
      for (let t = from, i = 0; t <= now + 180_000; t += STEP, i++) {
        samples.push({ name: s.name, labels: s.labels, value: s.value!(i), timeMs: t });
      }
    }
    const rulesDir = Deno.makeTempDirSync({ prefix: "ceems-vm-rules-" });
    const vm = await startVictoriaMetrics({ samples });
    let vmalert: Awaited<ReturnType<typeof startVmalert>> | undefined;
    let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
    try {
      // The tool discovers the cluster in VictoriaMetrics (scrape interval from its scrape config).
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          mainTs,
          "tool",
          "tsdb",
          "create-recording-rules",
          `--url=${vm.url}`,
          `--start=${Math.floor(from / 1000)}`,
          `--end=${Math.floor(now / 1000)}`,
          "--country-code=FR",
          "--eval-interval=1s",
          `--output-dir=${rulesDir}`,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("0\n"));
      await w.close();
      const gen = await child.output();
      assertEquals(gen.code, 0, new TextDecoder().decode(gen.stderr));
      const files = [...Deno.readDirSync(rulesDir)].map((e) => e.name).sort();
      assertEquals(files, ["cpu-ipmi.rules", "cpu-redfish.rules", "dcgm-gpu.rules"]);
      const records = new Set<string>();
      for (const f of files) {
        for (const m of Deno.readTextFileSync(join(rulesDir, f)).matchAll(/record: (\S+)/g)) records.add(m[1]);
      }
      vmalert = await startVmalert(vm, `${rulesDir}/*.rules`);
      prom = await startPrometheus({
        openMetrics: toOpenMetrics(series, from, now, STEP),
        config: `global: {scrape_interval: 15s, evaluation_interval: 1s}\nrule_files: ['${rulesDir}/*.rules']\n`,
      });
      // Wait until both have recorded every series, then compare the latest values.
      const t0 = Date.now();
      const deadline = t0 + 90_000;
      let missing: string[] = [];
      while (Date.now() < deadline) {
        missing = [];
        await (await fetch(`${vm.url}/internal/force_flush`)).body?.cancel();
        for (const r of records) {
          if (!(await query(vm.url, r)).length) missing.push(`victoria-metrics ${r}`);
          if (!(await query(prom.url, r)).length) missing.push(`prometheus ${r}`);
        }
        if (!missing.length) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assertEquals(missing, [], "every recorded series in both");
      const waited = Date.now() - t0;
      // Chained rules settle within a few evaluations: compare until both agree (or report the difference).
      const names = [...records].sort().filter((r) => !r.startsWith("instance:ceems_rapl_")); // PUE × a counter
      let diff: string[] = [];
      while (Date.now() < deadline) {
        diff = [];
        await (await fetch(`${vm.url}/internal/force_flush`)).body?.cancel();
        for (const r of names) {
          const [a, b] = [byLabels(await query(vm.url, r)), byLabels(await query(prom.url, r))];
          if (JSON.stringify(a) !== JSON.stringify(b)) diff.push(`${r}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
        }
        if (!diff.length) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assertEquals(diff, [], "VictoriaMetrics and Prometheus record the same values");
      console.log(
        `figures: ${records.size} recorded series names in both after ${waited} ms, ${names.length} compared value by value`,
      );
    } finally {
      if (prom) await prom.stop();
      if (vmalert) await vmalert.stop();
      await vm.stop();
      Deno.removeSync(rulesDir, { recursive: true });
    }
  },
});
