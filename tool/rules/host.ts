// Host rules of one CEEMS scrape job: per-unit CPU and memory usage, node power from the job's power
// source (Cray, Redfish, IPMI, hwmon or RAPL) split over the units on each node, and per-job aggregates.

import { jobEmissionsRules, unitEmissionsRules } from "./emissions.ts";
import { irate, jobIs, sel, str } from "./promql.ts";
import { promDuration, type Rule, type RuleGroup, type RulesJob, type RulesOptions } from "./types.ts";

/** Series name of node power recorded per instance (`instance:<metric>:pue`). */
export function instancePowerSeries(rj: RulesJob): string {
  return `instance:${rj.hostPower.metric}:pue`;
}

/** PromQL pieces shared by the host rules of one job. */
function pieces(rj: RulesJob) {
  const j = jobIs(rj.job);
  const w = promDuration(4 * rj.scrapeIntervalMs);
  const s = rj.series;
  const unitCpu = `(\n    ${irate(sel("ceems_compute_unit_cpu_user_seconds_total", j), w)}\n  + ${
    irate(sel("ceems_compute_unit_cpu_system_seconds_total", j), w)
  }\n)`;
  const nodeBusy = s.has("ceems_cpu_seconds_total")
    ? `sum by (instance) (${irate(sel("ceems_cpu_seconds_total", j, `mode!~"idle|iowait|steal"`), w)})`
    : `sum by (instance) ${unitCpu}`;
  const memUsed = sel("ceems_compute_unit_memory_used_bytes", j);
  const nodeMem = s.has("ceems_meminfo_MemTotal_bytes")
    ? `(${sel("ceems_meminfo_MemTotal_bytes", j)} - on (instance) ${sel("ceems_meminfo_MemAvailable_bytes", j)})`
    : `sum by (instance) (${memUsed})`;
  const rapl = (kind: string) => `sum by (job, instance) (${irate(sel(`ceems_rapl_${kind}_joules_total`, j), w)})`;
  return {
    j,
    w,
    unitCpu,
    /** The unit's share of the node's busy CPU time. */
    cpuShare: `(\n  ${unitCpu.replaceAll("\n", "\n  ")}\n  / on (instance) group_left ()\n    ${nodeBusy}\n)`,
    /** The unit's share of the node's used memory. */
    memShare: `(${memUsed} / on (instance) group_left () ${nodeMem})`,
    /** 1 / number of units on the node, with each unit's labels. */
    perUnit: `((${memUsed} >= bool 0) / on (instance) group_left () (sum by (instance) (${
      sel("ceems_compute_units", j)
    }) > 0))`,
    raplPkg: rapl("package"),
    raplDram: rapl("dram"),
    hasRaplPair: s.has("ceems_rapl_package_joules_total") && s.has("ceems_rapl_dram_joules_total"),
  };
}

/** The job's node power series, only the readings that measure the whole node (chosen Redfish chassis, hwmon chips). */
export function nodePowerSelector(rj: RulesJob): string {
  const hp = rj.hostPower;
  const match = hp.selectLabel && hp.selectValues?.length
    ? `${hp.selectLabel}=~${str(hp.selectValues.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"))}`
    : undefined;
  return sel(hp.metric, jobIs(rj.job), match);
}

/** Node power per instance (see {@link nodePowerSelector}). */
function nodePowerQuery(rj: RulesJob): string {
  return `sum by (job, instance, hostname) (${nodePowerSelector(rj)})`;
}

/**
 * Node power without the GPUs (W × PUE) per instance: the node reading, less the GPUs' power where the
 * reading includes them (recorded by the GPU rules as `instance:ceems_gpu_power_watts:pue`).
 */
function hostOnlyPower(rj: RulesJob): string {
  const node = sel(instancePowerSeries(rj), jobIs(rj.job));
  if (!rj.gpu?.inHostPower) return node;
  const gpu = sel("instance:ceems_gpu_power_watts:pue", jobIs(rj.job));
  return `(${node} - on (instance) group_left () (${gpu} or on (instance) 0 * ${node}))`;
}

