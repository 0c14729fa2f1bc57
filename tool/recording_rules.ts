// Prometheus recording rules for per-unit power and emissions: node power (Cray, Redfish, IPMI, hwmon or
// RAPL) split over compute units by CPU time and memory share, plus GPU power through the GPU→unit map.

/** What Prometheus holds for one scrape job. */
export interface JobSeries {
  job: string;
  /** Metric names seen for the job. */
  series: Set<string>;
  /** Scrape interval of the job, in ms. */
  scrapeIntervalMs: number;
}

/** How emissions rules are made: live factors from the exporter's emissions collector, or a static one. */
export type EmissionsSource =
  | { kind: "providers"; countryCode: string; providers: string[] }
  | { kind: "static"; countryCode: string; provider: string; gCo2PerKWh: number }
  | { kind: "none" };

/** Options common to every job. */
export interface RulesOptions {
  pue: number;
  evalIntervalMs: number;
  emissions: EmissionsSource;
}

/** Node power metrics, in order of preference, with the selector narrowing each to node-level readings. */
export const hostPowerSources = [
  { name: "cray", metric: "ceems_cray_pm_counters_power_watts", selector: `,domain="node"` },
  { name: "redfish", metric: "ceems_redfish_current_watts", selector: "" },
  { name: "ipmi", metric: "ceems_ipmi_dcmi_current_watts", selector: "" },
  { name: "hwmon", metric: "ceems_hwmon_power_current_watts", selector: "" },
  { name: "rapl", metric: "ceems_rapl_package_joules_total", selector: "" },
] as const;

/** Metric names the generator looks for in Prometheus. */
export const discoveredSeries = [
  "ceems_compute_unit_cpu_user_seconds_total",
  "ceems_compute_unit_memory_used_bytes",
  "ceems_compute_unit_gpu_index_flag",
  "ceems_cpu_seconds_total",
  "ceems_meminfo_MemTotal_bytes",
  "ceems_rapl_dram_joules_total",
  "ceems_gpu_power_watts",
  "ceems_emissions_gCo2_kWh",
  ...hostPowerSources.map((s) => s.metric),
];

/** Prometheus duration text for a number of milliseconds ("4s", "2m", "1500ms"). */
export function promDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

interface Rule {
  record: string;
  expr: string;
  comment?: string;
}

/** Collapses the whitespace of an expression written over several lines. */
function q(s: string): string {
  return s.replace(/\s+/g, " ").replace(/\( /g, "(").replace(/ \)/g, ")").trim();
}

