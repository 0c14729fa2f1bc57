// The `libvirt` collector: QEMU VM cgroups under machine.slice (or the non-systemd `machine/` layout),
// the domain UUID and GPU devices from persistent or runtime domain XML, and swap/PSI/blkio switches.

import type { FlagSet } from "../common/flags.ts";
import { gatherNeeds } from "../privilege/declare.ts";
import type { Collector, CollectorContext } from "./framework/collector.ts";
import {
  addCgroupFlags,
  addGpuFlags,
  type CgroupOptions,
  cgroupOptions,
  gpuCommands,
  type GpuOptions,
  gpuOptions,
} from "./units/flags.ts";
import { UnitCollector } from "./units/unit_collector.ts";
import { resolveGpuType } from "./gpu/devices.ts";
import { LIBVIRT_CONTEXT, LibvirtDomains } from "./libvirt/domains.ts";
import { registerCollector } from "./framework/registry.ts";
import {
  createUnitSubCollectors,
  registerUnitSubCollectorFlags,
  type UnitSubOptions,
  unitSubOptions,
  unitSubSecurity,
} from "./units/subcollectors.ts";

/** The libvirt flags, read once. */
interface LibvirtOptions {
  cgroup: CgroupOptions;
  gpu: GpuOptions;
  sub: UnitSubOptions;
  swap: boolean;
  psi: boolean;
  blkio: boolean;
  xmlDirs: string[];
}

function libvirtOptions(f: FlagSet): LibvirtOptions {
  return {
    cgroup: cgroupOptions(f),
    gpu: gpuOptions(f),
    sub: unitSubOptions(f),
    swap: f.bool("collector.libvirt.swap-memory-metrics"),
    psi: f.bool("collector.libvirt.psi-metrics"),
    blkio: f.bool("collector.libvirt.blkio-metrics"),
    xmlDirs: [f.string("collector.libvirt.xml-dir"), f.string("collector.libvirt.runtime-xml-dir")],
  };
}

registerCollector({
  name: "libvirt",
  defaultEnabled: false,
  help: "libvirt VM cgroups",
  registerFlags(fs) {
    addCgroupFlags(fs);
    addGpuFlags(fs);
    registerUnitSubCollectorFlags(fs);
    for (
      const [k, what] of [["swap-memory-metrics", "swap memory"], ["psi-metrics", "PSI"], ["blkio-metrics", "block IO"]]
    ) {
      fs.add({
        name: `collector.libvirt.${k}`,
        kind: "bool",
        help: `Enables collection of ${what} metrics (default: disabled)`,
      });
    }
    fs.add({
      name: "collector.libvirt.xml-dir",
      kind: "string",
      default: "/etc/libvirt/qemu",
      hidden: true,
      help: "Directory containing XML files of instances",
    });
    fs.add({
      name: "collector.libvirt.runtime-xml-dir",
      kind: "string",
      default: "/run/libvirt/qemu",
      hidden: true,
      help: "Directory of libvirt's runtime (domstatus) XML files, read for instances without a file in xml-dir",
    });
  },
  options: libvirtOptions,
  security: (o) =>
    gatherNeeds([{ contexts: [LIBVIRT_CONTEXT], commands: gpuCommands(o.gpu) }, ...unitSubSecurity(o.sub)]),
  async create(ctx: CollectorContext, o: LibvirtOptions): Promise<Collector> {
    const gpuType = resolveGpuType(o.gpu.type, ctx.paths.sysfs, o.gpu, (m) => ctx.logger.warn(m));
    const domains = new LibvirtDomains({
      dirs: o.xmlDirs,
      gpuType,
      logger: ctx.logger,
      security: ctx.security,
      gpu: o.gpu,
    });
    // CEEMS builds a perf collector for libvirt but never calls its Update (no perf metrics for VMs). We
    // do run it: an operator who enables perf events gets them for VMs too, under the same cap_perfmon.
    const subs = await createUnitSubCollectors(ctx, o.sub);
    const uc = new UnitCollector(ctx, "libvirt", { swap: o.swap, psi: o.psi, blkio: o.blkio }, subs, {
      cgroup: o.cgroup,
    });
    return {
      start: () => uc.start(),
      async update(sink) {
        const units = await domains.resolve(uc.discover());
        const gpuShares = gpuType === "nogpu" ? undefined : await domains.shares(units).catch((e) => e as Error);
        const errors = await domains.check().then(() => [], (e) => [e as Error]);
        await uc.scrape(sink, units, { gpuShares, errors });
      },
      stop: () => uc.stop(),
    };
  },
});
