// Flags shared by the compute-unit collectors (slurm, libvirt, k8s): cgroup version and v1 subsystem,
// GPU type and SMI paths, RDMA stats. Declared once, whichever collector registers first.

import type { FlagSet, FlagSpec } from "../../common/flags.ts";

function addOnce(fs: FlagSet, spec: FlagSpec): void {
  if (!fs.has(spec.name)) fs.add(spec);
}

/** Declares --collector.cgroups.* flags. */
export function addCgroupFlags(fs: FlagSet): void {
  addOnce(fs, {
    name: "collector.cgroups.active-subsystem",
    kind: "string",
    default: "cpuacct",
    help: "Active cgroup subsystem for cgroups v1.",
  });
  addOnce(fs, {
    name: "collector.cgroups.force-version",
    kind: "enum",
    choices: ["v1", "v2", ""],
    default: "",
    hidden: true,
    help: "Set cgroups version manually (v1 or v2). Used only for testing.",
  });
}

/** Declares --collector.gpu.* flags. */
export function addGpuFlags(fs: FlagSet): void {
  addOnce(fs, {
    name: "collector.gpu.type",
    kind: "enum",
    choices: ["nvidia", "amd", "nogpu", ""],
    default: "",
    hidden: true,
    help: "GPU device type (nvidia, amd or nogpu). Autodetected when empty.",
  });
  for (const [name, tool] of [["nvidia", "nvidia-smi"], ["rocm", "rocm-smi"], ["amd", "amd-smi"]]) {
    addOnce(fs, {
      name: `collector.gpu.${name}-smi-path`,
      kind: "string",
      default: "",
      hidden: true,
      help: `Absolute path to ${tool} binary. Use only for testing.`,
    });
  }
}

/** Declares --collector.rdma.* flags. */
export function addRdmaFlags(fs: FlagSet): void {
  addOnce(fs, {
    name: "collector.rdma.stats",
    kind: "bool",
    help: "Enables collection of RDMA stats (default: disabled).",
  });
  addOnce(fs, {
    name: "collector.rdma.cmd",
    kind: "string",
    default: "",
    hidden: true,
    help: "Path to rdma command.",
  });
}
