// The perf sub-collector: per-unit hardware, software and cache counters through perf_event_open,
// opened in a cap_perfmon security context and read from the main thread, as CEEMS's ceems_perf_*_total.

import type { FlagSet } from "../../common/flags.ts";
import type { Logger } from "../../common/log.ts";
import { parseCpuList, perfClose, perfRead, type PerfTarget, PerfType, scaledCount } from "../../ffi/perf.ts";
import type { DeclaredContext, SecurityNeeds } from "../../privilege/declare.ts";
import type { OpResult, PrivilegedOp, SecurityManager } from "../../privilege/security.ts";
import type { Labels, MetricSink, Paths } from "../framework/collector.ts";
import { cgroupHierarchyOf, type ComputeUnit, readMountInfo } from "./subcollector.ts";

/** One CEEMS perf metric: its name stem (ceems_perf_<stem>_total), group, perf type/config, help. */
export interface PerfEventDef {
  stem: string;
  /** CEEMS's profiler name, as given to --collector.perf.{hardware,software,cache}-profilers. */
  profiler: string;
  group: "hardware" | "software" | "cache";
  type: number;
  config: number;
  help: string;
}

const hw = (stem: string, profiler: string, config: number, help: string): PerfEventDef => ({
  stem,
  profiler,
  group: "hardware",
  type: PerfType.hardware,
  config,
  help,
});
const sw = (stem: string, profiler: string, config: number, help: string): PerfEventDef => ({
  stem,
  profiler,
  group: "software",
  type: PerfType.software,
  config,
  help,
});
/** Cache events: cache id | op << 8 | result << 16 (op 0 read, 1 write; result 0 access, 1 miss). */
const cache = (stem: string, profiler: string, id: number, op: number, miss: number, help: string): PerfEventDef => ({
  stem,
  profiler,
  group: "cache",
  type: PerfType.hwCache,
  config: id | (op << 8) | (miss << 16),
  help,
});

/** Every event CEEMS reports, in CEEMS's order. */
export const perfEvents: PerfEventDef[] = [
  hw("cpucycles", "CpuCycles", 0, "Number of CPU cycles (frequency scaled)"),
  hw("instructions", "CpuInstr", 1, "Number of CPU instructions"),
  hw("branch_instructions", "BranchInstr", 4, "Number of CPU branch instructions"),
  hw("branch_misses", "BranchMisses", 5, "Number of CPU branch misses"),
  hw("cache_refs", "CacheRef", 2, "Number of cache references (non frequency scaled)"),
  hw("cache_misses", "CacheMisses", 3, "Number of cache misses"),
  hw("ref_cpucycles", "RefCpuCycles", 9, "Number of CPU cycles"),
  sw("page_faults", "PageFault", 2, "Number of page faults"),
  sw("context_switches", "ContextSwitch", 3, "Number of context switches"),
  sw("cpu_migrations", "CpuMigration", 4, "Number of CPU process migrations"),
  sw("minor_faults", "MinorFault", 5, "Number of minor page faults"),
  sw("major_faults", "MajorFault", 6, "Number of major page faults"),
  cache("cache_l1d_read_hits", "L1DataReadHit", 0, 0, 0, "Number L1 data cache read hits"),
  cache("cache_l1d_read_misses", "L1DataReadMiss", 0, 0, 1, "Number L1 data cache read misses"),
  cache("cache_l1d_write_hits", "L1DataWriteHit", 0, 1, 0, "Number L1 data cache write hits"),
  cache("cache_l1_instr_read_misses", "L1InstrReadMiss", 1, 0, 1, "Number instruction L1 instruction read misses"),
  cache("cache_tlb_instr_read_hits", "InstrTLBReadHit", 4, 0, 0, "Number instruction TLB read hits"),
  cache("cache_tlb_instr_read_misses", "InstrTLBReadMiss", 4, 0, 1, "Number instruction TLB read misses"),
  cache("cache_ll_read_hits", "LLReadHit", 2, 0, 0, "Number last level read hits"),
  cache("cache_ll_read_misses", "LLReadMiss", 2, 0, 1, "Number last level read misses"),
  cache("cache_ll_write_hits", "LLWriteHit", 2, 1, 0, "Number last level write hits"),
  cache("cache_ll_write_misses", "LLWriteMiss", 2, 1, 1, "Number last level write misses"),
  cache("cache_bpu_read_hits", "BPUReadHit", 5, 0, 0, "Number BPU read hits"),
  cache("cache_bpu_read_misses", "BPUReadMiss", 5, 0, 1, "Number BPU read misses"),
];

