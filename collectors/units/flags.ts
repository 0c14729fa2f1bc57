// Flags shared by the compute-unit collectors (slurm, libvirt, k8s): cgroup version and v1 subsystem,
// GPU type and SMI paths, RDMA stats. Declared once, whichever collector registers first.

import type { FlagSet, FlagSpec } from "../../common/flags.ts";
import type { DeclaredCommand } from "../../privilege/declare.ts";
import { findTool } from "../../privilege/tools.ts";

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

/** The --collector.cgroups.* flags. */
export interface CgroupOptions {
  /** "v1", "v2" or "" (autodetect). */
  forceVersion: string;
  /** cgroups v1 hierarchy walked. */
  activeSubsystem: string;
}

/** Reads the --collector.cgroups.* flags. */
export function cgroupOptions(f: FlagSet): CgroupOptions {
  return {
    forceVersion: f.string("collector.cgroups.force-version"),
    activeSubsystem: f.string("collector.cgroups.active-subsystem"),
  };
}

/** The --collector.gpu.* flags: the vendor ("" = autodetect) and the SMI tools, resolved ("" = none). */
export interface GpuOptions {
  type: string;
  nvidiaSmi: string;
  rocmSmi: string;
  amdSmi: string;
}

/**
 * Reads the --collector.gpu.* flags; each SMI tool is the flag's path, else found once in the system
 * directories (they run as the exporter's user, without capabilities).
 */
export function gpuOptions(f: FlagSet): GpuOptions {
  const tool = (flag: string, name: string) => f.string(flag) || (findTool(name) ?? "");
  const rocmFlag = f.string("collector.gpu.rocm-smi-path");
  return {
    type: f.string("collector.gpu.type"),
    nvidiaSmi: tool("collector.gpu.nvidia-smi-path", "nvidia-smi"),
    rocmSmi: tool("collector.gpu.rocm-smi-path", "rocm-smi"),
    // An explicit rocm-smi wins over an amd-smi found by name (CEEMS's preference).
    amdSmi: f.string("collector.gpu.amd-smi-path") || (rocmFlag ? "" : findTool("amd-smi") ?? ""),
  };
}

/** What the SMI tools declare: commands run without capabilities (none when no GPU is mapped). */
export function gpuCommands(o: GpuOptions): DeclaredCommand[] {
  return [o.nvidiaSmi, o.amdSmi, o.rocmSmi].filter((p) => p).map((path) => ({
    flag: "collector.gpu.type",
    path,
    asRoot: false,
  }));
}
