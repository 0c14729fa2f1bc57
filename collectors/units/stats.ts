// Per-unit statistics shared by the cgroup v1 and v2 readers: the result type, CEEMS's rules for
// unlimited memory and swap limits, the value parsing of its cgroup library, and the CPU-count helpers.

import { readSubdirsSync } from "./fsread.ts";

/** What to read besides CPU, memory and RDMA (CEEMS reads rdma.current for every manager). */
export interface StatOptions {
  swap: boolean;
  psi: boolean;
  blkio: boolean;
}

/** Statistics of one unit. */
export interface UnitStats {
  cpuUser: number;
  cpuSystem: number;
  cpus: number;
  memoryRss: number;
  memoryCache: number;
  memoryUsed: number;
  memoryTotal: number;
  memoryFailCount: number;
  memswUsed: number;
  memswTotal: number;
  memswFailCount: number;
  cpuPsi: number;
  memoryPsi: number;
  /** device → [readBytes, writeBytes, readRequests, writeRequests]; "" for a device not in diskstats. */
  blkio: Map<string, [number, number, number, number]>;
  /** device → HCA handles (objects are emitted from this map too, as CEEMS does). */
  rdmaHandles: Map<string, number>;
}

/** Host facts the stats need. */
export interface HostFacts {
  memTotal: number;
  swapTotal: number;
  /** "major:minor" → device name. */
  blockDevices: Map<string, string>;
}

/** Where a unit's cgroup files are. */
export interface UnitPaths {
  /** The cgroup mount (`--path.cgroupfs`). */
  cgroupfs: string;
  /** The walked hierarchy: cgroupfs (v2) or cgroupfs/<active v1 subsystem>. */
  hierarchy: string;
  /** The unit's cgroup relative to the hierarchy (and to each v1 controller's mount), starting with "/". */
  rel: string;
}

/** float64(math.MaxUint64): what CEEMS's cgroup library returns for `max` in cgroup v2. */
export const maxUint64 = 2 ** 64;
/** math.MaxUint32: what CEEMS's library gives an RDMA count of `max`. */
export const maxUint32 = 2 ** 32 - 1;

/** A zeroed result. */
export function emptyStats(): UnitStats {
  return {
    cpuUser: 0,
    cpuSystem: 0,
    cpus: 0,
    memoryRss: 0,
    memoryCache: 0,
    memoryUsed: 0,
    memoryTotal: 0,
    memoryFailCount: 0,
    memswUsed: 0,
    memswTotal: 0,
    memswFailCount: 0,
    cpuPsi: 0,
    memoryPsi: 0,
    blkio: new Map(),
    rdmaHandles: new Map(),
  };
}

/**
 * Parses a single-value cgroup file as containerd's cgroups library (CEEMS's) does: `max` becomes
 * `maxValue` (MaxUint64 in v2, 0 in v1), a negative number 0; anything else but digits throws.
 */
export function libUint(text: string, path: string, maxValue: number): number {
  const t = text.trim();
  if (t === "max") return maxValue;
  if (/^\d+$/.test(t)) return Number(t);
  if (/^-\d+$/.test(t)) return 0;
  throw new Error(`${path}: malformed value ${JSON.stringify(t.slice(0, 40))}`);
}

/** CEEMS's memory total: an unlimited limit (MaxUint64) is the host's MemTotal when known; else the limit. */
export function memoryTotalOf(limit: number, host: HostFacts): number {
  return limit >= maxUint64 && host.memTotal > 0 ? host.memTotal : limit;
}

/** CEEMS's swap total: an unlimited limit is the host's SwapTotal, else MemTotal, else MaxUint64. */
export function swapTotalOf(limit: number, host: HostFacts): number {
  if (limit < maxUint64) return limit;
  if (host.swapTotal > 0) return host.swapTotal;
  return host.memTotal > 0 ? host.memTotal : limit;
}

/** Parses rdma.current: `<dev> hca_handle=N hca_object=M` per line, `max` as MaxUint32 (CEEMS's library). */
export function parseRdmaCurrent(text: string, path: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = /^(\S+)\s+hca_handle=(\d+|max)\s+hca_object=(\d+|max)\s*$/.exec(line.trim());
    if (!m) throw new Error(`${path}: malformed line ${JSON.stringify(line.slice(0, 60))}`);
    out.set(m[1], m[2] === "max" ? maxUint32 : Number(m[2]));
  }
  return out;
}

/** Number of CPUs of a k8s pod from cpu.shares (clamped to 2..262144 as CEEMS), in CPUs (milli-CPU / 1000). */
export function k8sCpus(shares: number): number {
  const s = Math.min(262144, Math.max(2, shares));
  return Math.floor((s * 1000) / 1024) / 1000;
}

/** Converts a v2 cpu.weight into v1 cpu.shares (clamped to 2..262144). */
export function weightToShares(w: number): number {
  const s = Math.floor(((w - 1) * 262142) / 9999) + 2;
  return Math.min(262144, Math.max(2, s));
}

/**
 * A libvirt VM's CPUs as CEEMS counts them: its `vcpu*` child cgroups, under `libvirt/` in the v2
 * systemd layout (machine.slice), directly below the VM in v1 and in the v2 `machine/` layout.
 */
export function libvirtVcpus(p: UnitPaths, version: "v1" | "v2"): number {
  const nested = version === "v2" && !p.rel.startsWith("/machine/");
  let names: string[];
  try {
    names = readSubdirsSync(`${p.hierarchy}${p.rel}${nested ? "/libvirt" : ""}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  return names.filter((n) => n.startsWith("vcpu")).length;
}
