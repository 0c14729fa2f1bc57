// A unit's statistics from the cgroup v1 controllers, with the values CEEMS 0.10 reports for unlimited
// limits and missing files (containerd cgroups v3.0.5 semantics); malformed content throws.

import { cpuListCount, readKeyed, readOptional } from "./fsread.ts";
import type { Manager } from "./discovery.ts";
import {
  emptyStats,
  type HostFacts,
  k8sCpus,
  libUint,
  libvirtVcpus,
  memoryTotalOf,
  parseRdmaCurrent,
  type StatOptions,
  swapTotalOf,
  type UnitPaths,
  type UnitStats,
} from "./stats.ts";

const userHz = 100;

/** A v1 value as CEEMS's library reads it: `max` → 0, negative → 0; undefined when the file is missing. */
function v1Value(path: string): number | undefined {
  const t = readOptional(path);
  return t === undefined ? undefined : libUint(t, path, 0);
}

/**
 * memory.<prefix>usage_in_bytes, failcnt and limit_in_bytes read in the library's order: the first
 * missing file leaves it and every later one at 0 (CEEMS then reports 0, not the host's memory).
 */
function memoryEntry(
  dir: string,
  prefix: string,
): { usage: number; failcnt: number; limit: number; complete: boolean } {
  const out = { usage: 0, failcnt: 0, limit: 0, complete: false };
  const usage = v1Value(`${dir}/memory.${prefix}usage_in_bytes`);
  if (usage === undefined) return out;
  out.usage = usage;
  const failcnt = v1Value(`${dir}/memory.${prefix}failcnt`);
  if (failcnt === undefined) return out;
  out.failcnt = failcnt;
  const limit = v1Value(`${dir}/memory.${prefix}limit_in_bytes`);
  if (limit === undefined) return out;
  out.limit = limit;
  out.complete = true;
  return out;
}

function memoryV1(p: UnitPaths, opts: StatOptions, host: HostFacts, s: UnitStats): void {
  const dir = `${p.cgroupfs}/memory${p.rel}`;
  // Without memory.stat the library reports no memory at all: every memory and swap value is 0.
  const mstat = readKeyed(`${dir}/memory.stat`, [], ["total_rss", "total_cache"]);
  if (!mstat) return;
  s.memoryRss = mstat.get("total_rss") ?? 0;
  s.memoryCache = mstat.get("total_cache") ?? 0;
  const mem = memoryEntry(dir, "");
  s.memoryUsed = mem.usage;
  s.memoryFailCount = mem.failcnt;
  s.memoryTotal = memoryTotalOf(mem.limit, host);
  if (!opts.swap || !mem.complete) return;
  // memsw.* files exist only with swap accounting on; without them swap used/total/fail are 0.
  const sw = memoryEntry(dir, "memsw.");
  s.memswUsed = sw.usage;
  s.memswFailCount = sw.failcnt;
  s.memswTotal = swapTotalOf(sw.limit, host);
}

function cpusV1(p: UnitPaths, manager: Manager): number {
  if (manager === "libvirt") return libvirtVcpus(p, "v1");
  if (manager === "k8s") {
    // CEEMS reads cpu.shares from the walked (active subsystem) hierarchy.
    const sh = v1Value(`${p.hierarchy}${p.rel}/cpu.shares`);
    return sh === undefined ? 0 : k8sCpus(sh);
  }
  const path = `${p.cgroupfs}/cpuset${p.rel}/cpuset.cpus`;
  const cs = readOptional(path);
  return cs === undefined ? 0 : cpuListCount(cs, path);
}

/** Parses blkio `<maj:min> <Op> <value>` lines into device → [read, write] (undefined: no such line). */
function parseBlkioV1(text: string, path: string, host: HostFacts): Map<string, [number?, number?]> {
  const out = new Map<string, [number?, number?]>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue; // "Total <n>" and blank lines
    if (!/^\d+$/.test(f[2])) throw new Error(`${path}: malformed line`);
    if (f[1] !== "Read" && f[1] !== "Write") continue;
    const dev = host.blockDevices.get(f[0]) ?? "";
    const cur = out.get(dev) ?? [undefined, undefined];
    cur[f[1] === "Read" ? 0 : 1] = Number(f[2]);
    out.set(dev, cur);
  }
  return out;
}

/**
 * Block IO as the library reads it: the CFQ `*_recursive` files when blkio.io_serviced_recursive
 * exists and they hold entries, else `throttle.io_serviced` then `throttle.io_service_bytes` (a missing
 * first file leaves both out). Devices are those of the bytes file, as CEEMS emits per read-bytes device.
 */
function blkioV1(p: UnitPaths, host: HostFacts, s: UnitStats): void {
  const dir = `${p.cgroupfs}/blkio${p.rel}`;
  let bytes: string | undefined;
  let ios: string | undefined;
  let names = ["blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive"];
  const recursiveIos = readOptional(`${dir}/blkio.io_serviced_recursive`);
  if (recursiveIos !== undefined) {
    bytes = readOptional(`${dir}/${names[0]}`);
    ios = recursiveIos;
  }
  const entries = (t: string | undefined) => (t ?? "").split("\n").some((l) => l.trim().split(/\s+/).length >= 3);
  if (!entries(bytes) && !entries(ios)) {
    names = ["blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced"];
    ios = readOptional(`${dir}/${names[1]}`);
    bytes = ios === undefined ? undefined : readOptional(`${dir}/${names[0]}`);
  }
  const b = bytes === undefined ? new Map() : parseBlkioV1(bytes, `${dir}/${names[0]}`, host);
  const r = ios === undefined ? new Map() : parseBlkioV1(ios, `${dir}/${names[1]}`, host);
  for (const [dev, [rb, wb]] of b) {
    if (rb === undefined) continue;
    const [rr, wr] = r.get(dev) ?? [];
    s.blkio.set(dev, [rb, wb ?? 0, rr ?? 0, wr ?? 0]);
  }
}

/** Reads a unit's statistics from the cgroup v1 controllers mounted under `p.cgroupfs`. */
export function readStatsV1(p: UnitPaths, manager: Manager, opts: StatOptions, host: HostFacts): UnitStats {
  const s = emptyStats();
  const acct = readKeyed(`${p.cgroupfs}/cpuacct${p.rel}/cpuacct.stat`, ["user", "system"]);
  if (acct) {
    s.cpuUser = acct.get("user")! / userHz;
    s.cpuSystem = acct.get("system")! / userHz;
  }
  s.cpus = cpusV1(p, manager);
  memoryV1(p, opts, host, s);
  if (opts.blkio) blkioV1(p, host, s);
  const rdma = `${p.cgroupfs}/rdma${p.rel}/rdma.current`;
  const r = readOptional(rdma);
  if (r !== undefined) s.rdmaHandles = parseRdmaCurrent(r, rdma);
  return s;
}