const groupFlags: Record<PerfEventDef["group"], { enable: string; select: string; what: string }> = {
  hardware: { enable: "hardware-events", select: "hardware-profilers", what: "hardware events" },
  software: { enable: "software-events", select: "software-profilers", what: "software events" },
  cache: { enable: "hardware-cache-events", select: "cache-profilers", what: "hardware cache events" },
};

/** Declares the perf flags (idempotent: every unit collector calls it). */
export function registerPerfFlags(fs: FlagSet): void {
  if (fs.has("collector.perf.hardware-events")) return;
  for (const [group, f] of Object.entries(groupFlags)) {
    fs.add({
      name: `collector.perf.${f.enable}`,
      kind: "bool",
      default: false,
      help: `Enables collection of perf ${f.what} (default: disabled)`,
    });
    const names = perfEvents.filter((e) => e.group === group).map((e) => e.profiler);
    fs.add({
      name: `collector.perf.${f.select}`,
      kind: "strings",
      help: `perf ${group} profilers to collect (${names.join(", ")}; default: all)`,
      validate: (v) => {
        for (const n of v as string[]) {
          if (!names.includes(n)) return `unknown ${group} profiler "${n}" (want one of ${names.join(", ")})`;
        }
        return undefined;
      },
    });
  }
  fs.add({
    name: "collector.perf.env-var",
    kind: "strings",
    help: "Enable profiling only on the processes having any of these environment variables set. " +
      "If empty, all processes will be profiled.",
  });
}

/** The perf flags, read once. */
export interface PerfFlags {
  /** Event groups enabled (empty: the sub-collector is off). */
  groups: PerfEventDef["group"][];
  /** Profilers chosen per group (empty: all). */
  profilers: Record<PerfEventDef["group"], string[]>;
  /** Count only processes having one of these environment variables (empty: all). */
  envVars: string[];
}

/** Reads the perf flags (declared by registerPerfFlags). */
export function perfFlags(f: FlagSet): PerfFlags {
  const groups = (Object.keys(groupFlags) as PerfEventDef["group"][]).filter((g) =>
    f.bool(`collector.perf.${groupFlags[g].enable}`)
  );
  const profilers = Object.fromEntries(
    Object.entries(groupFlags).map(([g, v]) => [g, f.strings(`collector.perf.${v.select}`)]),
  ) as Record<PerfEventDef["group"], string[]>;
  return { groups, profilers, envVars: f.strings("collector.perf.env-var") };
}

/** The context perf events are opened in. */
export const PERF_CONTEXT: DeclaredContext = {
  name: "perf",
  caps: ["cap_perfmon"],
  // perf has no --collector.perf flag: any of its event flags (under slurm, libvirt or k8s) enables it.
  flag: "collector.perf.*-events",
  reason: "opens perf events of other users' processes",
  uses: ["perfOpen"],
};

/** The context process environments are read in, for --collector.perf.env-var. */
export const PERF_ENVIRON_CONTEXT: DeclaredContext = {
  name: "perf_environ",
  caps: ["cap_sys_ptrace", "cap_dac_read_search"],
  flag: "collector.perf.env-var",
  reason: "filters processes by their environment (/proc/<pid>/environ)",
  uses: ["readEnviron"],
};

/** What perf declares with its flags. */
export function perfSecurity(o: PerfFlags): SecurityNeeds {
  if (o.groups.length === 0) return {};
  return { contexts: o.envVars.length ? [PERF_CONTEXT, PERF_ENVIRON_CONTEXT] : [PERF_CONTEXT] };
}

/** Errors meaning "this host cannot count this event at all". */
const unsupportedCodes = new Set(["ENOENT", "EOPNOTSUPP", "ENODEV", "ENOTSUPP"]);

interface UnitState {
  mode: "cgroup" | "pids";
  /** Open fds per event stem. */
  fds: Map<string, number[]>;
  /** Pids that have their own fds (pids mode). */
  pids: Set<number>;
  /** Last reported value per stem (counters never go backwards). */
  last: Map<string, number>;
}

