// The product's capability table (feature → Linux capabilities, with the flag conditions that change
// them) and the pure computation of the set a component needs for a given flag combination.

import type { Capability } from "./ops.ts";
import { findTool } from "./tools.ts";

/** The three long-running subcommands. */
export type Component = "exporter" | "api" | "lb";

/** Read access to flag values; flags another build does not declare read as undefined. */
export interface FlagView {
  has(name: string): boolean;
  get(name: string): unknown;
}

/** Facts about the host some rows depend on; injectable for tests. */
export interface HostFacts {
  /** Kernel release, e.g. "6.1.0-18-amd64". */
  kernelRelease: string;
  /** Whether an executable of that name is in the system directories (tools.ts). */
  toolExists(name: string): boolean;
  /** Reads a small text file, or undefined when unreadable. */
  readText(path: string): string | undefined;
}

/** One row of the capability table. */
export interface CapabilityRule {
  component: Component;
  /** Feature name: a collector name for the exporter, "slurm" (a SLURM cluster) for the API server. */
  feature: string;
  /** Flag named in log lines and --print-capabilities output. */
  flag: string;
  caps: Capability[];
  /** Why the capability is needed (documentation and --print-capabilities). */
  reason: string;
  /** Condition on flags/host; the row applies when absent or true. */
  when?: (f: FlagView, host: HostFacts) => boolean;
}

/** Tools CEEMS's ipmi_dcmi collector looks for when --collector.ipmi_dcmi.cmd is empty. */
export const IPMI_TOOLS = ["ipmi-dcmi", "ipmitool", "ipmiutil", "capmc"];

function flagValue(f: FlagView, name: string): unknown {
  return f.has(name) ? f.get(name) : undefined;
}
function flagSet(f: FlagView, name: string): boolean {
  const v = flagValue(f, name);
  return Array.isArray(v) ? v.length > 0 : !!v;
}

/** Tool mode (exec as root) versus native /dev/ipmi0 mode, as CEEMS chooses it. */
function ipmiToolMode(f: FlagView, host: HostFacts): boolean | "test" {
  if (flagSet(f, "collector.ipmi_dcmi.test-mode")) return "test";
  if (flagSet(f, "collector.ipmi_dcmi.force-native-mode")) return false;
  if (flagSet(f, "collector.ipmi_dcmi.cmd")) return true;
  return IPMI_TOOLS.some((t) => host.toolExists(t));
}

