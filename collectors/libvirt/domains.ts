// libvirt domains: the domain XML (persistent `<domain>` or runtime `<domstatus>`), the VM's UUID and
// GPU devices from it, and the per-instance cache that outlives XML files removed while the VM runs.

import type { Logger } from "../../common/log.ts";
import type { DeclaredContext } from "../../privilege/declare.ts";
import type { SecurityManager } from "../../privilege/security.ts";
import type { GpuOptions } from "../units/flags.ts";
import type { Unit } from "../units/discovery.ts";
import { type GpuShare, unitKey } from "../units/unit_collector.ts";
import { type GpuDevice, loadGpus, normalizeBusId, type VGpu } from "../gpu/devices.ts";
import { child, childrenNamed, parseXml, textAt } from "../gpu/xml.ts";

/** What a domain XML tells us. */
export interface DomainInfo {
  uuid: string;
  /** PCI bus ids of passed-through devices. */
  pci: string[];
  /** UUIDs of mediated devices (vGPU, MIG-backed vGPU). */
  mdevs: string[];
}

/**
 * Parses a libvirt domain XML: a persistent definition (`<domain>`, /etc/libvirt/qemu) or a runtime
 * status file (`<domstatus>` wrapping the live `<domain>`, /run/libvirt/qemu).
 */
export function parseDomainXml(text: string): DomainInfo {
  const root = parseXml(text);
  const dom = root.name === "domstatus" ? child(root, "domain") : root;
  if (dom?.name !== "domain") {
    throw new Error(`domain XML: unexpected root <${root.name}>${dom ? "" : " without <domain>"}`);
  }
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

/** How long a domain's details are used before its XML is read again (CEEMS 0.10.1: 15 minutes). */
export const domainCacheTtlMs = 15 * 60_000;

/** Where and how domain XML is read. */
export interface LibvirtDomainsOptions {
  /** Directories searched in order for `<instance>.xml` (persistent definitions, then runtime status). */
  dirs: string[];
  gpuType: "nvidia" | "amd" | "nogpu";
  logger: Logger;
  security: SecurityManager;
  /** The SMI tools (resolved at start-up). */
  gpu: GpuOptions;
  ttlMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** The context root-only domain XML files are read in. */
export const LIBVIRT_CONTEXT: DeclaredContext = {
  name: "libvirt",
  caps: ["cap_dac_read_search"],
  flag: "collector.libvirt",
  reason: "reads libvirt's root-only domain XML files",
  uses: ["readFile"],
};

/**
 * Domain details per libvirt instance, read in a cap_dac_read_search context and cached while the VM's
 * cgroup exists: re-read after the TTL, but kept when the XML has disappeared meanwhile (OpenStack's runtime
 * files go when a VM shuts down; CEEMS #401/#403).
 */
export class LibvirtDomains {
  #cache = new Map<string, { info: DomainInfo; at: number }>();
  #pendingError?: Error;
  #gpus?: { devices: GpuDevice[]; vgpus: VGpu[] };
  readonly #dirs: string[];
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(private opts: LibvirtDomainsOptions) {
    this.#dirs = [...new Set(opts.dirs)];
    this.#ttlMs = opts.ttlMs ?? domainCacheTtlMs;
    this.#now = opts.now ?? Date.now;
  }

  /** Replaces each unit's instance name by its domain UUID (units whose XML was never read keep the name). */
  async resolve(units: Unit[]): Promise<Unit[]> {
    const now = this.#now();
    const errors: string[] = [];
    const todo = units.filter((u) => {
      const c = this.#cache.get(u.uuid);
      return !c || now - c.at > this.#ttlMs;
    });
    if (todo.length) {
      const n = this.#dirs.length;
      const results = await this.opts.security.run(
        LIBVIRT_CONTEXT,
        todo.flatMap((u) =>
          this.#dirs.map((d) => ({ kind: "readFile" as const, path: `${d}/${u.uuid}.xml`, maxBytes: 4 << 20 }))
        ),
      );
      todo.forEach((u, i) => {
        const tries = results.slice(i * n, i * n + n);
        const found = tries.find((r) => r.ok);
        const cached = this.#cache.get(u.uuid);
        if (!found) {
          if (cached) {
            cached.at = now;
            this.opts.logger.debug("domain XML gone; keeping the cached details", { instance: u.uuid });
          } else {
            errors.push(`${u.uuid}.xml: ${tries.map((r) => (r.ok ? "" : r.error)).join("; ")}`);
          }
          return;
        }
        try {
          this.#cache.set(u.uuid, { info: parseDomainXml(found.value as string), at: now });
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

  /** GPU shares of the resolved units (the SMI is asked once). */
  async shares(units: Unit[]): Promise<Map<string, GpuShare[]>> {
    if (!this.#gpus) {
      const g = this.opts.gpu;
      this.#gpus = await loadGpus({
        type: this.opts.gpuType as "nvidia" | "amd",
        nvidiaSmi: g.nvidiaSmi,
        rocmSmi: g.rocmSmi,
        amdSmi: g.amdSmi,
        security: this.opts.security,
      }, this.opts.gpuType === "nvidia");
    }
    const out = new Map<string, GpuShare[]>();
    for (const u of units) {
      const inst = (u as Unit & { instance?: string }).instance ?? u.uuid;
      const c = this.#cache.get(inst);
      if (c) out.set(unitKey(u), domainGpuShares(c.info, this.#gpus.devices, this.#gpus.vgpus));
    }
    return out;
  }

  /** Fails the scrape when the last resolve could not read or parse some domain's XML. */
  check(): Promise<void> {
    if (this.#pendingError) return Promise.reject(this.#pendingError);
    return Promise.resolve();
  }
}
