// Per-unit resource statistics from cgroup v1 controllers or the v2 unified hierarchy, reading only
// the files the enabled metrics need; a malformed file throws so the unit is reported as a collect error.

import { CgroupDir, cpuListCount, parsePsiFullSeconds, readKeyed, readOptional, readValue } from "./fsread.ts";
import type { Manager } from "./discovery.ts";

/** What to read besides CPU and memory. */
export interface StatOptions {
  swap: boolean;
  psi: boolean;
  blkio: boolean;
  rdma: boolean;
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
  /** device → [readBytes, writeBytes, readRequests, writeRequests]. */
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

const userHz = 100;

function emptyStats(): UnitStats {
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

/** Parses rdma.current: `<dev> hca_handle=N hca_object=M` per line. */
export function parseRdmaCurrent(text: string, path: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = /^(\S+)\s+hca_handle=(\d+|max)\s+hca_object=(\d+|max)\s*$/.exec(line.trim());
    if (!m) throw new Error(`${path}: malformed line ${JSON.stringify(line.slice(0, 60))}`);
    if (m[2] !== "max") out.set(m[1], Number(m[2]));
  }
  return out;
}

/** Number of CPUs of a k8s pod from cpu.shares (v1) or cpu.weight (v2), in CPUs (milli-CPU / 1000). */
export function k8sCpus(shares: number): number {
  return Math.floor((shares * 1000) / 1024) / 1000;
}

/** Converts a v2 cpu.weight into v1 cpu.shares (clamped to 2..262144). */
export function weightToShares(w: number): number {
  const s = Math.floor(((w - 1) * 262142) / 9999) + 2;
  return Math.min(262144, Math.max(2, s));
}

/** Reads a unit's statistics from cgroup v2 at `dir`. */
export function readStatsV2(dir: string, manager: Manager, opts: StatOptions, host: HostFacts): UnitStats {
  const s = emptyStats();
  const d = new CgroupDir(dir);
  const cpu = d.keyed("cpu.stat", ["user_usec", "system_usec"]);
  if (cpu) {
    s.cpuUser = cpu.get("user_usec")! / 1e6;
    s.cpuSystem = cpu.get("system_usec")! / 1e6;
  }
  if (manager === "k8s") {
    const w = d.value("cpu.weight");
    s.cpus = w === undefined || !Number.isFinite(w) ? 0 : k8sCpus(weightToShares(w));
  } else {
    const cs = d.optional("cpuset.cpus.effective") ?? d.optional("cpuset.cpus");
    s.cpus = cs === undefined ? 0 : cpuListCount(cs, `${dir}/cpuset.cpus.effective`);
  }
  s.memoryUsed = d.value("memory.current") ?? 0;
  const max = d.value("memory.max");
  s.memoryTotal = max === undefined || !Number.isFinite(max) ? host.memTotal : max;
  const mstat = d.keyed("memory.stat", ["anon", "file"]);
  if (mstat) {
    s.memoryRss = mstat.get("anon")!;
    s.memoryCache = mstat.get("file")!;
  }
  const events = d.keyed("memory.events", [], ["oom"]);
  s.memoryFailCount = events?.get("oom") ?? 0;
  if (opts.swap) {
    s.memswUsed = d.value("memory.swap.current") ?? 0;
    const smax = d.value("memory.swap.max");
    s.memswTotal = smax === undefined || !Number.isFinite(smax) ? host.swapTotal : smax;
    s.memswFailCount = d.keyed("memory.swap.events", [], ["fail"])?.get("fail") ?? 0;
  }
  if (opts.psi) {
    const c = d.optional("cpu.pressure");
    if (c !== undefined) s.cpuPsi = parsePsiFullSeconds(c, `${dir}/cpu.pressure`);
    const m = d.optional("memory.pressure");
    if (m !== undefined) s.memoryPsi = parsePsiFullSeconds(m, `${dir}/memory.pressure`);
  }
  if (opts.blkio) {
    const io = d.optional("io.stat");
    if (io !== undefined) {
      for (const line of io.split("\n")) {
        const f = line.trim().split(/\s+/);
        if (f.length < 2) continue;
        const kv = new Map(f.slice(1).map((p) => p.split("=") as [string, string]));
        const dev = host.blockDevices.get(f[0]);
        if (!dev) continue;
        const num = (k: string) => {
          const v = kv.get(k);
          if (v !== undefined && !/^\d+$/.test(v)) throw new Error(`${dir}/io.stat: malformed ${k}`);
          return Number(v ?? 0);
        };
        s.blkio.set(dev, [num("rbytes"), num("wbytes"), num("rios"), num("wios")]);
      }
    }
  }
  if (opts.rdma) {
    const r = d.optional("rdma.current");
    if (r !== undefined) s.rdmaHandles = parseRdmaCurrent(r, `${dir}/rdma.current`);
  }
  return s;
}

function parseBlkioV1(text: string, path: string, host: HostFacts): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    if (!/^\d+$/.test(f[2])) throw new Error(`${path}: malformed line`);
    const dev = host.blockDevices.get(f[0]);
    if (!dev) continue;
    const cur = out.get(dev) ?? [0, 0];
    if (f[1] === "Read") cur[0] = Number(f[2]);
    else if (f[1] === "Write") cur[1] = Number(f[2]);
    out.set(dev, cur);
  }
  return out;
}