function yamlRules(groups: { name: string; interval: string; rules: Rule[] }[], header: string): string {
  const lines = [header, "groups:"];
  for (const g of groups) {
    lines.push(`  - name: ${g.name}`, `    interval: ${g.interval}`, "    rules:");
    for (const r of g.rules) {
      if (r.comment) { for (const c of r.comment.split("\n")) lines.push(`      # ${c}`); }
      lines.push(`      - record: ${r.record}`);
      if (r.expr.includes("\n")) {
        lines.push("        expr: |-", ...r.expr.split("\n").map((l) => `          ${l}`));
      } else lines.push(`        expr: ${JSON.stringify(r.expr)}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** The emissions rules turning a power series (watts) into g/s, one per factor source. */
function emissionsRules(record: string, powerSeries: string, job: string, em: EmissionsSource): Rule[] {
  const perJoule = `${powerSeries}{job="${job}"} / 3.6e+06`;
  if (em.kind === "providers") {
    return em.providers.map((p) => ({
      record,
      comment: `Emissions rate (g/s) with the ${p} factor for country ${em.countryCode}.`,
      expr: q(`label_replace(${perJoule}, "provider", "${p}", "", "")
        * on (provider) group_left ()
          max by (provider) (ceems_emissions_gCo2_kWh{country_code="${em.countryCode}",provider="${p}"})`),
    }));
  }
  if (em.kind === "static") {
    return [{
      record,
      comment: `Emissions rate (g/s) with a static factor of ${em.gCo2PerKWh} g/kWh (${em.provider}` +
        `${em.countryCode ? `, ${em.countryCode}` : ""}).`,
      expr: q(`label_replace(${perJoule}, "provider", "${em.provider}", "", "") * ${em.gCo2PerKWh}`),
    }];
  }
  return [];
}

/**
 * Renders the rules file for one scrape job, or undefined when the job has no compute units or no node power
 * source. Power of a unit = its share of node power:
 * - IPMI/Redfish/hwmon (whole node, GPUs included): GPU power is taken off first; 90 % of the rest is split by
 *   CPU time (and, with RAPL package+DRAM counters, between CPU and DRAM by their ratio, DRAM by memory share);
 *   the last 10 % (disks, network, fans) equally between the units on the node.
 * - Cray PM counters: the cpu domain by CPU time, the memory domain by memory share, the rest of the node
 *   (minus accelerators) equally.
 * - RAPL only: package power by CPU time, DRAM power by memory share.
 * GPU power of a unit = the GPU's power × the unit's GPU flag (1 for a whole GPU, a fraction for MIG/shards).
 */
export function renderJobRules(js: JobSeries, opts: RulesOptions): string | undefined {
  const { job, series } = js;
  if (!series.has("ceems_compute_unit_cpu_user_seconds_total")) return undefined;
  const source = hostPowerSources.find((s) => series.has(s.metric));
  if (!source) return undefined;
  const j = `job="${job}"`;
  const rate = promDuration(4 * js.scrapeIntervalMs);
  const pue = opts.pue;
  const hasRapl = series.has("ceems_rapl_package_joules_total") && series.has("ceems_rapl_dram_joules_total");
  const hasGpuPower = series.has("ceems_gpu_power_watts") && series.has("ceems_compute_unit_gpu_index_flag");
  const by = "sum by (job, instance, hostname)";
  const unitCpuRate = `(irate(ceems_compute_unit_cpu_user_seconds_total{${j}}[${rate}])
      + irate(ceems_compute_unit_cpu_system_seconds_total{${j}}[${rate}]))`;
  const nodeCpuRate = series.has("ceems_cpu_seconds_total")
    ? `sum by (instance) (irate(ceems_cpu_seconds_total{${j},mode!~"idle|iowait|steal"}[${rate}]))`
    : `sum by (instance) ${unitCpuRate}`;
  const cpuShare = `(${unitCpuRate} / on (instance) group_left () ${nodeCpuRate})`;
  const nodeMemUsed = series.has("ceems_meminfo_MemTotal_bytes")
    ? `(ceems_meminfo_MemTotal_bytes{${j}} - ceems_meminfo_MemAvailable_bytes{${j}})`
    : `sum by (instance) (ceems_compute_unit_memory_used_bytes{${j}})`;
  const memShare = `(ceems_compute_unit_memory_used_bytes{${j}} / on (instance) group_left () ${nodeMemUsed})`;
  // 1 / number of units, with each unit's labels.
  const perUnit = `((ceems_compute_unit_memory_used_bytes{${j}} >= bool 0)
      / on (instance) group_left () (ceems_compute_units{${j}} > 0))`;
  const raplRate = (kind: string) => `${by} (irate(ceems_rapl_${kind}_joules_total{${j}}[${rate}]))`;
  const gpuNodePower = `sum by (instance) (ceems_gpu_power_watts{${j},gpuiid=""})`;

  let hostPowerQuery: string;
  const terms: string[] = [];
  const nodeSeries = `instance:${source.metric}:pue`;
  const node = `${nodeSeries}{${j}}`;
  if (source.name === "rapl") {
    hostPowerQuery = series.has("ceems_rapl_dram_joules_total")
      ? `(${raplRate("package")} + ${raplRate("dram")})`
      : raplRate("package");
    terms.push(`${pue} * ${raplRate("package")} * on (instance) group_right () ${cpuShare}`);
    if (series.has("ceems_rapl_dram_joules_total")) {
      terms.push(`${pue} * ${raplRate("dram")} * on (instance) group_right () ${memShare}`);
    }
  } else if (source.name === "cray") {
    const dom = (d: string) => `${by} (ceems_cray_pm_counters_power_watts{${j},domain=~"${d}"})`;
    hostPowerQuery = dom("node");
    const rest = `(${dom("node")} - ${dom("cpu")} - ${dom("memory")}
        - on (instance) group_left () (${dom("accel.*")} or on (instance) 0 * ${dom("node")}))`;
    terms.push(
      `${pue} * ${dom("cpu")} * on (instance) group_right () ${cpuShare}`,
      `${pue} * ${dom("memory")} * on (instance) group_right () ${memShare}`,
      `${pue} * ${rest} * on (instance) group_right () ${perUnit}`,
    );
  } else {
    hostPowerQuery = `${by} (${source.metric}{${j}${source.selector}})`;
    // Node power without GPUs: GPU power goes to units through the GPU rules.
    const hostOnly = hasGpuPower
      ? `(${node} - on (instance) group_left () (${pue} * ${gpuNodePower} or on (instance) 0 * ${node}))`
      : node;
    const cpuPart = hasRapl
      ? `0.9 * ${hostOnly} * on (instance) group_left () (${raplRate("package")}
          / on (instance) (${raplRate("package")} + ${raplRate("dram")}))`
      : `0.9 * ${hostOnly}`;
    terms.push(`${cpuPart} * on (instance) group_right () ${cpuShare}`);
    if (hasRapl) {
      terms.push(`0.9 * ${hostOnly} * on (instance) group_left () (${raplRate("dram")}
          / on (instance) (${raplRate("package")} + ${raplRate("dram")}))
        * on (instance) group_right () ${memShare}`);
    }
    terms.push(`0.1 * ${hostOnly} * on (instance) group_right () ${perUnit}`);
  }

  const unitRules: Rule[] = [
    {
      record: "uuid:ceems_cpu_usage:ratio_irate",
      comment: "CPU usage (%) of the unit relative to its CPUs.",
      expr: q(`${unitCpuRate} * 100 / (ceems_compute_unit_cpus{${j}} > 0)`),
    },
    {
      record: "uuid:ceems_cpu_memory_usage:ratio",
      comment: "Memory usage (%) of the unit relative to its memory limit.",
      expr: q(`ceems_compute_unit_memory_used_bytes{${j}} * 100 / (ceems_compute_unit_memory_total_bytes{${j}} > 0)`),
    },
    {
      record: nodeSeries,
      comment: `Node power (W) from ${source.name}, times the PUE.`,
      expr: q(`${pue} * ${hostPowerQuery}`),
    },
    {
      record: "uuid:ceems_host_power_watts:pue",
      comment: "Host power (W, GPUs excluded) of the unit: its share of node power, times the PUE.",
      expr: terms.map((t) => `(${q(t)})`).join("\n+\n"),
    },
    ...emissionsRules("uuid:ceems_host_emissions_g_s:pue", "uuid:ceems_host_power_watts:pue", job, opts.emissions),
  ];
  if (hasGpuPower) {
    unitRules.push(
      {
        record: "dev:ceems_gpu_power_watts:pue",
        comment: "Power (W) of each physical GPU, times the PUE.",
        expr: q(`${pue} * ceems_gpu_power_watts{${j},gpuiid=""}`),
      },
      {
        record: "uuid:ceems_gpu_power_watts:pue",
        comment: "GPU power (W) of the unit: each GPU's power times the unit's flag on it (a MIG/shard fraction).",
        expr: q(`ceems_compute_unit_gpu_index_flag{${j}}
          * on (instance, gpuuuid) group_left () dev:ceems_gpu_power_watts:pue{${j}}`),
      },
      ...emissionsRules("uuid:ceems_gpu_emissions_g_s:pue", "uuid:ceems_gpu_power_watts:pue", job, opts.emissions),
    );
  }
  const aggRules: Rule[] = [
    {
      record: "job:ceems_host_power_watts:pue",
      comment: "Node power (W) of all hosts of the job, times the PUE.",
      expr: q(`sum by (job) (${node})`),
    },
  ];
  if (hasGpuPower) {
    aggRules.push({
      record: "job:ceems_gpu_power_watts:pue",
      comment: "GPU power (W) of all hosts of the job, times the PUE.",
      expr: q(`sum by (job) (dev:ceems_gpu_power_watts:pue{${j}})`),
    });
  }
  const header = `# Recording rules for scrape job ${job}, generated by 'ceems tool tsdb create-recording-rules'.
# Node power source: ${source.metric}; rate window ${rate} (4 × scrape interval); PUE ${pue}.
# Unit power splits node power by CPU time (and memory share where DRAM power is known); see README.`;
  return yamlRules([
    { name: `compute-unit-rules-${job}`, interval: promDuration(opts.evalIntervalMs), rules: unitRules },
    { name: `host-agg-rules-${job}`, interval: promDuration(opts.evalIntervalMs), rules: aggRules },
  ], header);
}
