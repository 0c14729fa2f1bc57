// `ceems tool tsdb create-ceems-tsdb-updater-queries`: the `queries` of the API server's TSDB updater for
// the recording-rule series and eBPF counters Prometheus holds, one emissions sub-key per provider found.

import { stringify } from "yaml";
import { StartupError } from "../common/cli.ts";
import { prometheusCommand } from "./common.ts";
import { str } from "./rules/promql.ts";

const SEL = `{uuid=~"{{.UUIDs}}"}`;
const avg = (s: string) => `avg_over_time(avg by (uuid) (${s}${SEL} >= 0 < inf)[{{.Range}}:])`;
const energy = (s: string) =>
  `sum_over_time(sum by (uuid) (${s}${SEL} >= 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 3.6e9`;
const grams = (s: string, p: string) =>
  `sum_over_time(sum by (uuid) (${s}{uuid=~"{{.UUIDs}}",provider=${
    str(p)
  }} >= 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 1e3`;
const total = (s: string) => `sum by (uuid) (increase(${s}${SEL}[{{.Range}}]) >= 0 < inf)`;

/** The updater queries for the series found and the emission providers of the per-unit emissions series. */
export function updaterQueries(found: Set<string>, providers: string[]): Record<string, Record<string, string>> {
  const q: Record<string, Record<string, string>> = {};
  const add = (metric: string, sub: string, series: string, text: string) => {
    if (!found.has(series)) return;
    (q[metric] ??= {})[sub] = text;
  };
  add("avg_cpu_usage", "global", "uuid:ceems_cpu_usage:ratio_irate", avg("uuid:ceems_cpu_usage:ratio_irate"));
  add("avg_cpu_mem_usage", "global", "uuid:ceems_cpu_memory_usage:ratio", avg("uuid:ceems_cpu_memory_usage:ratio"));
  add(
    "total_cpu_energy_usage_kwh",
    "total",
    "uuid:ceems_host_power_watts:pue",
    energy("uuid:ceems_host_power_watts:pue"),
  );
  for (const p of providers) {
    add(
      "total_cpu_emissions_gms",
      `${p}_total`,
      "uuid:ceems_host_emissions_g_s:pue",
      grams("uuid:ceems_host_emissions_g_s:pue", p),
    );
  }
  add("avg_gpu_usage", "global", "uuid:ceems_gpu_usage:ratio", avg("uuid:ceems_gpu_usage:ratio"));
  add("avg_gpu_mem_usage", "global", "uuid:ceems_gpu_memory_usage:ratio", avg("uuid:ceems_gpu_memory_usage:ratio"));
  add(
    "total_gpu_energy_usage_kwh",
    "total",
    "uuid:ceems_gpu_power_watts:pue",
    energy("uuid:ceems_gpu_power_watts:pue"),
  );
  for (const p of providers) {
    add(
      "total_gpu_emissions_gms",
      `${p}_total`,
      "uuid:ceems_gpu_emissions_g_s:pue",
      grams("uuid:ceems_gpu_emissions_g_s:pue", p),
    );
  }
  for (const d of ["read", "write"]) {
    for (const k of ["bytes", "requests", "errors"]) {
      add(`total_io_${d}_stats`, `${k}_total`, `ceems_ebpf_${d}_${k}_total`, total(`ceems_ebpf_${d}_${k}_total`));
    }
  }
  for (const d of ["ingress", "egress"]) {
    for (const k of ["bytes", "packets"]) {
      add(`total_${d}_stats`, `${k}_total`, `ceems_ebpf_${d}_${k}_total`, total(`ceems_ebpf_${d}_${k}_total`));
    }
  }
  return q;
}

/** Series the queries read. */
export const UPDATER_SERIES = [
  "uuid:ceems_cpu_usage:ratio_irate",
  "uuid:ceems_cpu_memory_usage:ratio",
  "uuid:ceems_host_power_watts:pue",
  "uuid:ceems_host_emissions_g_s:pue",
  "uuid:ceems_gpu_usage:ratio",
  "uuid:ceems_gpu_memory_usage:ratio",
  "uuid:ceems_gpu_power_watts:pue",
  "uuid:ceems_gpu_emissions_g_s:pue",
  ...["read", "write"].flatMap((d) => ["bytes", "requests", "errors"].map((k) => `ceems_ebpf_${d}_${k}_total`)),
  ...["ingress", "egress"].flatMap((d) => ["bytes", "packets"].map((k) => `ceems_ebpf_${d}_${k}_total`)),
];

/** Runs `tool tsdb create-ceems-tsdb-updater-queries <args>`: prints the queries block on stdout. */
export async function createUpdaterQueries(args: string[]): Promise<void> {
  const { fs, api, start, end } = prometheusCommand(
    "tsdb create-ceems-tsdb-updater-queries",
    "Create CEEMS API TSDB updater queries.",
    args,
  );
  let found: Set<string>, providers: string[];
  try {
    const series = await api.series(UPDATER_SERIES.map((s) => `{__name__="${s}"}`), start, end);
    found = new Set(series.map((s) => s.__name__));
    providers = [
      ...new Set([
        ...await api.labelValues("provider", "uuid:ceems_host_emissions_g_s:pue", start, end),
        ...await api.labelValues("provider", "uuid:ceems_gpu_emissions_g_s:pue", start, end),
      ]),
    ].sort();
  } catch (e) {
    throw new StartupError(`querying Prometheus at ${fs.string("url")}: ${(e as Error).message}`);
  }
  console.error("Queries for the TSDB updater (extra_config.queries of an `updater: tsdb` entry):");
  Deno.stdout.writeSync(
    new TextEncoder().encode(stringify({ queries: updaterQueries(found, providers) }, { indent: 2, lineWidth: 0 })),
  );
}
