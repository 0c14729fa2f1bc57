// Data model of the API server: compute units, users, projects and usage rows with CEEMS's column
// names (snake_case, as stored in SQLite and returned in JSON), and the metric-map helpers.

/** A metric map such as {"global": 12.5} or {"rte_total": 1, "emaps_total": 2}. */
export type MetricMap = Record<string, number>;

/** Metric columns whose values are metric maps, in CEEMS's struct order. */
export const METRIC_COLUMNS = [
  "total_time_seconds",
  "avg_cpu_usage",
  "avg_cpu_mem_usage",
  "total_cpu_energy_usage_kwh",
  "total_cpu_emissions_gms",
  "avg_gpu_usage",
  "avg_gpu_mem_usage",
  "total_gpu_energy_usage_kwh",
  "total_gpu_emissions_gms",
  "total_io_write_stats",
  "total_io_read_stats",
  "total_ingress_stats",
  "total_egress_stats",
] as const;

/** Name of one metric column. */
export type MetricColumn = typeof METRIC_COLUMNS[number];

/** Averaged metric columns and the total_time_seconds key that weights them. */
export const AVG_WEIGHTS: Record<string, string> = {
  avg_cpu_usage: "alloc_cputime",
  avg_cpu_mem_usage: "alloc_cpumemtime",
  avg_gpu_usage: "alloc_gputime",
  avg_gpu_mem_usage: "alloc_gpumemtime",
};

/** One compute unit (SLURM job, OpenStack VM, k8s pod). */
export interface Unit {
  cluster_id: string;
  resource_manager: string;
  uuid: string;
  name: string;
  project: string;
  groupname: string;
  username: string;
  created_at: string;
  started_at: string;
  ended_at: string;
  created_at_ts: number;
  started_at_ts: number;
  ended_at_ts: number;
  elapsed: string;
  state: string;
  allocation: Record<string, unknown>;
  tags: Record<string, unknown>;
  total_time_seconds: MetricMap;
  avg_cpu_usage?: MetricMap;
  avg_cpu_mem_usage?: MetricMap;
  total_cpu_energy_usage_kwh?: MetricMap;
  total_cpu_emissions_gms?: MetricMap;
  avg_gpu_usage?: MetricMap;
  avg_gpu_mem_usage?: MetricMap;
  total_gpu_energy_usage_kwh?: MetricMap;
  total_gpu_emissions_gms?: MetricMap;
  total_io_write_stats?: MetricMap;
  total_io_read_stats?: MetricMap;
  total_ingress_stats?: MetricMap;
  total_egress_stats?: MetricMap;
  /** True for units shorter than an updater's cutoff: hidden from the API. */
  ignore?: boolean;
}

/** Fields of a usage row (the usage table and API responses), in CEEMS's struct order. */
export const USAGE_FIELDS = [
  "cluster_id",
  "resource_manager",
  "num_units",
  "project",
  "groupname",
  "username",
  ...METRIC_COLUMNS,
];

/** Field order of a Unit in API responses (CEEMS's struct order). */
export const UNIT_FIELDS = [
  "cluster_id",
  "resource_manager",
  "uuid",
  "name",
  "project",
  "groupname",
  "username",
  "created_at",
  "started_at",
  "ended_at",
  "created_at_ts",
  "started_at_ts",
  "ended_at_ts",
  "elapsed",
  "state",
  "allocation",
  ...METRIC_COLUMNS,
  "tags",
] as const;

/** A user of one cluster and the projects they belong to. */
export interface User {
  uid: string;
  cluster_id: string;
  resource_manager: string;
  name: string;
  projects: string[];
  tags: string[];
}

/** A project of one cluster and its members. */
export interface Project {
  uid: string;
  cluster_id: string;
  resource_manager: string;
  name: string;
  users: string[];
  tags: string[];
}

/** Adds `b` into `a` key-wise. */
export function addMaps(a: MetricMap | undefined, b: MetricMap | undefined): MetricMap {
  const out: MetricMap = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = (out[k] ?? 0) + (Number.isFinite(v) ? v : 0);
  return out;
}

/** Key-wise weighted mean of `a` (weight wa) and `b` (weight wb). */
export function avgMaps(a: MetricMap | undefined, b: MetricMap | undefined, wa: number, wb: number): MetricMap {
  const out: MetricMap = {};
  const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
  for (const k of keys) {
    const va = a?.[k];
    const vb = b?.[k];
    if (va === undefined) out[k] = vb!;
    else if (vb === undefined) out[k] = va;
    else out[k] = wa + wb > 0 ? (va * wa + vb * wb) / (wa + wb) : (va + vb) / 2;
    if (!Number.isFinite(out[k])) out[k] = 0;
  }
  return out;
}

/** Formats epoch ms as Go's "2006-01-02T15:04:05-0700" in a fixed UTC offset (minutes east). */
export function formatTime(ms: number, offsetMin: number): string {
  const d = new Date(ms + offsetMin * 60_000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const sign = offsetMin < 0 ? "-" : "+";
  const a = Math.abs(offsetMin);
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${
    p(d.getUTCMinutes())
  }:${p(d.getUTCSeconds())}${sign}${p(Math.floor(a / 60))}${p(a % 60)}`;
}

/** UTC offset in minutes of `timeZone` ("Local" = the process's zone) at instant `ms`. */
export function zoneOffset(timeZone: string, ms: number): number {
  if (timeZone === "Local" || !timeZone) return -new Date(ms).getTimezoneOffset();
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const g = (t: string) => Number(parts.find((p) => p.type === t)!.value);
  const asUtc = Date.UTC(g("year"), g("month") - 1, g("day"), g("hour"), g("minute"), g("second"));
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000);
}