/** Reads a unit's statistics from cgroup v1 controllers mounted under `cgroupfs`, at relative path `rel`. */
export function readStatsV1(
  cgroupfs: string,
  cpuDir: string,
  rel: string,
  manager: Manager,
  opts: StatOptions,
  host: HostFacts,
): UnitStats {
  const s = emptyStats();
  const cpuPath = `${cgroupfs}/${cpuDir}${rel}`;
  const acct = readKeyed(`${cpuPath}/cpuacct.stat`, ["user", "system"]);
  if (acct) {
    s.cpuUser = acct.get("user")! / userHz;
    s.cpuSystem = acct.get("system")! / userHz;
  }
  if (manager === "k8s") {
    const sh = readValue(`${cpuPath}/cpu.shares`);
    s.cpus = sh === undefined ? 0 : k8sCpus(sh);
  } else {
    const cs = readOptional(`${cgroupfs}/cpuset${rel}/cpuset.cpus`);
    s.cpus = cs === undefined ? 0 : cpuListCount(cs, `${cgroupfs}/cpuset${rel}/cpuset.cpus`);
  }
  const mem = `${cgroupfs}/memory${rel}`;
  s.memoryUsed = readValue(`${mem}/memory.usage_in_bytes`) ?? 0;
  const limit = readValue(`${mem}/memory.limit_in_bytes`);
  s.memoryTotal = limit === undefined || limit >= 2 ** 64 - 1 ? host.memTotal : limit;
  s.memoryFailCount = readValue(`${mem}/memory.failcnt`) ?? 0;
  const mstat = readKeyed(`${mem}/memory.stat`, ["total_rss", "total_cache"]);
  if (mstat) {
    s.memoryRss = mstat.get("total_rss")!;
    s.memoryCache = mstat.get("total_cache")!;
  }
  if (opts.swap) {
    s.memswUsed = readValue(`${mem}/memory.memsw.usage_in_bytes`) ?? 0;
    const sl = readValue(`${mem}/memory.memsw.limit_in_bytes`);
    s.memswTotal = sl === undefined || sl >= 2 ** 64 - 1 ? host.memTotal : sl;
    s.memswFailCount = readValue(`${mem}/memory.memsw.failcnt`) ?? 0;
  }
  if (opts.blkio) {
    const dir = `${cgroupfs}/blkio${rel}`;
    const bytes = readOptional(`${dir}/blkio.throttle.io_service_bytes`);
    const ios = readOptional(`${dir}/blkio.throttle.io_serviced`);
    const b = bytes === undefined ? new Map() : parseBlkioV1(bytes, `${dir}/blkio.throttle.io_service_bytes`, host);
    const r = ios === undefined ? new Map() : parseBlkioV1(ios, `${dir}/blkio.throttle.io_serviced`, host);
    for (const dev of new Set([...b.keys(), ...r.keys()])) {
      const [rb, wb] = b.get(dev) ?? [0, 0];
      const [rr, wr] = r.get(dev) ?? [0, 0];
      s.blkio.set(dev, [rb, wb, rr, wr]);
    }
  }
  if (opts.rdma) {
    const p = `${cgroupfs}/rdma${rel}/rdma.current`;
    const r = readOptional(p);
    if (r !== undefined) s.rdmaHandles = parseRdmaCurrent(r, p);
  }
  return s;
}
