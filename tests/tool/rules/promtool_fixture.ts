// Builds `promtool test rules` files for the generated recording rules: input series of CEEMS nodes with
// two units whose CPU and memory shares are round numbers, and expected samples written by hand.

import { join } from "node:path";
import { assertEquals } from "../../helpers/assert.ts";
import { jobRulesFiles } from "../../../tool/rules/render.ts";
import type { RulesJob, RulesOptions } from "../../../tool/rules/types.ts";
import { renderRulesFile } from "../../../tool/rules/yaml.ts";

/** One input series: `name{labels}` and a promtool values expression. */
export interface InputSeries {
  series: string;
  values: string;
}

/** One expected result: the query and its samples (labels as PromQL series text). */
export interface Expectation {
  expr: string;
  samples: [string, number][];
}

/** Samples per series (15 s apart): enough for 5 min of rules. */
export const N = 40;

/** `name{k="v",…}` from a label object. */
export function series(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",")}}`;
}

/** A constant gauge. */
export function gauge(name: string, labels: Record<string, string>, v: number): InputSeries {
  return { series: series(name, labels), values: `${v}x${N}` };
}

/** A counter rising by `perStep` every 15 s. */
export function counter(name: string, labels: Record<string, string>, perStep: number): InputSeries {
  return { series: series(name, labels), values: `0+${perStep}x${N}` };
}

/**
 * A CEEMS node with two SLURM units A and B (uuids `${prefix}A`, `${prefix}B`), scraped every 15 s:
 * node busy 2 cpu-s/s of 4 CPUs, 8 of 16 GB used; A 1 cpu-s/s on 2 CPUs and 2 of 4 GB, B 0.5 cpu-s/s on
 * 1 CPU and 6 of 8 GB. So A holds 1/2 of busy CPU and 1/4 of used memory, B 1/4 and 3/4; each 1/2 of
 * the units. CPU usage A 50 %, B 50 %; memory usage A 50 %, B 75 %.
 */
export function ceemsNode(instance: string, hostname: string, job = "ceems", prefix = ""): InputSeries[] {
  const n = { instance, job, hostname };
  const u = (id: string) => ({ ...n, manager: "slurm", uuid: `${prefix}${id}` });
  return [
    counter("ceems_cpu_seconds_total", { ...n, mode: "user" }, 22.5),
    counter("ceems_cpu_seconds_total", { ...n, mode: "system" }, 7.5),
    counter("ceems_cpu_seconds_total", { ...n, mode: "idle" }, 30),
    counter("ceems_cpu_seconds_total", { ...n, mode: "iowait" }, 3),
    gauge("ceems_cpu_count", n, 4),
    gauge("ceems_cpu_per_core_count", n, 2),
    gauge("ceems_meminfo_MemTotal_bytes", n, 16e9),
    gauge("ceems_meminfo_MemAvailable_bytes", n, 8e9),
    gauge("ceems_compute_units", { ...n, manager: "slurm" }, 2),
    counter("ceems_compute_unit_cpu_user_seconds_total", u("A"), 12),
    counter("ceems_compute_unit_cpu_system_seconds_total", u("A"), 3),
    counter("ceems_compute_unit_cpu_user_seconds_total", u("B"), 7.5),
    counter("ceems_compute_unit_cpu_system_seconds_total", u("B"), 0),
    gauge("ceems_compute_unit_cpus", u("A"), 2),
    gauge("ceems_compute_unit_cpus", u("B"), 1),
    gauge("ceems_compute_unit_memory_used_bytes", u("A"), 2e9),
    gauge("ceems_compute_unit_memory_total_bytes", u("A"), 4e9),
    gauge("ceems_compute_unit_memory_used_bytes", u("B"), 6e9),
    gauge("ceems_compute_unit_memory_total_bytes", u("B"), 8e9),
  ];
}

/** Labels of unit `id` on a node, as the recorded per-unit series carry them. */
export function unitLabels(instance: string, hostname: string, id: string, job = "ceems"): Record<string, string> {
  return { instance, job, hostname, manager: "slurm", uuid: id };
}

/** The series names of a list of inputs (what discovery would have found). */
export function names(inputs: InputSeries[]): Set<string> {
  return new Set(inputs.map((i) => i.series.slice(0, i.series.indexOf("{"))));
}

function testYaml(files: string[], inputs: InputSeries[], exp: Expectation[], evalTime: string): string {
  const lines = [
    `rule_files: [${files.map((f) => JSON.stringify(f)).join(", ")}]`,
    "evaluation_interval: 15s",
    "tests:",
  ];
  lines.push("  - interval: 15s", "    input_series:");
  for (const i of inputs) lines.push(`      - series: '${i.series}'`, `        values: '${i.values}'`);
  lines.push("    promql_expr_test:");
  for (const e of exp) {
    lines.push(`      - expr: '${e.expr}'`, `        eval_time: ${evalTime}`, "        exp_samples:");
    for (const [l, v] of e.samples) lines.push(`          - labels: '${l}'`, `            value: ${v}`);
  }
  return lines.join("\n") + "\n";
}

/** Result of one `promtool test rules` run. */
export interface PromtoolResult {
  code: number;
  out: string;
  rules: Map<string, string>;
}

/**
 * Renders the rules for `jobs`, writes them and a test file with `inputs` and `exp` into a temporary
 * directory and runs `promtool test rules` (evaluated at 5 min). `mutate` may alter the rules text first.
 */
export async function promtoolTest(
  jobs: RulesJob[],
  opts: RulesOptions,
  inputs: InputSeries[],
  exp: Expectation[],
  mutate?: (text: string) => string,
): Promise<PromtoolResult> {
  const dir = await Deno.makeTempDir({ prefix: "ceems-rules-test-" });
  try {
    const rules = new Map<string, string>();
    for (const rj of jobs) {
      for (const f of jobRulesFiles(rj, opts)) {
        const text = renderRulesFile(f);
        rules.set(f.file, text);
        await Deno.writeTextFile(join(dir, f.file), mutate ? mutate(text) : text);
      }
    }
    await Deno.writeTextFile(join(dir, "test.yml"), testYaml([...rules.keys()], inputs, exp, "5m"));
    const o = await new Deno.Command("promtool", {
      args: ["test", "rules", "test.yml"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr), rules };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Options with a PUE, 15 s evaluation and the given emissions source. */
export function rulesOpts(pue: number, emissions: RulesOptions["emissions"] = { kind: "none" }): RulesOptions {
  return { pue, evalIntervalMs: 15_000, emissions };
}

/** Runs `promtoolTest` and asserts that every expectation holds (printing the rules when not). */
export async function expectPass(jobs: RulesJob[], o: RulesOptions, inputs: InputSeries[], exp: Expectation[]) {
  const r = await promtoolTest(jobs, o, inputs, exp);
  assertEquals(r.code, 0, `${r.out}\n${[...r.rules.values()].join("\n")}`);
  return r;
}

/** Emission factors FR owid 50 and rte 20 g/kWh as one exporter (labels `inst`) reports them. */
export function frFactors(inst: Record<string, string>): InputSeries[] {
  return [
    gauge("ceems_emissions_gCo2_kWh", {
      ...inst,
      provider: "owid",
      provider_name: "OWID",
      country_code: "FR",
      country: "France",
    }, 50),
    gauge("ceems_emissions_gCo2_kWh", {
      ...inst,
      provider: "rte",
      provider_name: "RTE eCO2 Mix",
      country_code: "FR",
      country: "France",
    }, 20),
  ];
}

/** The node `ceemsNode("n1:9010", "n1")` and its units A and B. */
export const N1 = { instance: "n1:9010", job: "ceems", hostname: "n1" };
export const UNIT_A = unitLabels("n1:9010", "n1", "A");
export const UNIT_B = unitLabels("n1:9010", "n1", "B");
