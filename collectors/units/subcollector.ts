// The contract between the unit engine and its sub-collectors (perf, ebpf, rdma): what they get each scrape,
// what they offer, and the mount-table helpers they share (cgroup hierarchy of a path, mount ids).

import type { Labels, MetricSink } from "../framework/collector.ts";

/** A compute unit as the unit collectors discovered it this scrape. */
export interface ComputeUnit {
  /** Unit id (SLURM job id, libvirt domain UUID, k8s pod UID): the `uuid` label. */
  uuid: string;
  /** The unit's cgroup directory (cgroup v2, or one cgroup v1 controller's directory). */
  cgroupPath: string;
  /** Processes in the unit. */
  pids: number[];
}

/** A sub-collector run by a unit collector each scrape, timed as subcollector=<name>. */
export interface UnitSubCollector {
  name: string;
  /** Emits the units' samples; false after a failure it logged itself (the parent's metrics stay). */
  update(units: ComputeUnit[], sink: MetricSink, labels: Labels): Promise<boolean>;
  /**
   * Start-up work done once privileges are set up and before serving (eBPF programs attach); `cgroupPath`
   * is a directory of the hierarchy the units live in. Never throws: failures are logged.
   */
  start?(cgroupPath: string): Promise<void>;
  /** Releases what the sub-collector holds or changed on the host (awaited at exporter shutdown). */
  stop?(): void | Promise<void>;
}

/** One line of /proc/self/mountinfo. */
export interface MountInfo {
  id: number;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/<pid>/mountinfo text. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (f.length < 10 || sep < 6) continue;
    out.push({
      id: Number(f[0]),
      mountPoint: unescapeMount(f[4]),
      fsType: f[sep + 1],
      superOptions: (f[sep + 3] ?? "").split(","),
    });
  }
  return out;
}

/** Reads this process's mount table. */
export function readMountInfo(procfs: string): MountInfo[] {
  return parseMountInfo(Deno.readTextFileSync(`${procfs}/self/mountinfo`));
}

/** The cgroup hierarchy a directory belongs to: v2, or v1 with its controllers. */
export type CgroupHierarchy = { version: 2 } | { version: 1; controllers: string[] };

/** Finds the cgroup mount holding `path` (longest mount-point prefix), if any. */
export function cgroupHierarchyOf(path: string, mounts: MountInfo[]): CgroupHierarchy | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    if (m.fsType !== "cgroup" && m.fsType !== "cgroup2") continue;
    const mp = m.mountPoint.endsWith("/") ? m.mountPoint : m.mountPoint + "/";
    if ((path === m.mountPoint || path.startsWith(mp)) && (!best || m.mountPoint.length > best.mountPoint.length)) {
      best = m;
    }
  }
  if (!best) return undefined;
  if (best.fsType === "cgroup2") return { version: 2 };
  const known = ["cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "pids", "perf_event"];
  return { version: 1, controllers: best.superOptions.filter((o) => known.includes(o)) };
}