/** Options of the perf sub-collector. */
export interface PerfOptions {
  flags: PerfFlags;
  logger: Logger;
  paths: Paths;
  security: SecurityManager;
}

/** Per-unit perf counters; the unit collectors call update() each scrape. */
export class PerfCollector {
  #events: PerfEventDef[];
  #envVars: string[];
  #units = new Map<string, UnitState>();
  #unsupported = new Set<string>();
  #cpus: number[];
  #logger: Logger;
  #paths: Paths;
  #security: SecurityManager;

  constructor(opts: PerfOptions) {
    const { groups, profilers } = opts.flags;
    this.#events = perfEvents.filter((e) =>
      groups.includes(e.group) && (profilers[e.group].length === 0 || profilers[e.group].includes(e.profiler))
    );
    this.#envVars = opts.flags.envVars;
    this.#logger = opts.logger.with({ sub_collector: "perf" });
    this.#paths = opts.paths;
    this.#security = opts.security;
    let cpus: number[] = [];
    try {
      cpus = parseCpuList(Deno.readTextFileSync(`${opts.paths.sysfs}/devices/system/cpu/online`));
    } catch {
      // Without the CPU list cgroup mode is impossible; units fall back to per-process counting.
    }
    this.#cpus = cpus;
  }

  /** The events still counted (those the host proved unable to count are dropped). */
  get activeEvents(): PerfEventDef[] {
    return this.#events.filter((e) => !this.#unsupported.has(e.stem));
  }

  /**
   * Opens counters for new units and processes, closes those of ended units, and emits every counter.
   * Never throws: a failure is logged and reported as false (the parent's own metrics stay).
   */
  async update(units: ComputeUnit[], sink: MetricSink, labels: Labels): Promise<boolean> {
    try {
      await this.#update(units, sink, labels);
      return true;
    } catch (e) {
      this.#logger.error("sub-collector scrape failed", { err: (e as Error).message });
      return false;
    }
  }

  async #update(units: ComputeUnit[], sink: MetricSink, labels: Labels): Promise<void> {
    const seen = new Set(units.map((u) => u.uuid));
    for (const [uuid, st] of this.#units) {
      if (!seen.has(uuid)) {
        this.#closeUnit(st);
        this.#units.delete(uuid);
      }
    }
    await this.#openNew(units);
    for (const u of units) {
      const st = this.#units.get(u.uuid);
      if (!st) continue;
      for (const ev of this.activeEvents) {
        const fds = st.fds.get(ev.stem);
        if (!fds || fds.length === 0) continue;
        let sum = 0;
        for (const fd of fds) {
          try {
            sum += scaledCount(perfRead(fd));
          } catch (e) {
            this.#logger.debug("perf read failed", { uuid: u.uuid, event: ev.stem, err: (e as Error).message });
          }
        }
        const value = Math.max(sum, st.last.get(ev.stem) ?? 0);
        st.last.set(ev.stem, value);
        // As CEEMS: a counter that has not counted anything yet is not reported.
        if (value <= 0) continue;
        sink.counter(`ceems_perf_${ev.stem}_total`, ev.help, { ...labels, uuid: u.uuid }, value);
      }
    }
  }

  /** Closes every counter. */
  stop(): void {
    for (const st of this.#units.values()) this.#closeUnit(st);
    this.#units.clear();
  }

  #closeUnit(st: UnitState): void {
    for (const fds of st.fds.values()) for (const fd of fds) perfClose(fd);
    st.fds.clear();
  }

  async #selectPids(pids: number[]): Promise<number[]> {
    if (this.#envVars.length === 0 || pids.length === 0) return pids;
    const [res] = await this.#security.run(PERF_ENVIRON_CONTEXT, [
      { kind: "readEnviron", procfs: this.#paths.procfs, pids },
    ]);
    if (!res.ok) throw new Error(`reading process environments: ${res.error}`);
    const envs = res.value as Record<string, string[]>;
    const wanted = this.#envVars.map((v) => `${v}=`);
    return pids.filter((p) => (envs[String(p)] ?? []).some((kv) => wanted.some((w) => kv.startsWith(w))));
  }

  #parentOf(pid: number): number | undefined {
    try {
      const stat = Deno.readTextFileSync(`${this.#paths.procfs}/${pid}/stat`);
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      return undefined;
    }
  }

  async #openNew(units: ComputeUnit[]): Promise<void> {
    const events = this.activeEvents;
    if (events.length === 0) return;
    const mounts = readMountInfo(this.#paths.procfs);
    // Each planned op: which unit/event it is for, and which mode it was tried in.
    const plan: { uuid: string; stem: string; mode: UnitState["mode"]; pid?: number; op: PrivilegedOp }[] = [];
    for (const u of units) {
      let st = this.#units.get(u.uuid);
      if (!st) {
        const h = cgroupHierarchyOf(u.cgroupPath, mounts);
        const cgroupMode = this.#envVars.length === 0 && this.#cpus.length > 0 &&
          (h?.version === 2 || (h?.version === 1 && h.controllers.includes("perf_event")));
        st = { mode: cgroupMode ? "cgroup" : "pids", fds: new Map(), pids: new Set(), last: new Map() };
        this.#units.set(u.uuid, st);
        if (cgroupMode) {
          for (const ev of events) {
            for (const cpu of this.#cpus) {
              const target: PerfTarget = { cgroupPath: u.cgroupPath, cpu };
              plan.push({ uuid: u.uuid, stem: ev.stem, mode: "cgroup", op: perfOp(ev, target) });
            }
          }
          continue;
        }
      }
      if (st.mode !== "pids") continue;
      const fresh = u.pids.filter((p) => !st.pids.has(p));
      // Children forked after their parent's counter opened are counted through inheritance.
      const top = fresh.filter((p) => !st.pids.has(this.#parentOf(p) ?? -1));
      for (const p of fresh) if (!top.includes(p)) st.pids.add(p);
      for (const pid of await this.#selectPids(top)) {
        for (const ev of events) {
          plan.push({ uuid: u.uuid, stem: ev.stem, mode: "pids", pid, op: perfOp(ev, { pid, inherit: true }) });
        }
      }
      for (const p of top) st.pids.add(p);
    }
    if (plan.length === 0) return;
    const results = await this.#security.run(PERF_CONTEXT, plan.map((p) => p.op));
    this.#collectResults(plan, results, units);
  }

  #collectResults(
    plan: { uuid: string; stem: string; mode: UnitState["mode"]; pid?: number }[],
    results: OpResult[],
    units: ComputeUnit[],
  ): void {
    const newlyUnsupported: string[] = [];
    const failedCgroup = new Set<string>();
    let firstError: string | undefined;
    plan.forEach((p, i) => {
      const r = results[i];
      const st = this.#units.get(p.uuid)!;
      if (r?.ok) {
        const fd = r.value as number;
        if (this.#unsupported.has(p.stem)) {
          perfClose(fd);
          return;
        }
        const list = st.fds.get(p.stem) ?? [];
        list.push(fd);
        st.fds.set(p.stem, list);
        return;
      }
      if (r && unsupportedCodes.has(r.code ?? "")) {
        if (!this.#unsupported.has(p.stem)) newlyUnsupported.push(`${p.stem} (${r.code})`);
        this.#unsupported.add(p.stem);
      } else if (p.mode === "cgroup") {
        failedCgroup.add(p.uuid);
        firstError ??= r?.error;
      } else {
        firstError ??= r?.error;
      }
    });
    for (const stem of this.#unsupported) {
      for (const st of this.#units.values()) {
        for (const fd of st.fds.get(stem) ?? []) perfClose(fd);
        st.fds.delete(stem);
      }
    }
    if (newlyUnsupported.length > 0) {
      this.#logger.warn("perf events not supported on this host, not reported", {
        events: newlyUnsupported.join(","),
      });
    }
    if (firstError) this.#logger.debug("opening some perf counters failed", { err: firstError });
    // A unit whose cgroup cannot be counted is counted per process from the next scrape on.
    for (const uuid of failedCgroup) {
      const st = this.#units.get(uuid)!;
      this.#closeUnit(st);
      st.mode = "pids";
      if (!units.some((u) => u.uuid === uuid)) this.#units.delete(uuid);
    }
  }
}

function perfOp(ev: PerfEventDef, target: PerfTarget): PrivilegedOp {
  return { kind: "perfOpen", type: ev.type, config: ev.config, target };
}

/** Builds the perf sub-collector when a perf flag is on, else undefined. */
export function createPerfCollector(opts: PerfOptions): PerfCollector | undefined {
  if (opts.flags.groups.length === 0) return undefined;
  return new PerfCollector(opts);
}
