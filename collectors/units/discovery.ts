// Compute-unit discovery in the cgroup tree: cgroup version detection, each manager's root
// directories and name regexes (as CEEMS), and the walk that groups cgroups and their PIDs per unit.

import { isDirectory } from "../../common/fs.ts";
import { parseProcs, readSubdirsSync, readTextAt, unescapeSystemd } from "./fsread.ts";

/** Resource managers whose units live in cgroups. */
export type Manager = "slurm" | "libvirt" | "k8s";
export type CgroupVersion = "v1" | "v2";

/** One compute unit found in the tree. */
export interface Unit {
  /** Job id, libvirt instance name (replaced by the domain UUID later) or pod UID. */
  uuid: string;
  /** Host part of multi-slurmd cgroup names (`slurm_<host>` / `<host>_slurmstepd.scope`), else "". */
  cgroupHost: string;
  /** Path of the unit's own cgroup relative to the walked hierarchy, starting with "/". */
  rel: string;
  /** PIDs of the unit and all its children. */
  pids: number[];
}

/** Where and how a manager's cgroups are found. */
export interface Layout {
  manager: Manager;
  version: CgroupVersion;
  /** Absolute directory of the walked hierarchy (cgroupfs for v2, cgroupfs/<subsystem> for v1). */
  hierarchy: string;
  /** Root directories (relative, starting with "/") below which units are searched. */
  roots: string[];
}

const slurmV1 = /^.*\/slurm(?:_(.*?)\/)?(?:.*?)job_([0-9]+)(?:.*$)/;
// Slurm ≥ 26.05 names the job directory by the job's SLUID (s + 13 Crockford base32 digits) unless
// CgroupJobIdPaths=yes; collectors/slurm/sluid.ts maps the SLUID to the job id.
const slurmV2 = /^.*\/(?:(.*?)_)?slurm(?:.*?)\/(?:job_([0-9]+)|(s[0-9A-HJKMNP-TV-Z]{13})(?=\/|$))(?:.*$)/;
const libvirtRe = /^.*\/(?:.+?)qemu-(?:[0-9]+)-(instance-[0-9a-f]+)(?:.*$)/;
const k8sRe = /^.*\/kubepods(?:.*)pod([0-9a-z-_]+)(?:.*$)/;

/** Detects the cgroup version: forced, else unified when cgroupfs has cgroup.controllers. */
export function detectVersion(cgroupfs: string, forced: string): CgroupVersion {
  if (forced === "v1" || forced === "v2") return forced;
  try {
    Deno.statSync(`${cgroupfs}/cgroup.controllers`);
    return "v2";
  } catch {
    return "v1";
  }
}

/** v1 directory name of the active subsystem (cpu/cpuacct → "cpu,cpuacct" when mounted so). */
export function v1SubsystemDir(cgroupfs: string, subsystem: string): string {
  const joined: Record<string, string> = {
    cpu: "cpu,cpuacct",
    cpuacct: "cpu,cpuacct",
    net_cls: "net_cls,net_prio",
    net_prio: "net_cls,net_prio",
  };
  const j = joined[subsystem];
  if (j && isDirectory(`${cgroupfs}/${j}`)) return j;
  return subsystem;
}

function listDir(p: string): string[] {
  try {
    const out: string[] = [];
    for (const e of Deno.readDirSync(p)) if (e.isDirectory || e.isSymlink) out.push(e.name);
    return out;
  } catch {
    return [];
  }
}

/** Absolute directory of the walked hierarchy: cgroupfs (v2) or cgroupfs/<v1 subsystem directory>. */
export function hierarchyOf(version: CgroupVersion, cgroupfs: string, subsystem: string): string {
  return version === "v2" ? cgroupfs : `${cgroupfs}/${v1SubsystemDir(cgroupfs, subsystem)}`;
}

/** The manager's root directories below `hierarchy` as they are now (sorted; none when absent). */
export function findRoots(manager: Manager, version: CgroupVersion, hierarchy: string): string[] {
  let roots: string[];
  if (manager === "slurm") {
    roots = version === "v2"
      ? listDir(`${hierarchy}/system.slice`).filter((n) => n.endsWith("slurmstepd.scope")).map((n) =>
        `/system.slice/${n}`
      )
      : listDir(hierarchy).filter((n) => n.includes("slurm")).map((n) => `/${n}`);
  } else if (manager === "libvirt") {
    roots = ["/machine.slice", "/machine"].filter((r) => isDirectory(hierarchy + r));
  } else {
    roots = ["/kubepods", "/kubepods.slice"].filter((r) => isDirectory(hierarchy + r));
  }
  return roots.sort();
}

