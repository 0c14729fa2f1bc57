// Discovery for the rules generator: which scrape jobs have CEEMS units, their node power source, the GPU
// exporter job on the same nodes (by instance host, as CEEMS pairs them), chosen Redfish chassis or hwmon
// chips, and whether node power readings include the GPUs.

import type { PrometheusApi } from "../prometheus_api.ts";
import { AMD_PROF, DCGM_PROF, GPU_POWER_METRICS } from "./gpu.ts";
import type { GpuKind, GpuSource, HostPower, HostPowerKind, RulesJob } from "./types.ts";
import { nodePowerSelector } from "./host.ts";
import { jobIs, withHost } from "./promql.ts";

/** Node power metrics in order of preference (newer CEEMS names of IPMI/Redfish readings accepted too). */
export const HOST_POWER: { kind: HostPowerKind; metrics: string[]; selectLabel?: string }[] = [
  { kind: "cray", metrics: ["ceems_cray_pm_counters_power_watts"] },
  {
    kind: "redfish",
    metrics: ["ceems_redfish_current_watts", "ceems_redfish_power_current_watts"],
    selectLabel: "chassis",
  },
  { kind: "ipmi", metrics: ["ceems_ipmi_dcmi_current_watts", "ceems_ipmi_dcmi_power_current_watts"] },
  { kind: "hwmon", metrics: ["ceems_hwmon_power_current_watts"], selectLabel: "chip" },
  { kind: "rapl", metrics: ["ceems_rapl_package_joules_total"] },
];

const CEEMS_SERIES = [
  "ceems_compute_unit_cpu_user_seconds_total",
  "ceems_compute_unit_cpu_system_seconds_total",
  "ceems_compute_unit_memory_used_bytes",
  "ceems_compute_unit_gpu_index_flag",
  "ceems_compute_unit_gpu_sm_count",
  "ceems_compute_units",
  "ceems_cpu_seconds_total",
  "ceems_cpu_count",
  "ceems_meminfo_MemTotal_bytes",
  "ceems_rapl_dram_joules_total",
  "ceems_gpu_power_watts",
  "ceems_emissions_gCo2_kWh",
  ...["read_bytes", "read_requests", "read_errors", "write_bytes", "write_requests", "write_errors"].map((k) =>
    `ceems_ebpf_${k}_total`
  ),
  ...["ingress_bytes", "ingress_packets", "egress_bytes", "egress_packets"].map((k) => `ceems_ebpf_${k}_total`),
  ...HOST_POWER.flatMap((h) => h.metrics),
];

const DCGM_SERIES = [
  "DCGM_FI_DEV_POWER_USAGE_INSTANT",
  "DCGM_FI_DEV_POWER_USAGE",
  "DCGM_FI_DEV_GPU_UTIL",
  "DCGM_FI_DEV_FB_USED",
  "DCGM_FI_DEV_FB_FREE",
  ...DCGM_PROF,
];
const AMD_SMI_SERIES = ["amd_gpu_power", "amd_gpu_use_percent", "amd_gpu_memory_use_percent"];
/** AMD device metrics exporter names (its metrics may carry an operator-chosen prefix). */
const AMD_DEV_SERIES = [
  "gpu_package_power",
  "gpu_gfx_activity",
  "gpu_used_vram",
  "gpu_total_vram",
  "gpu_used_gtt",
  "gpu_total_gtt",
  "gpu_used_visible_vram",
  "gpu_total_visible_vram",
  ...AMD_PROF,
];

/** What one scrape job holds. */
export interface JobInfo {
  job: string;
  names: Set<string>;
  hosts: Set<string>;
  /** Values of each label of interest per metric (chassis of Redfish readings, chips of hwmon ones). */
  labelValues: Map<string, Set<string>>;
}

/** Asks the operator to choose among several chassis/chips; returns the chosen values. */
export type Chooser = (what: { metric: string; label: string; job: string; values: string[] }) => Promise<string[]>;

function hostOf(instance: string): string {
  const m = /^(.*):\d+$/.exec(instance);
  return m ? m[1] : instance;
}

/** The series matchers discovery asks for. */
export function discoveryMatchers(): string[] {
  return [
    ...[...CEEMS_SERIES, ...DCGM_SERIES, ...AMD_SMI_SERIES].map((n) => `{__name__="${n}"}`),
    `{__name__=~".*(${AMD_DEV_SERIES.join("|")})"}`,
  ];
}

/** Groups series label sets by scrape job. */
export function jobsFromSeries(found: Record<string, string>[]): Map<string, JobInfo> {
  const jobs = new Map<string, JobInfo>();
  for (const s of found) {
    const job = s.job ?? "";
    let ji = jobs.get(job);
    if (!ji) jobs.set(job, ji = { job, names: new Set(), hosts: new Set(), labelValues: new Map() });
    ji.names.add(s.__name__);
    if (s.instance) ji.hosts.add(hostOf(s.instance));
    for (const label of ["chassis", "chip"]) {
      if (s[label] === undefined) continue;
      const key = `${s.__name__}/${label}`;
      if (!ji.labelValues.has(key)) ji.labelValues.set(key, new Set());
      ji.labelValues.get(key)!.add(s[label]);
    }
  }
  return jobs;
}

