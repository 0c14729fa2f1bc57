// The `libvirt` collector: QEMU VM cgroups under machine.slice (or the non-systemd `machine/` layout),
// the domain UUID and GPU devices from persistent or runtime domain XML, and swap/PSI/blkio switches.

import type { Collector, CollectorContext } from "./collector.ts";
import { addCgroupFlags, addGpuFlags } from "./cgroup/flags.ts";
import { UnitCollector } from "./cgroup/unit_collector.ts";
import { resolveGpuType } from "./gpu/devices.ts";
import { LibvirtDomains } from "./libvirt/domains.ts";
import { registerCollector } from "./registry.ts";
import {
  createUnitSubCollectors,
  registerUnitSubCollectorFlags,
  unitSubCollectorFeatures,
  unitSubCollectorReadPaths,
} from "./unit_subcollectors.ts";

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
  subFeatures: unitSubCollectorFeatures,
  readPaths: unitSubCollectorReadPaths,
  loadPaths: unitSubCollectorReadPaths,
  async create(ctx: CollectorContext): Promise<Collector> {
    const f = ctx.flags;
    const gpuType = resolveGpuType(f.string("collector.gpu.type"), ctx.paths.sysfs, {
      nvidiaSmi: f.string("collector.gpu.nvidia-smi-path"),
      rocmSmi: f.string("collector.gpu.rocm-smi-path"),
      amdSmi: f.string("collector.gpu.amd-smi-path"),
    }, (m) => ctx.logger.warn(m));
    const domains = new LibvirtDomains({
      dirs: [f.string("collector.libvirt.xml-dir"), f.string("collector.libvirt.runtime-xml-dir")],
      gpuType,
      logger: ctx.logger,
      security: ctx.security,
      flags: f,
    });
    const uc = new UnitCollector(ctx, "libvirt", {
      swap: f.bool("collector.libvirt.swap-memory-metrics"),
      psi: f.bool("collector.libvirt.psi-metrics"),
      blkio: f.bool("collector.libvirt.blkio-metrics"),
    }, {
      resolveUnits: (units) => domains.resolve(units),
      gpuShares: gpuType === "nogpu" ? undefined : (units) => domains.shares(units),
      extra: () => domains.check(),
      // CEEMS builds a perf collector for libvirt but never calls its Update (no perf metrics for VMs). We
      // do run it: an operator who enables perf events gets them for VMs too, under the same cap_perfmon.
      subCollectors: await createUnitSubCollectors(ctx),
    });
    return { start: () => uc.start(), update: (sink) => uc.update(sink), stop: () => uc.stop() };
  },
});
