// The shared engine of the slurm, libvirt and k8s collectors: discovers units, reads their cgroup
// statistics and writes CEEMS's ceems_compute_unit* families; each manager's collector drives it.

import type { Logger } from "../../common/log.ts";
import type { CollectorContext, Labels, MetricSink } from "../framework/collector.ts";
import type { ComputeUnit, UnitSubCollector } from "./subcollector.ts";
import type { CgroupOptions } from "./flags.ts";
import {
  type CgroupVersion,
  detectVersion,
  discoverUnits,
  findLayout,
  findRoots,
  hierarchyOf,
  type Layout,
  type Manager,
  rootsPlace,
  type Unit,
} from "./discovery.ts";
import { blockDevices, hostMemory } from "./fsread.ts";
import type { HostFacts, StatOptions, UnitStats } from "./stats.ts";
import { readStatsV1 } from "./stats_v1.ts";
import { readStatsV2 } from "./stats_v2.ts";

/** A GPU share attributed to a unit. */
export interface GpuShare {
  index: string;
  uuid: string;
  instanceId: string;
  value: number;
  smCount: number;
}

/**
 * What the manager's collector found for this scrape's units and hands down to `scrape`: GPU shares per
 * unit key (`cgroupHost\0uuid`) or the error that stopped the GPU mapping, and other failures of its own
 * (libvirt's domain check). The engine never calls back into the manager's collector.
 */
export interface UnitFindings {
  gpuShares?: Map<string, GpuShare[]> | Error;
  /** Failures of the manager's own per-scrape work: the scrape fails with the first, after emitting the rest. */
  errors?: Error[];
}

/** Help of ceems_scrape_collector_duration_seconds (as collectors/framework/scrape.ts writes it). */
const durationHelp = "ceems_exporter: Duration of a collector scrape.";

/** Key of a unit in hook maps. */
export function unitKey(u: Unit): string {
  return `${u.cgroupHost}\u0000${u.uuid}`;
}

/** How a unit collector starts. */
export interface UnitCollectorOptions {
  /** The --collector.cgroups.* flags. */
  cgroup: CgroupOptions;
  /**
   * Start without the manager's cgroup root (slurmd creates it when it starts): each scrape looks for it
   * again and fails with one line until it is there. Otherwise a missing root stops start-up.
   */
  rootMayAppearLater?: boolean;
}

/** Collector of one manager's compute units. */
export class UnitCollector {
  readonly version: CgroupVersion;
  #layout: Layout;
  readonly #cgroupfs: string;
  #host: HostFacts;
  readonly #logger: Logger;
  readonly #rootMayAppearLater: boolean;

  constructor(
    readonly ctx: CollectorContext,
    readonly manager: Manager,
    readonly opts: StatOptions,
    /** Per-unit sub-collectors (perf, ebpf, rdma), run concurrently after the cgroup statistics. */
    readonly subCollectors: UnitSubCollector[],
    options: UnitCollectorOptions,
  ) {
    this.#cgroupfs = ctx.paths.cgroupfs;
    this.#logger = ctx.logger;
    this.#rootMayAppearLater = options.rootMayAppearLater ?? false;
    this.version = detectVersion(this.#cgroupfs, options.cgroup.forceVersion);
    const subsystem = options.cgroup.activeSubsystem;
    if (this.#rootMayAppearLater) {
      const hierarchy = hierarchyOf(this.version, this.#cgroupfs, subsystem);
      this.#layout = { manager, version: this.version, hierarchy, roots: findRoots(manager, this.version, hierarchy) };
      if (this.#layout.roots.length === 0) {
        this.#logger.warn(`no ${manager} cgroup root yet; the collector fails until it appears`, {
          under: rootsPlace(manager, this.version, hierarchy),
        });
      }
    } else {
      this.#layout = findLayout(manager, this.version, this.#cgroupfs, subsystem);
    }
    const mem = hostMemory(ctx.paths.procfs);
    this.#host = { ...mem, blockDevices: opts.blkio ? blockDevices(ctx.paths.procfs) : new Map() };
  }

  /** Where and how units are found (the roots as of the last scrape). */
  get layout(): Layout {
    return this.#layout;
  }