/** The GPU exporter kind of a job and its metric prefix, if it is one. */
export function gpuJobKind(ji: JobInfo): { kind: Exclude<GpuKind, "nvml">; prefix: string } | undefined {
  if (GPU_POWER_METRICS.dcgm.some((m) => ji.names.has(m))) return { kind: "dcgm", prefix: "" };
  if (ji.names.has("amd_gpu_power")) return { kind: "amd-smi", prefix: "" };
  for (const n of ji.names) {
    if (n.endsWith("gpu_package_power")) {
      return { kind: "amd-device-metrics", prefix: n.slice(0, -"gpu_package_power".length) };
    }
  }
  return undefined;
}

function unprefixed(ji: JobInfo, prefix: string): Set<string> {
  return new Set([...ji.names].map((n) => (prefix && n.startsWith(prefix) ? n.slice(prefix.length) : n)));
}

async function hostPowerOf(ji: JobInfo, choose: Chooser): Promise<HostPower | undefined> {
  for (const h of HOST_POWER) {
    const metric = h.metrics.find((m) => ji.names.has(m));
    if (!metric) continue;
    if (!h.selectLabel) return { kind: h.kind, metric };
    const values = [...(ji.labelValues.get(`${metric}/${h.selectLabel}`) ?? [])].sort();
    const chosen = values.length > 1 ? await choose({ metric, label: h.selectLabel, job: ji.job, values }) : values;
    return { kind: h.kind, metric, selectLabel: h.selectLabel, selectValues: chosen };
  }
  return undefined;
}

/** Options of discovery. */
export interface DiscoverOptions {
  start: number;
  end: number;
  /** Scrape interval per job (ms) and the global one for jobs without a target. */
  scrapeIntervals: Map<string, number>;
  globalScrapeMs: number;
  choose: Chooser;
  /** Asks whether a node power reading includes the GPUs (CEEMS's check, see `readingIncludesGpus`). */
  includesGpus: (rj: RulesJob) => Promise<boolean>;
}

/** The CEEMS jobs to write rules for, each with its power source and GPU source. */
export async function discoverJobs(found: Record<string, string>[], o: DiscoverOptions): Promise<RulesJob[]> {
  const jobs = jobsFromSeries(found);
  const gpuJobs = [...jobs.values()].map((ji) => ({ ji, g: gpuJobKind(ji) })).filter((x) => x.g);
  const out: RulesJob[] = [];
  for (const ji of [...jobs.values()].sort((a, b) => a.job.localeCompare(b.job))) {
    if (!ji.names.has("ceems_compute_unit_cpu_user_seconds_total")) continue;
    const hostPower = await hostPowerOf(ji, o.choose);
    if (!hostPower) continue;
    const rj: RulesJob = {
      job: ji.job,
      series: ji.names,
      scrapeIntervalMs: o.scrapeIntervals.get(ji.job) ?? o.globalScrapeMs,
      hostPower,
    };
    if (ji.names.has("ceems_compute_unit_gpu_index_flag")) {
      const pair = gpuJobs.find(({ ji: gj }) => [...gj.hosts].some((h) => ji.hosts.has(h)));
      let gpu: GpuSource | undefined;
      if (pair) {
        gpu = {
          kind: pair.g!.kind,
          job: pair.ji.job,
          prefix: pair.g!.prefix,
          series: unprefixed(pair.ji, pair.g!.prefix),
          inHostPower: false,
        };
      } else if (ji.names.has("ceems_gpu_power_watts")) {
        gpu = { kind: "nvml", job: ji.job, prefix: "", series: ji.names, inHostPower: false };
      }
      if (gpu) {
        rj.gpu = gpu;
        gpu.inHostPower = hostPower.kind !== "cray" && hostPower.kind !== "rapl" && await o.includesGpus(rj);
      }
    }
    out.push(rj);
  }
  return out;
}

/**
 * CEEMS's check whether node power includes GPU power: node power less GPU power, averaged over the
 * discovery window, is positive on every node (a reading that excludes the GPUs would not always exceed
 * them). The query text; the caller runs it as an instant query at the window's end.
 */
export function includesGpusQuery(nodeQuery: string, gpuByHost: string, windowS: number): string {
  const range = `${Math.max(60, Math.floor(windowS / 60) * 60)}s`;
  return `min(avg_over_time((${nodeQuery} - on (host) group_left () ${gpuByHost})[${range}:]))`;
}

/** Runs the check of `includesGpusQuery` against Prometheus. */
export async function readingIncludesGpus(
  api: PrometheusApi,
  rj: RulesJob,
  start: number,
  end: number,
): Promise<boolean> {
  const g = rj.gpu!;
  const node = `sum by (host) (${withHost(nodePowerSelector(rj))})`;
  const gj = jobIs(g.job);
  const gpu = g.kind === "nvml"
    ? `sum by (host) (${withHost(`ceems_gpu_power_watts{${gj},gpuiid=""}`)})`
    : g.kind === "dcgm"
    ? `sum by (host) (max by (host, UUID) (${
      withHost(`{__name__=~"DCGM_FI_DEV_POWER_USAGE_INSTANT|DCGM_FI_DEV_POWER_USAGE",${gj}}`)
    }))`
    : g.kind === "amd-smi"
    ? `sum by (host) (${withHost(`amd_gpu_power{${gj}}`)}) / 1e6`
    : `sum by (host) (max by (host, serial_number) (${withHost(`${g.prefix}gpu_package_power{${gj}}`)}))`;
  try {
    const v = await api.queryScalar(includesGpusQuery(node, gpu, end - start), end);
    return v !== undefined && v > 0;
  } catch {
    return false;
  }
}