function crayDomain(rj: RulesJob, domainMatch: string): string {
  return sel(instancePowerSeries(rj), jobIs(rj.job), domainMatch);
}

/** The rules computing node power per instance (W × PUE, or the PUE-scaled RAPL counters). */
function instanceRules(rj: RulesJob, pue: number): Rule[] {
  const j = jobIs(rj.job);
  const hp = rj.hostPower;
  if (hp.kind === "rapl") {
    const kinds = rj.series.has("ceems_rapl_dram_joules_total") ? ["package", "dram"] : ["package"];
    return kinds.map((k) => ({
      record: `instance:ceems_rapl_${k}_joules_total:pue`,
      comment: `RAPL ${k} energy counter (J) times the PUE.`,
      expr: `${pue} * ${sel(`ceems_rapl_${k}_joules_total`, j)}`,
    }));
  }
  if (hp.kind === "cray") {
    return [{
      record: instancePowerSeries(rj),
      comment: "Power (W) of each Cray PM counters domain (node, cpu, memory, accelerators) times the PUE.",
      expr: `${pue} * ${sel(hp.metric, j)}`,
    }];
  }
  return [{
    record: instancePowerSeries(rj),
    comment: `Node power (W) from ${hp.kind} times the PUE.`,
    expr: `${pue} * ${nodePowerQuery(rj)}`,
  }];
}

/** Per-unit host power (W × PUE, GPUs excluded): the unit's share of node power. */
function unitPowerExpr(rj: RulesJob, pue: number): string {
  const p = pieces(rj);
  const hp = rj.hostPower;
  const terms: string[] = [];
  if (hp.kind === "rapl") {
    terms.push(`${pue} * ${p.raplPkg}\n  * on (instance) group_right ()\n    ${p.cpuShare.replaceAll("\n", "\n    ")}`);
    if (rj.series.has("ceems_rapl_dram_joules_total")) {
      terms.push(`${pue} * ${p.raplDram}\n  * on (instance) group_right ()\n    ${p.memShare}`);
    }
  } else if (hp.kind === "cray") {
    const rest = `(${crayDomain(rj, `domain="node"`)}\n  - on (instance)\n    sum by (instance) (${
      crayDomain(rj, `domain!="node"`)
    }))`;
    terms.push(
      `${crayDomain(rj, `domain="cpu"`)}\n  * on (instance) group_right ()\n    ${
        p.cpuShare.replaceAll("\n", "\n    ")
      }`,
      `${crayDomain(rj, `domain="memory"`)}\n  * on (instance) group_right ()\n    ${p.memShare}`,
      `${rest}\n  * on (instance) group_right ()\n    ${p.perUnit}`,
    );
  } else {
    const host = hostOnlyPower(rj);
    const split = (kind: string) =>
      p.hasRaplPair
        ? `\n  * on (instance) group_left ()\n    (${kind} / on (instance) (${p.raplPkg} + ${p.raplDram}))`
        : "";
    terms.push(
      `0.9 * ${host}${split(p.raplPkg)}\n  * on (instance) group_right ()\n    ${
        p.cpuShare.replaceAll("\n", "\n    ")
      }`,
    );
    if (p.hasRaplPair) {
      terms.push(`0.9 * ${host}${split(p.raplDram)}\n  * on (instance) group_right ()\n    ${p.memShare}`);
    }
    terms.push(`0.1 * ${host}\n  * on (instance) group_right ()\n    ${p.perUnit}`);
  }
  return terms.map((t) => `(\n  ${t.replaceAll("\n", "\n  ")}\n)`).join("\n+\n");
}

