// The `libvirt` collector: QEMU VM cgroups under machine.slice (or the non-systemd `machine/` layout),
// the domain UUID and GPU passthrough/mdev devices from the domain XML, and swap/PSI/blkio switches.

import type { Collector, CollectorContext } from "./collector.ts";
import type { Unit } from "./cgroup/discovery.ts";
import { addCgroupFlags, addGpuFlags } from "./cgroup/flags.ts";
import { type GpuShare, UnitCollector, unitKey } from "./cgroup/unit_collector.ts";
import { type GpuDevice, loadGpus, normalizeBusId, resolveGpuType, type VGpu } from "./gpu/devices.ts";
import { child, childrenNamed, parseXml, textAt } from "./gpu/xml.ts";
import { registerCollector } from "./registry.ts";
import {
  createUnitSubCollectors,
  registerUnitSubCollectorFlags,
  unitSubCollectorFeatures,
  unitSubCollectorReadPaths,
} from "./unit_subcollectors.ts";

/** What a domain XML tells us. */
export interface DomainInfo {
  uuid: string;
  /** PCI bus ids of passed-through devices. */
  pci: string[];
  /** UUIDs of mediated devices (vGPU, MIG-backed vGPU). */
  mdevs: string[];
}

/** Parses a libvirt domain XML. */
export function parseDomainXml(text: string): DomainInfo {
  const dom = parseXml(text);
  if (dom.name !== "domain") throw new Error(`domain XML: unexpected root <${dom.name}>`);
  const uuid = textAt(dom, "uuid");
  if (!uuid) throw new Error("domain XML: no <uuid>");
  const info: DomainInfo = { uuid, pci: [], mdevs: [] };
  for (const hd of childrenNamed(child(dom, "devices"), "hostdev")) {
    const addr = child(child(hd, "source"), "address");
    if (!addr) continue;
    if (hd.attrs.type === "pci") {
      const h = (k: string) => (addr.attrs[k] ?? "0").replace(/^0x/, "");
      info.pci.push(
        normalizeBusId(
          `${h("domain").padStart(4, "0")}:${h("bus").padStart(2, "0")}:${h("slot").padStart(2, "0")}.${h("function")}`,
        ),
      );
    } else if (hd.attrs.type === "mdev" && addr.attrs.uuid) {
      info.mdevs.push(addr.attrs.uuid.toLowerCase());
    }
  }
  return info;
}

/** GPU shares of a domain: passthrough devices whole, vGPUs split evenly among the vGPUs on their GPU/instance. */
export function domainGpuShares(info: DomainInfo, devices: GpuDevice[], vgpus: VGpu[]): GpuShare[] {
  const out: GpuShare[] = [];
  for (const bus of info.pci) {
    const d = devices.find((x) => x.busId === bus);
    if (d) out.push({ index: d.index, uuid: d.uuid, instanceId: d.instanceId, value: 1, smCount: d.smCount });
  }
  for (const mdev of info.mdevs) {
    const v = vgpus.find((x) => x.mdevUuid === mdev);
    if (!v) continue;
    const d = devices.find((x) => x.busId === v.busId && x.instanceId === v.instanceId);
    if (!d) continue;
    const siblings = vgpus.filter((x) => x.busId === v.busId && x.instanceId === v.instanceId).length;
    out.push({
      index: d.index,
      uuid: d.uuid,
      instanceId: d.instanceId,
      value: d.fraction / Math.max(1, siblings),
      smCount: d.smCount,
    });
  }
  return out;
}

const cacheTtlMs = 15 * 60_000;

class LibvirtDomains {
  #cache = new Map<string, { info: DomainInfo; at: number }>();
  #pendingError?: Error;
  #gpus?: { devices: GpuDevice[]; vgpus: VGpu[] };

  constructor(private ctx: CollectorContext, private xmlDir: string, private gpuType: string) {}

  async resolve(units: Unit[]): Promise<Unit[]> {
    const now = Date.now();
    const errors: string[] = [];
    const todo = units.filter((u) => {
      const c = this.#cache.get(u.uuid);
      return !c || now - c.at > cacheTtlMs;
    });
    if (todo.length) {
      const results = await this.ctx.security.run(
        { name: "libvirt", caps: ["cap_dac_read_search"] },
        todo.map((u) => ({ kind: "readFile" as const, path: `${this.xmlDir}/${u.uuid}.xml`, maxBytes: 4 << 20 })),
      );
      todo.forEach((u, i) => {
        const r = results[i];
        if (!r.ok) {
          errors.push(`${u.uuid}.xml: ${r.error}`);
          return;
        }
        try {
          this.#cache.set(u.uuid, { info: parseDomainXml(r.value as string), at: now });
        } catch (e) {
          errors.push(`${u.uuid}.xml: ${(e as Error).message}`);
        }
      });
    }
    const live = new Set(units.map((u) => u.uuid));
    for (const k of this.#cache.keys()) if (!live.has(k)) this.#cache.delete(k);
    this.#pendingError = errors.length ? new Error(`domain XML: ${errors.slice(0, 3).join("; ")}`) : undefined;
    return units.map((u) => {
      const c = this.#cache.get(u.uuid);
      return c ? { ...u, uuid: c.info.uuid, instance: u.uuid } as Unit : u;
    });
  }

  async shares(units: Unit[]): Promise<Map<string, GpuShare[]>> {
    if (!this.#gpus) {
      const f = this.ctx.flags;
      this.#gpus = await loadGpus({
        type: this.gpuType as "nvidia" | "amd",
        nvidiaSmi: f.string("collector.gpu.nvidia-smi-path"),
        rocmSmi: f.string("collector.gpu.rocm-smi-path"),
        amdSmi: f.string("collector.gpu.amd-smi-path"),
        security: this.ctx.security,
      }, this.gpuType === "nvidia");
    }
    const out = new Map<string, GpuShare[]>();
    for (const u of units) {
      const inst = (u as Unit & { instance?: string }).instance ?? u.uuid;
      const c = this.#cache.get(inst);
      if (c) out.set(unitKey(u), domainGpuShares(c.info, this.#gpus.devices, this.#gpus.vgpus));
    }
    return out;
  }

  check(): Promise<void> {
    if (this.#pendingError) return Promise.reject(this.#pendingError);
    return Promise.resolve();
  }
}

function defaultXmlDir(flagValue: string, explicit: boolean): string {
  if (explicit) return flagValue;
  try {
    Deno.statSync(flagValue);
    return flagValue;
  } catch {
    return "/run/libvirt/qemu";
  }
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
  },
  subFeatures: unitSubCollectorFeatures,
  readPaths: unitSubCollectorReadPaths,
  async create(ctx: CollectorContext): Promise<Collector> {
    const f = ctx.flags;
    const gpuType = resolveGpuType(f.string("collector.gpu.type"), ctx.paths.sysfs, {
      nvidiaSmi: f.string("collector.gpu.nvidia-smi-path"),
      rocmSmi: f.string("collector.gpu.rocm-smi-path"),
      amdSmi: f.string("collector.gpu.amd-smi-path"),
    }, (m) => ctx.logger.warn(m));
    const xmlDir = defaultXmlDir(f.string("collector.libvirt.xml-dir"), f.isExplicit("collector.libvirt.xml-dir"));
    const domains = new LibvirtDomains(ctx, xmlDir, gpuType);
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
    return { update: (sink) => uc.update(sink), stop: () => uc.stop() };
  },
});
