// The per-unit sub-collectors (perf, ebpf; rdma for slurm) as the unit collectors run them: their flags
// (declared once, read once into options), their declarations, and their construction.

import type { FlagSet } from "../../common/flags.ts";
import type { SecurityNeeds } from "../../privilege/declare.ts";
import { type RdmaOptions, rdmaOptions, rdmaSecurity, RdmaSubCollector } from "./rdma.ts";
import type { CollectorContext } from "../framework/collector.ts";
import { createEbpfCollector, type EbpfFlags, ebpfFlags, ebpfSecurity, registerEbpfFlags } from "./ebpf.ts";
import { createPerfCollector, type PerfFlags, perfFlags, perfSecurity, registerPerfFlags } from "./perf.ts";
import type { UnitSubCollector } from "./subcollector.ts";

/** Declares the perf and ebpf flags; safe to call from every unit collector's registerFlags. */
export function registerUnitSubCollectorFlags(fs: FlagSet): void {
  registerPerfFlags(fs);
  registerEbpfFlags(fs);
}

/** The sub-collectors' options: perf and ebpf for every unit collector, rdma for slurm only (as CEEMS). */
export interface UnitSubOptions {
  perf: PerfFlags;
  ebpf: EbpfFlags;
  rdma?: RdmaOptions;
}

/** Reads the sub-collectors' flags; `rdma` adds --collector.rdma.* (slurm). */
export function unitSubOptions(f: FlagSet, opts: { rdma?: boolean } = {}): UnitSubOptions {
  return { perf: perfFlags(f), ebpf: ebpfFlags(f), rdma: opts.rdma ? rdmaOptions(f) : undefined };
}

/** What the enabled sub-collectors declare (perf only where it runs: see libvirt.ts). */
export function unitSubSecurity(o: UnitSubOptions, runs: { perf: boolean } = { perf: true }): SecurityNeeds[] {
  return [runs.perf ? perfSecurity(o.perf) : {}, ebpfSecurity(o.ebpf), o.rdma ? rdmaSecurity(o.rdma) : {}];
}

/**
 * Builds the enabled sub-collectors for a unit collector (BPF objects are built and per-PID QP counters
 * turned on now, before the drop). `perf: false` leaves perf out; the rdma sub-collector runs when its
 * options are there and on (slurm only, as in CEEMS).
 */
export async function createUnitSubCollectors(
  ctx: CollectorContext,
  o: UnitSubOptions,
  opts: { perf: boolean } = { perf: true },
): Promise<UnitSubCollector[]> {
  const base = { logger: ctx.logger, paths: ctx.paths, security: ctx.security };
  const out: UnitSubCollector[] = [];
  const perf = opts.perf ? createPerfCollector({ ...base, flags: o.perf }) : undefined;
  if (perf) out.push({ name: "perf", update: (u, s, l) => perf.update(u, s, l), stop: () => perf.stop() });
  const ebpf = await createEbpfCollector({ ...base, flags: o.ebpf });
  if (ebpf) {
    out.push({
      name: "ebpf",
      start: (path) => ebpf.start(path),
      update: (u, s, l) => ebpf.update(u, s, l),
      stop: () => ebpf.stop(),
    });
  }
  if (o.rdma?.stats) {
    const logger = ctx.logger.with({ sub_collector: "rdma" });
    const rdma = new RdmaSubCollector(ctx.paths.sysfs, ctx.security, logger, o.rdma.cmd);
    await rdma.init();
    out.push({ name: "rdma", update: (u, s, l) => rdma.update(u, s, l), stop: () => rdma.stop() });
  }
  return out;
}