/** Where the manager's roots are looked for, for messages. */
export function rootsPlace(manager: Manager, version: CgroupVersion, hierarchy: string): string {
  if (manager !== "slurm") return hierarchy;
  return version === "v2" ? `${hierarchy}/system.slice/*slurmstepd.scope` : `${hierarchy}/slurm*`;
}

/** Finds the manager's root directories; throws when there are none (CEEMS fails start-up then). */
export function findLayout(manager: Manager, version: CgroupVersion, cgroupfs: string, subsystem: string): Layout {
  const hierarchy = hierarchyOf(version, cgroupfs, subsystem);
  const roots = findRoots(manager, version, hierarchy);
  if (roots.length === 0) throw new Error(`no ${manager} cgroup root found under ${hierarchy}`);
  return { manager, version, hierarchy, roots };
}

/** Extracts (uuid, cgroupHost) from a relative cgroup path, or undefined when it is no unit's. */
export function matchUnit(manager: Manager, version: CgroupVersion, rel: string): [string, string] | undefined {
  const path = unescapeSystemd(rel);
  if (manager === "slurm") {
    const m = (version === "v2" ? slurmV2 : slurmV1).exec(path);
    return m ? [m[2] ?? m[3], m[1] ?? ""] : undefined;
  }
  if (manager === "libvirt") {
    const m = libvirtRe.exec(path);
    return m ? [m[1], ""] : undefined;
  }
  const m = k8sRe.exec(path);
  // QoS slices (kubepods-besteffort.slice) also match the regex; a pod UID is a UUID.
  return m && /^[0-9a-f]{8}[-_]/.test(m[1]) ? [m[1].replaceAll("_", "-"), ""] : undefined;
}

/** Whether a matched path is a child cgroup of its unit rather than the unit's own. */
export function isChild(manager: Manager, rel: string): boolean {
  if (manager === "slurm") return rel.includes("/step_");
  if (manager === "libvirt") return /\/(libvirt|emulator|vcpu)/.test(rel);
  const base = rel.slice(rel.lastIndexOf("/") + 1);
  return rel.includes("/cri-containerd") || !base.includes("pod");
}

/** Walks the layout's roots and returns units sorted by uuid, each with its PIDs. */
export function discoverUnits(layout: Layout): Unit[] {
  const units = new Map<string, Unit>();
  // Below a unit's own cgroup every directory belongs to that unit: no regex per descendant.
  const visit = (rel: string, owner: Unit | undefined) => {
    const abs = layout.hierarchy + rel;
    let u = owner;
    if (!u) {
      const m = matchUnit(layout.manager, layout.version, rel);
      if (m) {
        const key = `${m[1]}\u0000${m[0]}`;
        u = units.get(key);
        if (!u) {
          u = { uuid: m[0], cgroupHost: m[1], rel: "", pids: [] };
          units.set(key, u);
        }
      }
    }
    if (u) {
      // A child cgroup (step, libvirt/emulator dir, container) and everything below it give their PIDs only.
      if (!owner && !isChild(layout.manager, rel) && (!u.rel || rel.length < u.rel.length)) u.rel = rel;
      let procs: string | undefined;
      try {
        procs = readTextAt(abs, "cgroup.procs");
      } catch {
        procs = undefined;
      }
      // Arrays grown by concat stay exactly sized (push reserves 17 slots): thousands of units live per scrape.
      if (procs) u.pids = u.pids.concat(parseProcs(procs, `${abs}/cgroup.procs`));
    }
    // A child's descendants belong to the same unit; the unit's own cgroup passes itself down.
    const ownRoot = u !== undefined && !owner && !isChild(layout.manager, rel);
    const next = u && (owner || ownRoot) ? u : undefined;
    let subdirs: string[];
    try {
      subdirs = readSubdirsSync(abs);
    } catch (e) {
      // A cgroup removed during the walk (a job ending) loses only its own subtree.
      if (owner !== undefined && e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const name of subdirs) visit(`${rel}/${name}`, next);
  };
  for (const r of layout.roots) {
    try {
      visit(r, undefined);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return [...units.values()].filter((u) => u.rel !== "").sort((a, b) =>
    a.cgroupHost === b.cgroupHost ? a.uuid.localeCompare(b.uuid) : a.cgroupHost.localeCompare(b.cgroupHost)
  );
}
