// GPU rules: per-unit GPU usage, memory usage, power and emissions, and per-job aggregates, from the
// CEEMS exporter's NVML collector, NVIDIA's DCGM exporter, AMD's SMI exporter or AMD's device metrics
// exporter. GPU series are joined to units through `ceems_compute_unit_gpu_index_flag` by GPU UUID (and
// MIG/partition id), or, for the AMD SMI exporter that has no UUID, by node and GPU index.

import { jobEmissionsRules, unitEmissionsRules } from "./emissions.ts";
import { copyLabel, jobIs, sel, withHost, withoutHost } from "./promql.ts";
import type { GpuSource, Rule, RuleGroup, RulesJob, RulesOptions } from "./types.ts";

const FLAG = "ceems_compute_unit_gpu_index_flag";

/** DCGM profiling metrics recorded per unit (bytes counters as rates, the others as percentages). */
export const DCGM_PROF = [
  "DCGM_FI_PROF_SM_ACTIVE",
  "DCGM_FI_PROF_SM_OCCUPANCY",
  "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
  "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
  "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
  "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
  "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
  "DCGM_FI_PROF_DRAM_ACTIVE",
  "DCGM_FI_PROF_NVLINK_TX_BYTES",
  "DCGM_FI_PROF_NVLINK_RX_BYTES",
  "DCGM_FI_PROF_PCIE_TX_BYTES",
  "DCGM_FI_PROF_PCIE_RX_BYTES",
];

/** AMD device metrics exporter profiling metrics recorded per unit (names without the exporter's prefix). */
export const AMD_PROF = [
  "gpu_prof_sm_active",
  "gpu_prof_occupancy_elapsed",
  "gpu_prof_occupancy_per_active_cu",
  "gpu_prof_tensor_active_percent",
  "gpu_prof_occupancy_percent",
  "gpu_prof_total_16_ops",
  "gpu_prof_total_32_ops",
  "gpu_prof_total_64_ops",
  "gpu_prof_write_size",
  "gpu_prof_fetch_size",
];

/** Metrics that identify each GPU exporter (names without prefix). */
export const GPU_POWER_METRICS: Record<Exclude<GpuSource["kind"], "nvml">, string[]> = {
  "dcgm": ["DCGM_FI_DEV_POWER_USAGE_INSTANT", "DCGM_FI_DEV_POWER_USAGE"],
  "amd-smi": ["amd_gpu_power"],
  "amd-device-metrics": ["gpu_package_power"],
};

/** How one GPU exporter is read: its series relabelled to CEEMS's GPU labels and the join keys. */
interface GpuDialect {
  /** `m{job=…}` with `gpuuuid`/`gpuiid` (or `host`/`index`) labels added. */
  relabel(metric: string): string;
  /** Labels that identify one GPU (instance) on both sides of the join. */
  keys: string;
  /** The unit's GPU map with the join labels. */
  flag: string;
  /** Key of a physical GPU (for power, reported once per device). */
  deviceKey: string;
  /** Removes helper labels from a per-unit result. */
  clean(v: string): string;
  usage?: string;
  memory: { labels?: Record<string, string>; expr: string }[];
  powerRecord: string;
  power: string;
  jobUsage?: string;
  jobMemory: { labels?: Record<string, string>; expr: string }[];
  jobPower: string;
  prof: { record: string; expr: string }[];
}