  /** Looks for the roots again when they may come and go; throws (one line) while there are none. */
  #refreshRoots(): void {
    if (!this.#rootMayAppearLater) return;
    const l = this.#layout;
    const roots = findRoots(this.manager, this.version, l.hierarchy);
    const where = rootsPlace(this.manager, this.version, l.hierarchy);
    if (roots.length > 0 && l.roots.length === 0) this.#logger.info(`${this.manager} cgroup root found`, { roots });
    this.#layout = { ...l, roots };
    if (roots.length === 0) throw new Error(`no ${this.manager} cgroup root under ${where} (not created yet)`);
  }

  /** Units with processes (stale SLURM cgroups without any are dropped with a warning). */
  discover(): Unit[] {
    this.#refreshRoots();
    const units = discoverUnits(this.layout);
    if (this.manager !== "slurm") return units;
    return units.filter((u) => {
      if (u.pids.length > 0) return true;
      this.#logger.warn("ignoring stale cgroup without processes", { uuid: u.uuid, path: u.rel });
      return false;
    });
  }

  /** Reads one unit's statistics. */
  stats(u: Unit): UnitStats {
    const p = { cgroupfs: this.#cgroupfs, hierarchy: this.layout.hierarchy, rel: u.rel };
    if (this.version === "v2") return readStatsV2(p, this.manager, this.opts, this.#host);
    return readStatsV1(p, this.manager, this.opts, this.#host);
  }

  /**
   * One scrape of `units` (from discover(), as the manager's collector resolved them): counts, statistics,
   * the GPU shares found, the sub-collectors; throws after emitting everything it could when something failed.
   */
  async scrape(sink: MetricSink, units: Unit[], found: UnitFindings = {}): Promise<void> {
    const hostname = this.ctx.hostname;
    sink.gauge("ceems_compute_units", "Total number of jobs", { manager: this.manager, hostname }, units.length);
    const failures: string[] = [];
    for (const u of units) {
      const labels: Labels = { manager: this.manager, hostname, cgrouphostname: u.cgroupHost, uuid: u.uuid };
      let s: UnitStats;
      try {
        s = this.stats(u);
      } catch (e) {
        failures.push(`${u.uuid}: ${(e as Error).message}`);
        sink.gauge("ceems_compute_unit_collect_error", "Indicates collection error, 0=no error, 1=error", labels, 1);
        continue;
      }
      emitStats(sink, labels, s, this.opts);
    }
    const shares = found.gpuShares;
    const gpuError = shares instanceof Error ? shares : undefined;
    if (shares && !(shares instanceof Error)) {
      for (const u of units) {
        for (const g of shares.get(unitKey(u)) ?? []) {
          const labels = {
            manager: this.manager,
            hostname,
            cgrouphostname: u.cgroupHost,
            uuid: u.uuid,
            index: g.index,
            hindex: `${hostname}/gpu-${g.index}`,
            gpuuuid: g.uuid,
            gpuiid: g.instanceId,
          };
          sink.gauge(
            "ceems_compute_unit_gpu_index_flag",
            "A value > 0 indicates the job using current GPU",
            labels,
            g.value,
          );
          if (g.smCount > 0) {
            sink.gauge(
              "ceems_compute_unit_gpu_sm_count",
              "Number of streaming multiprocessors of the GPU or GPU instance used by the compute unit",
              labels,
              g.smCount,
            );
          }
        }
      }
    }
    await this.#runSubCollectors(units, sink);
    if (found.errors?.length) throw found.errors[0];
    if (gpuError) throw new Error(`GPU mapping failed: ${gpuError.message}`);
    if (failures.length) {
      throw new Error(`failed to read cgroups of ${failures.length} unit(s): ${failures.slice(0, 3).join("; ")}`);
    }
  }

  /** Runs the sub-collectors on this scrape's units; as in CEEMS a failing one is logged and the parent succeeds. */
  async #runSubCollectors(units: Unit[], sink: MetricSink): Promise<void> {
    const subs = this.subCollectors;
    if (subs.length === 0) return;
    const computeUnits: ComputeUnit[] = units.map((u) => ({
      uuid: u.uuid,
      cgroupPath: this.layout.hierarchy + u.rel,
      pids: u.pids,
    }));
    const labels: Labels = { manager: this.manager, hostname: this.ctx.hostname };
    await Promise.all(subs.map(async (s) => {
      const t0 = performance.now();
      await s.update(computeUnits, sink, labels);
      this.#duration(sink, s.name, t0);
    }));
  }

  #duration(sink: MetricSink, subcollector: string, t0: number): void {
    const labels = { collector: this.manager, subcollector };
    sink.gauge("ceems_scrape_collector_duration_seconds", durationHelp, labels, (performance.now() - t0) / 1000);
  }

  /** Runs the sub-collectors' start-up work (eBPF programs attach) against this collector's hierarchy. */
  async start(): Promise<void> {
    await Promise.all(this.subCollectors.map((s) => s.start?.(this.layout.hierarchy)));
  }

  /** Stops the sub-collectors (closes perf fds, detaches BPF programs, turns per-PID QP counters back off). */
  stop(): Promise<void> {
    // Every stop starts now (perf and ebpf finish synchronously); the returned promise waits for rdma's.
    const pending = this.subCollectors.map((s) => s.stop?.());
    return Promise.all(pending).then(() => {});
  }
}

/** Writes a unit's CPU, memory, swap, PSI, blkio and RDMA samples. */
export function emitStats(sink: MetricSink, labels: Labels, s: UnitStats, opts: StatOptions): void {
  sink.counter("ceems_compute_unit_cpu_user_seconds_total", "Total job CPU user seconds", labels, s.cpuUser);
  sink.counter("ceems_compute_unit_cpu_system_seconds_total", "Total job CPU system seconds", labels, s.cpuSystem);
  sink.gauge("ceems_compute_unit_cpus", "Total number of job CPUs", labels, s.cpus);
  sink.gauge("ceems_compute_unit_memory_rss_bytes", "Memory RSS used in bytes", labels, s.memoryRss);
  sink.gauge("ceems_compute_unit_memory_cache_bytes", "Memory cache used in bytes", labels, s.memoryCache);
  sink.gauge("ceems_compute_unit_memory_used_bytes", "Memory used in bytes", labels, s.memoryUsed);
  sink.gauge("ceems_compute_unit_memory_total_bytes", "Memory total in bytes", labels, s.memoryTotal);
  sink.gauge("ceems_compute_unit_memory_fail_count", "Memory fail count", labels, s.memoryFailCount);
  if (opts.swap) {
    sink.gauge("ceems_compute_unit_memsw_used_bytes", "Swap used in bytes", labels, s.memswUsed);
    sink.gauge("ceems_compute_unit_memsw_total_bytes", "Swap total in bytes", labels, s.memswTotal);
    sink.gauge("ceems_compute_unit_memsw_fail_count", "Swap fail count", labels, s.memswFailCount);
  }
  if (opts.psi) {
    sink.gauge("ceems_compute_unit_cpu_psi_seconds", "Total CPU PSI in seconds", labels, s.cpuPsi);
    sink.gauge("ceems_compute_unit_memory_psi_seconds", "Total memory PSI in seconds", labels, s.memoryPsi);
  }
  if (opts.blkio) {
    const names = [
      ["ceems_compute_unit_blkio_read_total_bytes", "Total block IO read bytes"],
      ["ceems_compute_unit_blkio_write_total_bytes", "Total block IO write bytes"],
      ["ceems_compute_unit_blkio_read_total_requests", "Total block IO read requests"],
      ["ceems_compute_unit_blkio_write_total_requests", "Total block IO write requests"],
    ];
    for (const [device, vals] of s.blkio) {
      vals.forEach((v, i) => {
        if (v > 0) sink.gauge(names[i][0], names[i][1], { ...labels, device }, v);
      });
    }
  }
  for (const [device, v] of s.rdmaHandles) {
    if (v <= 0) continue;
    sink.gauge("ceems_compute_unit_rdma_hca_handles", "Current number of RDMA HCA handles", { ...labels, device }, v);
    sink.gauge("ceems_compute_unit_rdma_hca_objects", "Current number of RDMA HCA objects", { ...labels, device }, v);
  }
}