/** Node power without GPUs summed over the job's hosts (W × PUE). */
function jobHostPowerExpr(rj: RulesJob, pue: number): string {
  const p = pieces(rj);
  const hp = rj.hostPower;
  if (hp.kind === "rapl") {
    const dram = rj.series.has("ceems_rapl_dram_joules_total") ? ` + ${p.raplDram}` : "";
    return `sum by (job) (${pue} * (${p.raplPkg}${dram}))`;
  }
  if (hp.kind === "cray") {
    const node = crayDomain(rj, `domain="node"`);
    return `sum by (job) (\n  ${node}\n  - on (instance) group_left ()\n    (sum by (instance) (${
      crayDomain(rj, `domain=~"accel.*"`)
    }) or on (instance) 0 * ${node})\n)`;
  }
  return `sum by (job) (${hostOnlyPower(rj)})`;
}

/** Per-unit usage and power rules and the per-job aggregates of one CEEMS scrape job. */
export function hostGroups(rj: RulesJob, opts: RulesOptions): RuleGroup[] {
  const p = pieces(rj);
  const j = p.j;
  const unit: Rule[] = [
    {
      record: "uuid:ceems_cpu_usage:ratio_irate",
      comment: "CPU usage (%) of the unit relative to its CPUs.",
      expr: `${p.unitCpu} * 100\n/\n  (${sel("ceems_compute_unit_cpus", j)} > 0)`,
    },
    {
      record: "uuid:ceems_cpu_memory_usage:ratio",
      comment: "Memory usage (%) of the unit relative to its memory limit.",
      expr: `${sel("ceems_compute_unit_memory_used_bytes", j)} * 100\n/\n  (${
        sel("ceems_compute_unit_memory_total_bytes", j)
      } > 0)`,
    },
    ...instanceRules(rj, opts.pue),
    {
      record: "uuid:ceems_host_power_watts:pue",
      comment: "Host power (W, GPUs excluded) of the unit: its share of node power, times the PUE.",
      expr: unitPowerExpr(rj, opts.pue),
    },
    ...unitEmissionsRules(
      "uuid:ceems_host_emissions_g_s:pue",
      "uuid:ceems_host_power_watts:pue",
      rj.job,
      opts.emissions,
    ),
  ];
  const agg: Rule[] = [];
  if (rj.series.has("ceems_cpu_seconds_total") && rj.series.has("ceems_cpu_count")) {
    agg.push({
      record: "job:ceems_cpu_usage:avg_ratio_irate",
      comment: "Average CPU usage (%) of the job's hosts: busy CPU time over the number of CPUs.",
      expr: `avg by (job) (\n  sum by (job, instance) (${
        irate(sel("ceems_cpu_seconds_total", j, `mode!~"idle|iowait|steal"`), p.w)
      }) * 100\n  / on (instance) group_left ()\n    (${sel("ceems_cpu_count", j)} > 0)\n)`,
    });
  }
  if (rj.series.has("ceems_meminfo_MemTotal_bytes")) {
    agg.push({
      record: "job:ceems_cpu_memory_usage:avg_ratio",
      comment: "Average memory usage (%) of the job's hosts.",
      expr: `avg by (job) (\n  (1 - ${sel("ceems_meminfo_MemAvailable_bytes", j)} / ${
        sel("ceems_meminfo_MemTotal_bytes", j)
      }) * 100\n)`,
    });
  }
  agg.push(
    {
      record: "job:ceems_host_power_watts:pue",
      comment: "Power (W, GPUs excluded) of all hosts of the job, times the PUE.",
      expr: jobHostPowerExpr(rj, opts.pue),
    },
    ...jobEmissionsRules("job:ceems_host_emissions_g_s:pue", "job:ceems_host_power_watts:pue", rj.job, opts.emissions),
  );
  return [
    { name: `compute-unit-rules-${rj.job}`, intervalMs: opts.evalIntervalMs, rules: unit },
    { name: `host-agg-rules-${rj.job}`, intervalMs: opts.evalIntervalMs, rules: agg },
  ];
}