function dialect(rj: RulesJob, g: GpuSource, pue: number): GpuDialect {
  const gj = jobIs(g.job);
  const flag = sel(FLAG, jobIs(rj.job));
  const has = (m: string) => g.series.has(m);
  /**
   * Join of exporters that label GPUs by UUID (or serial) and instance id, as CEEMS's GPU map does. The flag's
   * `gpuiid` goes through the same `label_replace` as the exporter's: a no-op in Prometheus, while in
   * VictoriaMetrics a non-matching `label_replace` leaves an explicit empty `gpuiid` on a whole GPU, which
   * MetricsQL then matches only against an explicit empty one.
   */
  const byUuid = {
    keys: "gpuuuid, gpuiid",
    flag: copyLabel(flag, "gpuiid", "gpuiid"),
    deviceKey: "gpuuuid",
    clean: (v: string) => v,
  };
  if (g.kind === "nvml") {
    return {
      relabel: (m) => sel(m, gj),
      keys: "instance, gpuuuid",
      flag,
      deviceKey: "instance, gpuuuid",
      clean: (v) => v,
      memory: [],
      powerRecord: "dev:ceems_gpu_power_watts:pue",
      power: `${pue} * ${sel("ceems_gpu_power_watts", gj, `gpuiid=""`)}`,
      jobMemory: [],
      jobPower: `sum by (job) (${sel("dev:ceems_gpu_power_watts:pue", gj)})`,
      prof: [],
    };
  }
  if (g.kind === "dcgm") {
    const relabel = (m: string) => copyLabel(copyLabel(sel(m, gj), "UUID", "gpuuuid"), "GPU_I_ID", "gpuiid");
    const powerMetric = has("DCGM_FI_DEV_POWER_USAGE_INSTANT")
      ? "DCGM_FI_DEV_POWER_USAGE_INSTANT"
      : "DCGM_FI_DEV_POWER_USAGE";
    const gr = has("DCGM_FI_PROF_GR_ENGINE_ACTIVE");
    const mem = `(${relabel("DCGM_FI_DEV_FB_USED")} * 100 / (${relabel("DCGM_FI_DEV_FB_USED")} + ${
      relabel("DCGM_FI_DEV_FB_FREE")
    }))`;
    return {
      ...byUuid,
      relabel,
      usage: gr ? `${relabel("DCGM_FI_PROF_GR_ENGINE_ACTIVE")} * 100` : relabel("DCGM_FI_DEV_GPU_UTIL"),
      memory: has("DCGM_FI_DEV_FB_USED") ? [{ expr: mem }] : [],
      powerRecord: `dev:${powerMetric}:pue`,
      power: `${pue} * ${relabel(powerMetric)}`,
      jobUsage: has("DCGM_FI_DEV_GPU_UTIL") ? `avg by (job) (${sel("DCGM_FI_DEV_GPU_UTIL", gj)})` : undefined,
      jobMemory: has("DCGM_FI_DEV_FB_USED")
        ? [{
          expr: `avg by (job) (${sel("DCGM_FI_DEV_FB_USED", gj)} * 100 / (${sel("DCGM_FI_DEV_FB_USED", gj)} + ${
            sel("DCGM_FI_DEV_FB_FREE", gj)
          }))`,
        }]
        : [],
      jobPower: `sum by (job) (max by (job, instance, gpuuuid) (${sel(`dev:${powerMetric}:pue`, gj)}))`,
      prof: DCGM_PROF.filter(has).map((m) => {
        const name = m.replace(/^DCGM_FI_(PROF_)?/, "").toLowerCase();
        const bytes = m.endsWith("_BYTES");
        return {
          record: `uuid:ceems_gpu_${name}:${bytes ? "rate" : "ratio"}`,
          expr: `${relabel(m)}${bytes ? "" : " * 100"}`,
        };
      }),
    };
  }
  if (g.kind === "amd-smi") {
    // The exporter names each metric's GPU index label after the metric (gpu_power="0", ...).
    const relabel = (m: string, idx = m.replace(/^amd_/, "")) => copyLabel(withHost(sel(m, gj)), idx, "index");
    return {
      relabel,
      keys: "host, index",
      flag: withHost(flag),
      deviceKey: "host, index",
      clean: withoutHost,
      usage: has("amd_gpu_use_percent") ? relabel("amd_gpu_use_percent") : undefined,
      memory: has("amd_gpu_memory_use_percent") ? [{ expr: relabel("amd_gpu_memory_use_percent") }] : [],
      powerRecord: "dev:amd_gpu_power_watts:pue",
      power: `${pue} * ${relabel("amd_gpu_power")} / 1e6`,
      jobUsage: has("amd_gpu_use_percent") ? `avg by (job) (${sel("amd_gpu_use_percent", gj)})` : undefined,
      jobMemory: has("amd_gpu_memory_use_percent")
        ? [{ expr: `avg by (job) (${sel("amd_gpu_memory_use_percent", gj)})` }]
        : [],
      jobPower: `sum by (job) (${sel("dev:amd_gpu_power_watts:pue", gj)})`,
      prof: [],
    };
  }
  // AMD device metrics exporter: GPU serial number and partition id, power on partition 0 only.
  const px = g.prefix;
  const relabel = (m: string) =>
    copyLabel(copyLabel(sel(px + m, gj), "serial_number", "gpuuuid"), "gpu_partition_id", "gpuiid");
  const memTypes = [["vram", "vram"], ["gtt", "gtt"], ["visiblevram", "visible_vram"]].filter(([, k]) =>
    has(`gpu_used_${k}`) && has(`gpu_total_${k}`)
  );
  return {
    ...byUuid,
    relabel,
    usage: has("gpu_gfx_activity") ? relabel("gpu_gfx_activity") : undefined,
    memory: memTypes.map(([t, k]) => ({
      labels: { type: t },
      expr: `(${relabel(`gpu_used_${k}`)} * 100 / (${relabel(`gpu_total_${k}`)} > 0))`,
    })),
    powerRecord: "dev:gpu_power_usage_watts:pue",
    power: `${pue} * ${relabel("gpu_package_power")}`,
    jobUsage: has("gpu_gfx_activity") ? `avg by (job) (${sel(px + "gpu_gfx_activity", gj)})` : undefined,
    jobMemory: memTypes.map(([t, k]) => ({
      labels: { type: t },
      expr: `avg by (job) (${sel(`${px}gpu_used_${k}`, gj)} * 100 / (${sel(`${px}gpu_total_${k}`, gj)} > 0))`,
    })),
    jobPower: `sum by (job) (max by (job, instance, gpuuuid) (${sel("dev:gpu_power_usage_watts:pue", gj)}))`,
    prof: AMD_PROF.filter(has).map((m) => {
      const name = m.replace(/^gpu_(prof_)?/, "");
      const ratio = m.includes("active") || m.includes("percent");
      return { record: `uuid:ceems_gpu_${name}:${ratio ? "ratio" : "sum"}`, expr: relabel(m) };
    }),
  };
}

