// The per-unit sub-collectors (perf, ebpf; rdma for slurm) as the unit collectors run them: their flags
// (declared once), the capability-table features they enable, and their construction from a collector context.

import type { FlagSet } from "../common/flags.ts";
import { RdmaSubCollector } from "./cgroup/rdma.ts";
import type { CollectorContext, Labels, MetricSink } from "./collector.ts";
import { createEbpfCollector, ebpfCapabilities, registerEbpfFlags } from "./ebpf.ts";
import { defaultBpfOutDir } from "./ebpf/build.ts";
import { createPerfCollector, enabledPerfGroups, registerPerfFlags } from "./perf.ts";
import type { ComputeUnit } from "./subcollector.ts";

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

/** Declares the perf and ebpf flags; safe to call from every unit collector's registerFlags. */
export function registerUnitSubCollectorFlags(fs: FlagSet): void {
  registerPerfFlags(fs);
  registerEbpfFlags(fs);
}

/** Capability-table features the sub-collector flags turn on ("perf", "ebpf"). */
export function unitSubCollectorFeatures(flags: FlagSet): string[] {
  const out: string[] = [];
  if (flags.has("collector.perf.hardware-events") && enabledPerfGroups(flags).length > 0) out.push("perf");
  if (flags.has("collector.ebpf.io-metrics") && ebpfCapabilities(flags).length > 0) out.push("ebpf");
  return out;
}

/** Paths the run-as user must read for the sub-collectors: the BPF objects loaded after the drop. */
export function unitSubCollectorReadPaths(flags: FlagSet): string[] {
  if (!flags.has("collector.ebpf.io-metrics") || ebpfCapabilities(flags).length === 0) return [];
  return [flags.string("collector.ebpf.objects-dir") || defaultBpfOutDir];
}

/**
 * Builds the enabled sub-collectors for a unit collector (BPF objects are built and per-PID QP counters
 * turned on now, before the drop). `perf: false` leaves perf out (see libvirt.ts for why it does not);
 * `rdma: true` adds the rdma sub-collector when --collector.rdma.stats is set (slurm only, as in CEEMS).
 */
export async function createUnitSubCollectors(
  ctx: CollectorContext,
  opts: { perf: boolean; rdma?: boolean } = { perf: true },
): Promise<UnitSubCollector[]> {
  const base = { flags: ctx.flags, logger: ctx.logger, paths: ctx.paths, security: ctx.security };
  const out: UnitSubCollector[] = [];
  const perf = opts.perf ? createPerfCollector(base) : undefined;
  if (perf) out.push({ name: "perf", update: (u, s, l) => perf.update(u, s, l), stop: () => perf.stop() });
  const ebpf = await createEbpfCollector(base);
  if (ebpf) {
    out.push({
      name: "ebpf",
      start: (path) => ebpf.start(path),
      update: (u, s, l) => ebpf.update(u, s, l),
      stop: () => ebpf.stop(),
    });
  }
  if (opts.rdma && ctx.flags.bool("collector.rdma.stats")) {
    const logger = ctx.logger.with({ sub_collector: "rdma" });
    const rdma = new RdmaSubCollector(ctx.paths.sysfs, ctx.security, logger, ctx.flags.string("collector.rdma.cmd"));
    await rdma.init();
    out.push({ name: "rdma", update: (u, s, l) => rdma.update(u, s, l), stop: () => rdma.stop() });
  }
  return out;
}
