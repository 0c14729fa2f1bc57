// `ceems tool tsdb create-relabel-configs`: metric_relabel_configs that give the GPU exporters' series
// CEEMS's GPU labels (DCGM UUID/GPU_I_ID → gpuuuid/gpuiid, AMD gpu_id/gpu_partition_id → index/gpuiid).
// The generated recording rules relabel by themselves, so these are only for queries on the raw series.

import { stringify } from "yaml";
import { StartupError } from "../common/cli.ts";
import { prometheusCommand } from "./common.ts";
import { gpuJobKind, jobsFromSeries } from "./rules/discover.ts";

/** One metric_relabel_configs entry. */
export interface RelabelConfig {
  source_labels?: string[];
  target_label?: string;
  regex: string;
  replacement?: string;
  action: "replace" | "labeldrop";
}

const replace = (source: string[], target: string, regex: string, replacement: string): RelabelConfig => ({
  source_labels: source,
  target_label: target,
  regex,
  replacement,
  action: "replace",
});
const drop = (label: string): RelabelConfig => ({ regex: label, action: "labeldrop" });

/** The relabel configs for a GPU exporter kind (CEEMS's). */
export function relabelConfigsFor(kind: "dcgm" | "amd-smi" | "amd-device-metrics"): RelabelConfig[] {
  if (kind === "dcgm") {
    // Only DCGM series carry modelName "NVIDIA…", so CEEMS's own gpuuuid/gpuiid labels are left alone.
    return [
      replace(["modelName", "UUID"], "gpuuuid", "NVIDIA(.*);(.*)", "$2"),
      replace(["modelName", "GPU_I_ID"], "gpuiid", "NVIDIA(.*);(.*)", "$2"),
      drop("UUID"),
      drop("GPU_I_ID"),
    ];
  }
  if (kind === "amd-smi") {
    // The exporter names each metric's GPU index label after the metric.
    return [
      replace(["gpu_power"], "index", "(.*)", "$1"),
      replace(["index", "gpu_use_percent"], "index", ";(.+)", "$1"),
      replace(["index", "gpu_memory_use_percent"], "index", ";(.+)", "$1"),
      drop("gpu_power"),
      drop("gpu_use_percent"),
      drop("gpu_memory_use_percent"),
    ];
  }
  return [
    replace(["gpu_id"], "index", "(.*)", "$1"),
    replace(["gpu_partition_id"], "gpuiid", "(.*)", "$1"),
    drop("gpu_id"),
    drop("gpu_partition_id"),
  ];
}

/** Runs `tool tsdb create-relabel-configs <args>`: prints the scrape_configs to merge on stdout. */
export async function createRelabelConfigs(args: string[]): Promise<void> {
  const { fs, api, start, end } = prometheusCommand(
    "tsdb create-relabel-configs",
    "Create Prometheus relabel configs for GPU exporters.",
    args,
  );
  let found;
  try {
    found = await api.series(
      ['{__name__=~"DCGM_FI_DEV_POWER_USAGE_INSTANT|DCGM_FI_DEV_POWER_USAGE|amd_gpu_power|.*gpu_package_power"}'],
      start,
      end,
    );
  } catch (e) {
    throw new StartupError(`querying Prometheus at ${fs.string("url")}: ${(e as Error).message}`);
  }
  const scrapeConfigs = [];
  for (const ji of [...jobsFromSeries(found).values()].sort((a, b) => a.job.localeCompare(b.job))) {
    const g = gpuJobKind(ji);
    if (g) scrapeConfigs.push({ job_name: ji.job, metric_relabel_configs: relabelConfigsFor(g.kind) });
  }
  console.error("Merge the following metric_relabel_configs into the scrape configs of the same jobs:");
  Deno.stdout.writeSync(new TextEncoder().encode(stringify({ scrape_configs: scrapeConfigs }, { indent: 2 })));
  console.error(
    "The recording rules of 'ceems tool tsdb create-recording-rules' relabel these series themselves: " +
      "the configs above are only needed to query the raw GPU series by gpuuuid/gpuiid.",
  );
}