/** `value(per GPU) * on (keys) group_right () (flag > bool 0)`: a GPU reading with the unit's labels. */
function perUnit(d: GpuDialect, value: string): string {
  return d.clean(`max by (${d.keys}) (${value})\n  * on (${d.keys}) group_right ()\n    (${d.flag} > bool 0)`);
}

/**
 * GPU groups for a CEEMS job with a GPU source: the per-unit group (labelled as the CEEMS job's units) and
 * the per-job aggregates of the GPU job. Power of a unit = its GPU's power × the unit's flag on it (1 for a
 * whole GPU, the MIG/shard fraction otherwise).
 */
export function gpuGroups(rj: RulesJob, opts: RulesOptions): RuleGroup[] {
  const g = rj.gpu!;
  const d = dialect(rj, g, opts.pue);
  const gj = jobIs(g.job);
  const unit: Rule[] = [];
  if (d.usage) {
    unit.push({
      record: "uuid:ceems_gpu_usage:ratio",
      comment: "GPU usage (%) of the unit's GPUs.",
      expr: perUnit(d, d.usage),
    });
  }
  for (const m of d.memory) {
    unit.push({
      record: "uuid:ceems_gpu_memory_usage:ratio",
      comment: "GPU memory usage (%) of the unit's GPUs.",
      labels: m.labels,
      expr: perUnit(d, m.expr),
    });
  }
  unit.push(
    { record: d.powerRecord, comment: "Power (W) of each GPU, times the PUE.", expr: d.power },
    {
      record: "uuid:ceems_gpu_power_watts:pue",
      comment: "GPU power (W) of the unit: each GPU's power times the unit's flag on it, times the PUE.",
      expr: d.clean(
        `${d.flag}\n  * on (${d.deviceKey}) group_left ()\n    max by (${d.deviceKey}) (${sel(d.powerRecord, gj)})`,
      ),
    },
    {
      record: "instance:ceems_gpu_power_watts:pue",
      comment: "GPU power (W × PUE) of each node, keyed by the CEEMS exporter's instance (taken off node power).",
      expr: g.kind === "nvml"
        ? `sum by (job, instance) (${sel(d.powerRecord, gj)})`
        : `sum by (job, instance) (\n  ${
          withHost(`max by (job, instance) (${sel("ceems_compute_units", jobIs(rj.job))} >= bool 0)`)
        }\n  * on (host) group_left ()\n    sum by (host) (${
          withHost(`max by (instance, ${d.deviceKey.replace("host, ", "")}) (${sel(d.powerRecord, gj)})`)
        })\n)`,
    },
    ...unitEmissionsRules("uuid:ceems_gpu_emissions_g_s:pue", "uuid:ceems_gpu_power_watts:pue", rj.job, opts.emissions),
    ...d.prof.map((p) => ({
      record: p.record,
      comment: "Profiling metric of the unit's GPUs.",
      expr: perUnit(d, p.expr),
    })),
  );
  const agg: Rule[] = [];
  if (d.jobUsage) {
    agg.push({
      record: "job:ceems_gpu_usage:avg",
      comment: "Average GPU usage (%) of the job's GPUs.",
      expr: d.jobUsage,
    });
  }
  for (const m of d.jobMemory) {
    agg.push({
      record: "job:ceems_gpu_memory_usage:avg_ratio",
      comment: "Average GPU memory usage (%) of the job's GPUs.",
      labels: m.labels,
      expr: m.expr,
    });
  }
  agg.push(
    {
      record: "job:ceems_gpu_power_watts:pue",
      comment: "Power (W) of all GPUs of the job, times the PUE.",
      expr: d.jobPower,
    },
    ...jobEmissionsRules("job:ceems_gpu_emissions_g_s:pue", "job:ceems_gpu_power_watts:pue", g.job, opts.emissions),
  );
  return [
    { name: `compute-unit-gpu-rules-${g.job}`, intervalMs: opts.evalIntervalMs, rules: unit },
    { name: `host-agg-gpu-rules-${g.job}`, intervalMs: opts.evalIntervalMs, rules: agg },
  ];
}
