// IO and network rules of one CEEMS scrape job (CEEMS #406): per-unit rates of the eBPF sub-collector's
// counters and their per-job sums, each restricted to the job so several rules files never record the same series.

import { irate, jobIs, sel } from "./promql.ts";
import { promDuration, type Rule, type RuleGroup, type RulesJob, type RulesOptions } from "./types.ts";

const IO = [
  ["read", "bytes", "IO read bandwidth (B/s)"],
  ["read", "requests", "IO read requests (req/s)"],
  ["read", "errors", "IO read errors (err/s)"],
  ["write", "bytes", "IO write bandwidth (B/s)"],
  ["write", "requests", "IO write requests (req/s)"],
  ["write", "errors", "IO write errors (err/s)"],
] as const;

const NET = [
  ["ingress", "bytes", "Network ingress bandwidth (B/s)"],
  ["ingress", "packets", "Network ingress packets (pkt/s)"],
  ["egress", "bytes", "Network egress bandwidth (B/s)"],
  ["egress", "packets", "Network egress packets (pkt/s)"],
] as const;

function groupsFor(
  rj: RulesJob,
  opts: RulesOptions,
  what: "io" | "net",
  table: readonly (readonly [string, string, string])[],
  by: string,
): RuleGroup[] {
  const w = promDuration(4 * rj.scrapeIntervalMs);
  const j = jobIs(rj.job);
  const present = table.filter(([d, k]) => rj.series.has(`ceems_ebpf_${d}_${k}_total`));
  if (!present.length) return [];
  const unit: Rule[] = present.map(([d, k, help]) => ({
    record: `uuid:ceems_${what}_${d}_${k}:irate`,
    comment: `${help} of the unit.`,
    expr: irate(sel(`ceems_ebpf_${d}_${k}_total`, j), w),
  }));
  const agg: Rule[] = present.map(([d, k, help]) => ({
    record: `job:ceems_${what}_${d}_${k}:sum_irate`,
    comment: `${help} of all units of the job, per ${by.replace(", ", " and ")}.`,
    expr: `sum by (job, ${by}) (${irate(sel(`ceems_ebpf_${d}_${k}_total`, j), w)})`,
  }));
  const kind = what === "io" ? "io" : "network";
  return [
    { name: `compute-unit-${kind}-rules-${rj.job}`, intervalMs: opts.evalIntervalMs, rules: unit },
    { name: `host-agg-${kind}-rules-${rj.job}`, intervalMs: opts.evalIntervalMs, rules: agg },
  ];
}

/** IO rules (per mount point) and network rules (per protocol and family), when the job has the counters. */
export function ioNetGroups(rj: RulesJob, opts: RulesOptions): RuleGroup[] {
  return [...groupsFor(rj, opts, "io", IO, "mountpoint"), ...groupsFor(rj, opts, "net", NET, "family, proto")];
}
