// A unit's statistics from the cgroup v2 unified hierarchy, with the values CEEMS 0.10 reports for
// `max` and missing files (containerd cgroups v3.0.5 semantics); malformed content throws.

import { CgroupDir, cpuListCount, parsePsiFullSeconds } from "./fsread.ts";
import type { Manager } from "./discovery.ts";
import {
  emptyStats,
  type HostFacts,
  k8sCpus,
  libUint,
  libvirtVcpus,
  maxUint64,
  memoryTotalOf,
  parseRdmaCurrent,
  type StatOptions,
  swapTotalOf,
  type UnitPaths,
  type UnitStats,
  weightToShares,
} from "./stats.ts";

/** A single-value file as CEEMS's library reads it in v2: missing → 0, `max` → MaxUint64. */
function v2Value(d: CgroupDir, name: string): number {
  const t = d.optional(name);
  return t === undefined ? 0 : libUint(t, `${d.dir}/${name}`, maxUint64);
}

function cpusV2(d: CgroupDir, p: UnitPaths, manager: Manager): number {
  if (manager === "k8s") {
    // CEEMS reads cpu.weight (missing → no CPUs) and converts it to shares.
    const t = d.optional("cpu.weight");
    return t === undefined ? 0 : k8sCpus(weightToShares(libUint(t, `${d.dir}/cpu.weight`, 0)));
  }
  if (manager === "libvirt") return libvirtVcpus(p, "v2");
  // SLURM: only cpuset.cpus.effective counts (CEEMS has no fallback to cpuset.cpus).
  const cs = d.optional("cpuset.cpus.effective");
  return cs === undefined ? 0 : cpuListCount(cs, `${d.dir}/cpuset.cpus.effective`);
}

function blkioV2(d: CgroupDir, host: HostFacts, out: UnitStats): void {
  const io = d.optional("io.stat");
  if (io === undefined) return;
  for (const line of io.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 2) continue;
    const kv = new Map(f.slice(1).map((p) => p.split("=") as [string, string]));
    const num = (k: string) => {
      const v = kv.get(k);
      if (v !== undefined && !/^\d+$/.test(v)) throw new Error(`${d.dir}/io.stat: malformed ${k}`);
      return Number(v ?? 0);
    };
    // A device missing from diskstats is reported with device="" (the last such line wins), as CEEMS.
    out.blkio.set(host.blockDevices.get(f[0]) ?? "", [num("rbytes"), num("wbytes"), num("rios"), num("wios")]);
  }
}

/** Reads a unit's statistics from cgroup v2 (`p.hierarchy` is the cgroup mount). */
export function readStatsV2(p: UnitPaths, manager: Manager, opts: StatOptions, host: HostFacts): UnitStats {
  const s = emptyStats();
  const d = new CgroupDir(p.hierarchy + p.rel);
  const cpu = d.keyed("cpu.stat", [], ["user_usec", "system_usec"]);
  s.cpuUser = (cpu?.get("user_usec") ?? 0) / 1e6;
  s.cpuSystem = (cpu?.get("system_usec") ?? 0) / 1e6;
  s.cpus = cpusV2(d, p, manager);
  s.memoryUsed = v2Value(d, "memory.current");
  s.memoryTotal = memoryTotalOf(v2Value(d, "memory.max"), host);
  const mstat = d.keyed("memory.stat", [], ["anon", "file"]);
  s.memoryRss = mstat?.get("anon") ?? 0;
  s.memoryCache = mstat?.get("file") ?? 0;
  s.memoryFailCount = d.keyed("memory.events", [], ["oom"])?.get("oom") ?? 0;
  if (opts.swap) {
    s.memswUsed = v2Value(d, "memory.swap.current");
    s.memswTotal = swapTotalOf(v2Value(d, "memory.swap.max"), host);
    // CEEMS reports no swap fail count in v2 (memory.swap.events is not read): always 0.
  }
  if (opts.psi) {
    const c = d.optional("cpu.pressure");
    if (c !== undefined) s.cpuPsi = parsePsiFullSeconds(c, `${d.dir}/cpu.pressure`);
    const m = d.optional("memory.pressure");
    if (m !== undefined) s.memoryPsi = parsePsiFullSeconds(m, `${d.dir}/memory.pressure`);
  }
  if (opts.blkio) blkioV2(d, host, s);
  const r = d.optional("rdma.current");
  if (r !== undefined) s.rdmaHandles = parseRdmaCurrent(r, `${d.dir}/rdma.current`);
  return s;
}
