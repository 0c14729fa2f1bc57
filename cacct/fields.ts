// The fields of `ceems cacct` (CEEMS's names, API tags, titles and column widths) and the default, long
// and custom selections of them.

/** One field of the report. */
export interface Field {
  /** API field (units and usage resources). */
  tag: string;
  /** Name shown by --helpformat. */
  name: string;
  help: string;
  title: string;
  minW: number;
  maxW: number;
  /** Value formatting of metric maps: "%.2f" averages, "%f" totals. */
  kind: "text" | "avg" | "total";
}

/** Every field, keyed by its --format name, in report order. */
export const FIELDS: Record<string, Field> = {
  jobid: { tag: "uuid", name: "jobID", help: "Job ID", title: "Job ID", minW: 3, maxW: 7, kind: "text" },
  name: { tag: "name", name: "Name", help: "Name of the job", title: "Name", minW: 5, maxW: 8, kind: "text" },
  account: { tag: "project", name: "Account", help: "Account name", title: "Account", minW: 5, maxW: 8, kind: "text" },
  group: { tag: "groupname", name: "group", help: "Group name", title: "Group", minW: 5, maxW: 5, kind: "text" },
  user: { tag: "username", name: "user", help: "User name", title: "User", minW: 5, maxW: 5, kind: "text" },
  createdat: {
    tag: "created_at",
    name: "createdAt",
    help: "Job creation time",
    title: "Created",
    minW: 5,
    maxW: 8,
    kind: "text",
  },
  startedat: {
    tag: "started_at",
    name: "startedAt",
    help: "Job start time",
    title: "Started",
    minW: 5,
    maxW: 12,
    kind: "text",
  },
  endedat: { tag: "ended_at", name: "endedAt", help: "Job end time", title: "Ended", minW: 5, maxW: 12, kind: "text" },
  elapsed: {
    tag: "elapsed",
    name: "elapsed",
    help: "Job elapsed time",
    title: "Elapsed",
    minW: 5,
    maxW: 12,
    kind: "text",
  },
  state: { tag: "state", name: "state", help: "Job state", title: "State", minW: 5, maxW: 5, kind: "text" },
  cpuusage: {
    tag: "avg_cpu_usage",
    name: "cpuUsage",
    help: "Average CPU usage over the duration of the job",
    title: "CPU Usage(%)",
    minW: 5,
    maxW: 6,
    kind: "avg",
  },
  cpumemoryusage: {
    tag: "avg_cpu_mem_usage",
    name: "cpuMemoryUsage",
    help: "Average CPU memory usage over the duration of the job",
    title: "CPU Mem. Usage(%)",
    minW: 5,
    maxW: 6,
    kind: "avg",
  },
  hostenergy: {
    tag: "total_cpu_energy_usage_kwh",
    name: "hostEnergy",
    help: "Total energy usage by the host duration of the job",
    title: "Host Energy(kWh)",
    minW: 5,
    maxW: 8,
    kind: "total",
  },
  hostemissions: {
    tag: "total_cpu_emissions_gms",
    name: "hostEmissions",
    help: "Total eq. emissions due to host energy usage duration of the job",
    title: "Host Emissions(gms)",
    minW: 5,
    maxW: 12,
    kind: "total",
  },
  gpuusage: {
    tag: "avg_gpu_usage",
    name: "gpuUsage",
    help: "Average GPU(s) usage over the duration of the job",
    title: "GPU Usage(%)",
    minW: 5,
    maxW: 6,
    kind: "avg",
  },
  gpumemoryusage: {
    tag: "avg_gpu_mem_usage",
    name: "gpuMemoryUsage",
    help: "Average GPU(s) memory usage over the duration of the job",
    title: "GPU Mem. Usage(%)",
    minW: 5,
    maxW: 6,
    kind: "avg",
  },
  gpuenergy: {
    tag: "total_gpu_energy_usage_kwh",
    name: "gpuEnergy",
    help: "Total energy usage by the GPU(s) duration of the job",
    title: "GPU Energy(kWh)",
    minW: 5,
    maxW: 8,
    kind: "total",
  },
  gpuemissions: {
    tag: "total_gpu_emissions_gms",
    name: "gpuEmissions",
    help: "Total eq. emissions due to GPU(s) energy usage duration of the job",
    title: "GPU Emissions(gms)",
    minW: 5,
    maxW: 12,
    kind: "total",
  },
};

/** Every field, in report order (--long). */
export const ALL_FIELDS = Object.keys(FIELDS);

/** Fields shown without --format or --long. */
export const DEFAULT_FIELDS = [
  "jobid",
  "account",
  "elapsed",
  "cpuusage",
  "cpumemoryusage",
  "hostenergy",
  "hostemissions",
  "gpuusage",
  "gpumemoryusage",
  "gpuenergy",
  "gpuemissions",
];

/** The fields selected by --format (comma-separated, any case); throws naming an unknown one. */
export function selectFields(format: string, long: boolean): string[] {
  if (long) return ALL_FIELDS;
  const names = format.split(",").map((f) => f.trim().toLowerCase()).filter(Boolean);
  if (!names.length) return DEFAULT_FIELDS;
  for (const n of names) {
    if (!FIELDS[n]) throw new Error(`unknown field ${JSON.stringify(n)} (see --helpformat)`);
  }
  return names;
}
