// Prints docs/privileges.md's table of security contexts, generated from the features' declarations (what
// `--print-capabilities` gathers): `deno run -A scripts/capability_table.ts`. A test keeps the document in step.

import { SLURM_TOOL_CONTEXT } from "../api_server/managers/slurm.ts";
import { exporterFlags, exporterSecurity } from "../collectors/exporter.ts";
import { type DeclaredContext, gatherSecurity } from "../privilege/declare.ts";

/** A root-owned stand-in for a tool run as root (the declarations do not depend on which). */
const TOOL = "/usr/bin/true";

/** Feature (as docs/privileges.md names it) → exporter flags that turn it on. */
const EXPORTER_ROWS: [string, string[]][] = [
  ["`--collector.ipmi_dcmi` (tool)", ["--collector.ipmi_dcmi", `--collector.ipmi_dcmi.cmd=${TOOL}`]],
  ["`--collector.ipmi_dcmi` (native `/dev/ipmiN`)", [
    "--collector.ipmi_dcmi",
    "--collector.ipmi_dcmi.force-native-mode",
  ]],
  ["`--collector.slurm` (none with `--collector.slurm.gpu-job-map-path`)", [
    "--collector.slurm",
    "--collector.gpu.type=nogpu",
  ]],
  ["`--collector.libvirt`", ["--collector.libvirt", "--collector.gpu.type=nogpu"]],
  ["perf (`--collector.perf.*-events`, + `--collector.perf.env-var`)", [
    "--collector.k8s",
    "--collector.perf.software-events",
    "--collector.perf.env-var=SLURM_JOB_ID",
  ]],
  ["ebpf (`--collector.ebpf.*-metrics`; + cap_sys_resource before Linux 5.11)", [
    "--collector.k8s",
    "--collector.ebpf.io-metrics",
  ]],
  ["`--collector.rdma.stats`", [
    "--collector.slurm",
    "--collector.gpu.type=nogpu",
    "--collector.slurm.gpu-job-map-path=/run/gpujobmap",
    "--collector.rdma.stats",
    `--collector.rdma.cmd=${TOOL}`,
  ]],
  ["`--collector.rapl`", ["--collector.rapl"]],
  ["`--discoverer.alloy-targets.env-var` (with slurm or k8s)", [
    "--collector.k8s",
    "--discoverer.alloy-targets",
    "--discoverer.alloy-targets.env-var=ENABLE_PROFILING",
  ]],
];

function row(feature: string, c: DeclaredContext): string {
  const uses = c.uses.map((u) => u === "exec-root" ? "command as root" : u).join(", ");
  return `| ${feature} | \`${c.name}\` | ${c.caps.join(", ")} | ${uses} | ${c.reason} |`;
}

/** The Markdown table: one row per security context each feature declares. */
export function capabilityTable(): string {
  const lines = [
    "| feature | context | capabilities | runs | why |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const [feature, argv] of EXPORTER_ROWS) {
    const fs = exporterFlags();
    fs.parse(["--collector.disable-defaults", ...argv], {});
    for (const c of exporterSecurity(fs).contexts.values()) lines.push(row(feature, c));
  }
  for (const c of gatherSecurity([{ contexts: [SLURM_TOOL_CONTEXT] }]).contexts.values()) {
    lines.push(row("`ceems api` with a SLURM cluster", c));
  }
  lines.push("| `ceems lb` | – | none | – | – |");
  return lines.join("\n");
}

if (import.meta.main) console.log(capabilityTable());