/** Whether the Redfish config names the BMC host (else the collector discovers it, needing the IPMI device). */
function redfishHostConfigured(f: FlagView, host: HostFacts): boolean {
  const path = flagValue(f, "collector.redfish.config.file");
  if (typeof path !== "string" || !path) return false;
  const text = host.readText(path);
  // The collector reads `hostname` (CEEMS's key) or `host` (CEEMS's e2e fixture configs use it).
  return !!text && /^\s+(?:hostname|host):\s*["']?[^\s"'#]/m.test(text);
}

/** Kernel older than major.minor. */
function kernelOlderThan(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a < major || (a === major && b < minor);
}

/**
 * THE capability table, from CEEMS's security documentation. The required set of a component is the
 * union of the rows whose feature is enabled and whose condition holds.
 */
export const CAPABILITY_TABLE: readonly CapabilityRule[] = [
  {
    component: "exporter",
    feature: "ipmi_dcmi",
    flag: "collector.ipmi_dcmi",
    caps: ["cap_setuid", "cap_setgid"],
    reason: "runs the IPMI tool (--collector.ipmi_dcmi.cmd or one found in the system directories) as root",
    when: (f, h) => ipmiToolMode(f, h) === true,
  },
  {
    component: "exporter",
    feature: "ipmi_dcmi",
    flag: "collector.ipmi_dcmi",
    caps: ["cap_kill"],
    reason: "kills the root IPMI tool and everything it started at its deadline",
    when: (f, h) => ipmiToolMode(f, h) === true,
  },
  {
    component: "exporter",
    feature: "ipmi_dcmi",
    flag: "collector.ipmi_dcmi",
    caps: ["cap_dac_override"],
    reason: "opens /dev/ipmi0 read-write (native mode)",
    when: (f, h) => ipmiToolMode(f, h) === false,
  },
  {
    component: "exporter",
    feature: "redfish",
    flag: "collector.redfish",
    caps: ["cap_dac_override"],
    reason: "discovers the BMC address through /dev/ipmi0 when the config names no hostname",
    when: (f, h) => !redfishHostConfigured(f, h),
  },
  {
    component: "exporter",
    feature: "slurm",
    flag: "collector.slurm",
    caps: ["cap_sys_ptrace", "cap_dac_read_search"],
    reason: "reads job processes' /proc/<pid>/environ for GPU indices",
    when: (f) => !flagSet(f, "collector.slurm.gpu-job-map-path"),
  },
  {
    component: "exporter",
    feature: "libvirt",
    flag: "collector.libvirt",
    caps: ["cap_dac_read_search"],
    reason: "reads libvirt's root-only domain XML files",
  },
  {
    component: "exporter",
    feature: "perf",
    // perf has no --collector.perf flag: any of its event flags (under slurm, libvirt or k8s) enables it.
    flag: "collector.perf.*-events",
    caps: ["cap_perfmon"],
    reason: "opens perf events of other users' processes",
  },
  {
    component: "exporter",
    feature: "perf",
    flag: "collector.perf.env-var",
    caps: ["cap_sys_ptrace", "cap_dac_read_search"],
    reason: "filters processes by their environment (/proc/<pid>/environ)",
    when: (f) => flagSet(f, "collector.perf.env-var"),
  },
  {
    component: "exporter",
    feature: "ebpf",
    // ebpf has no --collector.ebpf flag: --collector.ebpf.io-metrics or .network-metrics enables it.
    flag: "collector.ebpf.*-metrics",
    caps: ["cap_bpf", "cap_perfmon"],
    reason: "loads and attaches BPF tracing programs and reads their maps",
  },
  {
    component: "exporter",
    feature: "ebpf",
    flag: "collector.ebpf.*-metrics",
    caps: ["cap_sys_resource"],
    reason: "raises RLIMIT_MEMLOCK for BPF maps on kernels older than 5.11",
    when: (_f, h) => kernelOlderThan(h.kernelRelease, 5, 11),
  },
  {
    component: "exporter",
    feature: "rdma",
    flag: "collector.rdma.stats",
    caps: ["cap_setuid", "cap_setgid", "cap_net_admin"],
    reason: "runs `rdma statistic qp set` as root (the kernel wants cap_net_admin for it): per-PID QP counters " +
      "of Mellanox links on, and back off at exit",
  },
  {
    component: "exporter",
    feature: "rdma",
    flag: "collector.rdma.stats",
    caps: ["cap_kill"],
    reason: "kills the root `rdma` command and everything it started at its deadline",
  },
  {
    component: "exporter",
    feature: "rapl",
    flag: "collector.rapl",
    caps: ["cap_dac_read_search"],
    reason: "reads root-only /sys/class/powercap/*/energy_uj",
  },
  {
    component: "api",
    feature: "slurm",
    flag: "config.file",
    caps: ["cap_setuid", "cap_setgid"],
    reason: "runs sacct/sacctmgr as root for a SLURM cluster",
  },
  {
    component: "api",
    feature: "slurm",
    flag: "config.file",
    caps: ["cap_kill"],
    reason: "kills sacct/sacctmgr and everything they started at their deadline",
  },
  // lb: no row; the load balancer needs no capability.
];

/** The capability CEEMS adds when ACL entries must be removed at shutdown. */
export const ACL_REMOVAL_CAP: Capability = "cap_fowner";

/**
 * How each component's run-as user reaches the paths it needs after a root start: "acl" adds POSIX ACL
 * entries (removed at shutdown, which keeps {@link ACL_REMOVAL_CAP}); "check" adds nothing and refuses to
 * start when a path is unreadable (the load balancer: no capability at all, file access from the packaging).
 */
export const ACCESS_POLICY: Record<Component, "acl" | "check"> = { exporter: "acl", api: "acl", lb: "check" };

/** Host facts of the running machine. */
export function liveHostFacts(): HostFacts {
  return {
    kernelRelease: Deno.osRelease(),
    toolExists: (name) => findTool(name) !== undefined,
    readText: (path) => {
      try {
        return Deno.readTextFileSync(path);
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * The capabilities `component` needs with `enabledFeatures` on and these flags, each mapped to the
 * flags that need it (comma separated, in table order). Pure given `host`.
 */
export function requiredCapabilities(
  component: Component,
  enabledFeatures: Iterable<string>,
  flags: FlagView,
  host: HostFacts = liveHostFacts(),
): Map<Capability, string> {
  const enabled = new Set(enabledFeatures);
  const byCap = new Map<Capability, string[]>();
  for (const rule of CAPABILITY_TABLE) {
    if (rule.component !== component || !enabled.has(rule.feature)) continue;
    if (rule.when && !rule.when(flags, host)) continue;
    for (const cap of rule.caps) {
      const list = byCap.get(cap) ?? [];
      if (!list.includes(`--${rule.flag}`)) list.push(`--${rule.flag}`);
      byCap.set(cap, list);
    }
  }
  const sorted = [...byCap.keys()].sort();
  return new Map(sorted.map((c) => [c, byCap.get(c)!.join(",")]));
}

/** The table rows of one feature (what CollectorDef.capabilities looks up). */
export function featureCapabilities(
  component: Component,
  feature: string,
  flags: FlagView,
  host: HostFacts = liveHostFacts(),
): Capability[] {
  return [...requiredCapabilities(component, [feature], flags, host).keys()];
}
