// Generated recording rules checked by the real promtool: `check rules` for every node power source, and
// `test rules` on synthetic series with hand-computed per-unit power, GPU power, emissions and usage.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { type JobSeries, promDuration, renderJobRules, type RulesOptions } from "../../tool/recording_rules.ts";
import { loadHttpClientConfig, parsePromDuration } from "../../tool/prometheus_api.ts";
import { parseTime } from "../../tool/cli.ts";
import { runCeems } from "../helpers/process.ts";

const unitSeries = [
  "ceems_compute_unit_cpu_user_seconds_total",
  "ceems_compute_unit_memory_used_bytes",
  "ceems_cpu_seconds_total",
  "ceems_meminfo_MemTotal_bytes",
];

function job(extra: string[], scrapeIntervalMs = 15_000): JobSeries {
  return { job: "ceems", series: new Set([...unitSeries, ...extra]), scrapeIntervalMs };
}

const opts: RulesOptions = { pue: 1.5, evalIntervalMs: 15_000, emissions: { kind: "none" } };

async function promtool(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("promtool", { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

Deno.test("recording rules: every node power source gives rules promtool accepts; no units or power → none", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-rules-" });
  try {
    const cases: Record<string, string[]> = {
      ipmi: ["ceems_ipmi_dcmi_current_watts"],
      ipmi_rapl_gpu: [
        "ceems_ipmi_dcmi_current_watts",
        "ceems_rapl_package_joules_total",
        "ceems_rapl_dram_joules_total",
        "ceems_gpu_power_watts",
        "ceems_compute_unit_gpu_index_flag",
      ],
      redfish: ["ceems_redfish_current_watts"],
      hwmon: ["ceems_hwmon_power_current_watts"],
      cray: ["ceems_cray_pm_counters_power_watts"],
      rapl: ["ceems_rapl_package_joules_total", "ceems_rapl_dram_joules_total"],
    };
    for (const [name, extra] of Object.entries(cases)) {
      const text = renderJobRules(job(extra), {
        ...opts,
        emissions: { kind: "providers", countryCode: "FR", providers: ["owid", "rte"] },
      });
      assert(text, name);
      Deno.writeTextFileSync(join(dir, `${name}.rules`), text);
      const r = await promtool(["check", "rules", `${name}.rules`], dir);
      assertEquals(r.code, 0, `${name}: ${r.out}\n${text}`);
      assertMatch(text, /record: uuid:ceems_host_power_watts:pue/);
      assertEquals(text.match(/record: uuid:ceems_host_emissions_g_s:pue/g)?.length, 2, name);
      assertEquals(text.includes("uuid:ceems_gpu_power_watts:pue"), name === "ipmi_rapl_gpu", name);
    }
    assertEquals(renderJobRules(job(["ceems_ipmi_dcmi_current_watts"]), opts)?.includes("emissions"), false);
    assertEquals(renderJobRules({ ...job([]), series: new Set(["ceems_ipmi_dcmi_current_watts"]) }, opts), undefined);
    assertEquals(renderJobRules(job([]), opts), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// One node "n1" (scrape every 15 s): IPMI 500 W, busy CPU 2 cpu-s/s; unit A burns 1 cpu-s/s, unit B 0.5 and
// holds GPU 0 drawing 100 W. PUE 1.5, static factor 100 g/kWh. By hand:
//   node = 1.5 × 500 = 750 W; without GPU = 750 − 1.5 × 100 = 600 W
//   A = 0.9 × 600 × 1/2 + 0.1 × 600 / 2 = 270 + 30 = 300 W;  B = 0.9 × 600 × 1/4 + 30 = 165 W
//   GPU of B = 1.5 × 100 = 150 W; emissions A = 300 / 3.6e6 × 100 g/s
const SYNTHETIC = `
rule_files: [rules.rules]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'ceems_ipmi_dcmi_current_watts{instance="n1:9010",job="ceems",hostname="n1"}'
        values: '500x40'
      - series: 'ceems_cpu_seconds_total{instance="n1:9010",job="ceems",hostname="n1",mode="user"}'
        values: '0+30x40'
      - series: 'ceems_cpu_seconds_total{instance="n1:9010",job="ceems",hostname="n1",mode="idle"}'
        values: '0+15x40'
      - series: 'ceems_meminfo_MemTotal_bytes{instance="n1:9010",job="ceems",hostname="n1"}'
        values: '16e9x40'
      - series: 'ceems_meminfo_MemAvailable_bytes{instance="n1:9010",job="ceems",hostname="n1"}'
        values: '8e9x40'
      - series: 'ceems_compute_units{instance="n1:9010",job="ceems",hostname="n1",manager="slurm"}'
        values: '2x40'
      - series: 'ceems_compute_unit_cpu_user_seconds_total{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
        values: '0+12x40'
      - series: 'ceems_compute_unit_cpu_system_seconds_total{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
        values: '0+3x40'
      - series: 'ceems_compute_unit_cpu_user_seconds_total{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
        values: '0+7.5x40'
      - series: 'ceems_compute_unit_cpu_system_seconds_total{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
        values: '0x40'
      - series: 'ceems_compute_unit_cpus{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
        values: '2x40'
      - series: 'ceems_compute_unit_cpus{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
        values: '1x40'
      - series: 'ceems_compute_unit_memory_used_bytes{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
        values: '1e9x40'
      - series: 'ceems_compute_unit_memory_used_bytes{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
        values: '3e9x40'
      - series: 'ceems_compute_unit_memory_total_bytes{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
        values: '4e9x40'
      - series: 'ceems_compute_unit_memory_total_bytes{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
        values: '4e9x40'
      - series: 'ceems_gpu_power_watts{instance="n1:9010",job="ceems",hostname="n1",index="0",hindex="n1/gpu-0",gpuuuid="GPU-x"}'
        values: '100x40'
      - series: 'ceems_compute_unit_gpu_index_flag{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B",index="0",hindex="n1/gpu-0",gpuuuid="GPU-x"}'
        values: '1x40'
    promql_expr_test:
      - expr: instance:ceems_ipmi_dcmi_current_watts:pue
        eval_time: 5m
        exp_samples:
          - labels: 'instance:ceems_ipmi_dcmi_current_watts:pue{instance="n1:9010",job="ceems",hostname="n1"}'
            value: 750
      - expr: uuid:ceems_host_power_watts:pue
        eval_time: 5m
        exp_samples:
          - labels: 'uuid:ceems_host_power_watts:pue{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
            value: 300
          - labels: 'uuid:ceems_host_power_watts:pue{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
            value: 165
      - expr: uuid:ceems_gpu_power_watts:pue
        eval_time: 5m
        exp_samples:
          - labels: 'uuid:ceems_gpu_power_watts:pue{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B",index="0",hindex="n1/gpu-0",gpuuuid="GPU-x"}'
            value: 150
      - expr: uuid:ceems_host_emissions_g_s:pue{uuid="A"}
        eval_time: 5m
        exp_samples:
          - labels: 'uuid:ceems_host_emissions_g_s:pue{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A",provider="custom"}'
            value: 0.008333333333333333
      - expr: uuid:ceems_cpu_usage:ratio_irate
        eval_time: 5m
        exp_samples:
          - labels: 'uuid:ceems_cpu_usage:ratio_irate{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
            value: 50
          - labels: 'uuid:ceems_cpu_usage:ratio_irate{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
            value: 50
      - expr: uuid:ceems_cpu_memory_usage:ratio
        eval_time: 5m
        exp_samples:
          - labels: 'uuid:ceems_cpu_memory_usage:ratio{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="A"}'
            value: 25
          - labels: 'uuid:ceems_cpu_memory_usage:ratio{instance="n1:9010",job="ceems",hostname="n1",manager="slurm",uuid="B"}'
            value: 75
      - expr: job:ceems_host_power_watts:pue
        eval_time: 5m
        exp_samples:
          - labels: 'job:ceems_host_power_watts:pue{job="ceems"}'
            value: 750
`;

Deno.test("recording rules: promtool test rules on synthetic IPMI+GPU series gives the hand-computed values", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-rules-" });
  try {
    const text = renderJobRules(
      job(["ceems_ipmi_dcmi_current_watts", "ceems_gpu_power_watts", "ceems_compute_unit_gpu_index_flag"]),
      { ...opts, emissions: { kind: "static", countryCode: "", provider: "custom", gCo2PerKWh: 100 } },
    )!;
    Deno.writeTextFileSync(join(dir, "rules.rules"), text);
    Deno.writeTextFileSync(join(dir, "test.yml"), SYNTHETIC);
    const r = await promtool(["test", "rules", "test.yml"], dir);
    assertEquals(r.code, 0, `${r.out}\n${text}`);
    // A wrong split must fail the same test: halve the misc share and promtool must object.
    Deno.writeTextFileSync(join(dir, "rules.rules"), text.replaceAll("0.1 *", "0.05 *"));
    assert((await promtool(["test", "rules", "test.yml"], dir)).code !== 0, "promtool test must catch a wrong rule");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// RAPL only, scrape 10 s (rate window 40s): package 60 W, DRAM 20 W; A 1.5 of 2 busy cpu-s/s, 1 of 4 GB used.
//   A = 1.2 × (60 × 0.75 + 20 × 0.25) = 1.2 × 50 = 60 W
const RAPL = `
rule_files: [rules.rules]
evaluation_interval: 10s
tests:
  - interval: 10s
    input_series:
      - series: 'ceems_rapl_package_joules_total{instance="n2:9010",job="ceems",hostname="n2",index="0"}'
        values: '0+600x30'
      - series: 'ceems_rapl_dram_joules_total{instance="n2:9010",job="ceems",hostname="n2",index="0"}'
        values: '0+200x30'
      - series: 'ceems_cpu_seconds_total{instance="n2:9010",job="ceems",hostname="n2",mode="system"}'
        values: '0+20x30'
      - series: 'ceems_meminfo_MemTotal_bytes{instance="n2:9010",job="ceems",hostname="n2"}'
        values: '10e9x30'
      - series: 'ceems_meminfo_MemAvailable_bytes{instance="n2:9010",job="ceems",hostname="n2"}'
        values: '6e9x30'
      - series: 'ceems_compute_units{instance="n2:9010",job="ceems",hostname="n2",manager="slurm"}'
        values: '1x30'
      - series: 'ceems_compute_unit_cpu_user_seconds_total{instance="n2:9010",job="ceems",hostname="n2",manager="slurm",uuid="A"}'
        values: '0+15x30'
      - series: 'ceems_compute_unit_cpu_system_seconds_total{instance="n2:9010",job="ceems",hostname="n2",manager="slurm",uuid="A"}'
        values: '0x30'
      - series: 'ceems_compute_unit_memory_used_bytes{instance="n2:9010",job="ceems",hostname="n2",manager="slurm",uuid="A"}'
        values: '1e9x30'
    promql_expr_test:
      - expr: uuid:ceems_host_power_watts:pue
        eval_time: 4m
        exp_samples:
          - labels: 'uuid:ceems_host_power_watts:pue{instance="n2:9010",job="ceems",hostname="n2",manager="slurm",uuid="A"}'
            value: 60
      - expr: instance:ceems_rapl_package_joules_total:pue
        eval_time: 4m
        exp_samples:
          - labels: 'instance:ceems_rapl_package_joules_total:pue{instance="n2:9010",job="ceems",hostname="n2"}'
            value: 96
`;

Deno.test("recording rules: RAPL-only node splits package power by CPU time and DRAM power by memory", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-rules-" });
  try {
    const text = renderJobRules(job(["ceems_rapl_package_joules_total", "ceems_rapl_dram_joules_total"], 10_000), {
      ...opts,
      pue: 1.2,
      evalIntervalMs: 10_000,
    })!;
    assertMatch(text, /\[40s\]/);
    Deno.writeTextFileSync(join(dir, "rules.rules"), text);
    Deno.writeTextFileSync(join(dir, "test.yml"), RAPL);
    const r = await promtool(["test", "rules", "test.yml"], dir);
    assertEquals(r.code, 0, `${r.out}\n${text}`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("tool helpers: durations, times; bad flags stop with one line", async () => {
  assertEquals([promDuration(60_000), promDuration(4000), promDuration(1500), promDuration(7_200_000)], [
    "1m",
    "4s",
    "1500ms",
    "2h",
  ]);
  assertEquals(parsePromDuration("1m30s"), 90_000);
  assertEquals(parseTime("1700000000"), 1700000000);
  assertEquals(parseTime("2023-11-14T22:13:20Z"), 1700000000);
  const both = await runCeems(["tool", "tsdb", "create-recording-rules", "--emission-factor=10", "--country-code=FR"]);
  assertEquals(both.code, 2);
  assertMatch(both.stderr, /^ceems tool: error: --emission-factor and --country-code are mutually exclusive\n$/);
  const bad = await runCeems(["tool", "tsdb", "nope"]);
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /unknown command 'tsdb nope'/);
  const down = await runCeems(["tool", "tsdb", "create-recording-rules", "--url=http://127.0.0.1:1"]);
  assertEquals(down.code, 2);
  assertMatch(down.stderr, /querying Prometheus at http:\/\/127.0.0.1:1/);
});

// Cray PM counters (the CEEMS fixture's domains): node 873 W, cpu 83, memory 75, accelerators 99+197+263+123;
// A burns 1 of 2 busy cpu-s/s and holds 2 of 8 GB used, alone on the node (PUE 1):
//   A = 83 × 1/2 + 75 × 1/4 + (873 − 83 − 75 − 682) = 41.5 + 18.75 + 33 = 93.25 W
const CRAY = `
rule_files: [rules.rules]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
${
  [["node", 873], ["cpu", 83], ["memory", 75], ["accel0", 99], ["accel1", 197], ["accel2", 263], ["accel3", 123]].map((
    [d, w],
  ) =>
    `      - series: 'ceems_cray_pm_counters_power_watts{instance="c1:9010",job="ceems",hostname="c1",domain="${d}"}'
        values: '${w}x20'`
  ).join("\n")
}
      - series: 'ceems_cpu_seconds_total{instance="c1:9010",job="ceems",hostname="c1",mode="user"}'
        values: '0+30x20'
      - series: 'ceems_meminfo_MemTotal_bytes{instance="c1:9010",job="ceems",hostname="c1"}'
        values: '16e9x20'
      - series: 'ceems_meminfo_MemAvailable_bytes{instance="c1:9010",job="ceems",hostname="c1"}'
        values: '8e9x20'
      - series: 'ceems_compute_units{instance="c1:9010",job="ceems",hostname="c1",manager="slurm"}'
        values: '1x20'
      - series: 'ceems_compute_unit_cpu_user_seconds_total{instance="c1:9010",job="ceems",hostname="c1",manager="slurm",uuid="A"}'
        values: '0+15x20'
      - series: 'ceems_compute_unit_cpu_system_seconds_total{instance="c1:9010",job="ceems",hostname="c1",manager="slurm",uuid="A"}'
        values: '0x20'
      - series: 'ceems_compute_unit_memory_used_bytes{instance="c1:9010",job="ceems",hostname="c1",manager="slurm",uuid="A"}'
        values: '2e9x20'
    promql_expr_test:
      - expr: uuid:ceems_host_power_watts:pue
        eval_time: 4m
        exp_samples:
          - labels: 'uuid:ceems_host_power_watts:pue{instance="c1:9010",job="ceems",hostname="c1",manager="slurm",uuid="A"}'
            value: 93.25
`;

Deno.test("recording rules: Cray PM counters split cpu and memory domains, the rest of the node goes to units", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-rules-" });
  try {
    const text = renderJobRules(job(["ceems_cray_pm_counters_power_watts"]), { ...opts, pue: 1 })!;
    Deno.writeTextFileSync(join(dir, "rules.rules"), text);
    Deno.writeTextFileSync(join(dir, "test.yml"), CRAY);
    const r = await promtool(["test", "rules", "test.yml"], dir);
    assertEquals(r.code, 0, `${r.out}\n${text}`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--http.config.file: basic_auth (inline or password_file) and authorization become request headers", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-httpcfg-" });
  try {
    Deno.writeTextFileSync(join(dir, "pw"), "s3cret\n");
    Deno.writeTextFileSync(join(dir, "a.yml"), `basic_auth: {username: ceems, password_file: ${join(dir, "pw")}}\n`);
    assertEquals(loadHttpClientConfig(join(dir, "a.yml")).headers, { Authorization: "Basic " + btoa("ceems:s3cret") });
    Deno.writeTextFileSync(join(dir, "b.yml"), "authorization: {credentials: tok}\n");
    assertEquals(loadHttpClientConfig(join(dir, "b.yml")).headers, { Authorization: "Bearer tok" });
    assertEquals(loadHttpClientConfig("").headers, {});
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
