// GPU inventory for compute-unit mapping: NVIDIA through `nvidia-smi --query --xml-format` (MIG
// instances, vGPU through `nvidia-smi vgpu --query`), AMD through amd-smi or rocm-smi, run via the security manager.

import { commandOutput } from "../../privilege/command.ts";
import type { SecurityContext, SecurityManager } from "../../privilege/security.ts";
import { child, childrenNamed, parseXml, textAt } from "./xml.ts";
import { smCountForModel } from "./sm_table.ts";

/** One schedulable GPU: a full device or one MIG/partition instance of it. */
export interface GpuDevice {
  /** Index as the resource manager counts devices (flattened, or from --collector.slurm.gpu-order-map). */
  index: string;
  /** Minor number of the physical device. */
  minor: string;
  /** GPU UUID (NVIDIA) or serial number (AMD). */
  uuid: string;
  /** PCI bus id, "0000:10:00.0" lower case. */
  busId: string;
  /** MIG GPU instance id, or "" for a full device. */
  instanceId: string;
  /** Share of the physical GPU (SMs of this instance over all instances), 1 for a full device. */
  fraction: number;
  /** Streaming multiprocessors of this device or instance (0 when unknown). */
  smCount: number;
}

/** A vGPU (mdev) on a physical GPU, possibly on a MIG instance. */
export interface VGpu {
  busId: string;
  mdevUuid: string;
  instanceId: string;
}

/** Default bound on one SMI invocation. */
export const defaultToolTimeoutMs = 10_000;

/** Normalises "00000000:10:00.0" or "0000:C5:00.0" to "0000:10:00.0" lower case. */
export function normalizeBusId(id: string): string {
  const m = /([0-9a-fA-F]+):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-9a-fA-F])$/.exec(id.trim());
  if (!m) return id.trim().toLowerCase();
  return `${m[1].slice(-4).padStart(4, "0")}:${m[2]}:${m[3]}.${m[4]}`.toLowerCase();
}

/** Parses nvidia-smi XML into devices with flattened indexes (MIG instances counted one by one). */
export function parseNvidiaSmiXml(text: string): GpuDevice[] {
  const root = parseXml(text);
  if (root.name !== "nvidia_smi_log") throw new Error(`nvidia-smi XML: unexpected root <${root.name}>`);
  const out: GpuDevice[] = [];
  const gpus = childrenNamed(root, "gpu")
    .map((g) => ({ g, minor: Number(textAt(g, "minor_number")) }))
    .sort((a, b) => a.minor - b.minor);
  for (const { g } of gpus) {
    const uuid = textAt(g, "uuid");
    const minor = textAt(g, "minor_number");
    if (!uuid || !/^\d+$/.test(minor)) throw new Error("nvidia-smi XML: gpu without uuid or minor_number");
    const busId = normalizeBusId(g.attrs.id ?? textAt(g, "pci/pci_bus_id"));
    const migOn = textAt(g, "mig_mode/current_mig") === "Enabled";
    const migs = migOn ? childrenNamed(child(g, "mig_devices"), "mig_device") : [];
    if (migs.length === 0) {
      const smCount = smCountForModel(textAt(g, "product_name"));
      out.push({ index: String(out.length), minor, uuid, busId, instanceId: "", fraction: 1, smCount });
      continue;
    }
    const sms = migs.map((m) => Number(textAt(m, "device_attributes/shared/multiprocessor_count")) || 0);
    const total = sms.reduce((a, b) => a + b, 0);
    migs.forEach((m, i) => {
      out.push({
        index: String(out.length),
        minor,
        uuid,
        busId,
        instanceId: textAt(m, "gpu_instance_id"),
        fraction: total > 0 ? sms[i] / total : 1 / migs.length,
        smCount: sms[i],
      });
    });
  }
  return out;
}

/** Parses `nvidia-smi vgpu --query` text into vGPUs per physical GPU. */
export function parseNvidiaVgpuQuery(text: string): VGpu[] {
  const out: VGpu[] = [];
  let bus = "";
  let cur: VGpu | undefined;
  for (const line of text.split("\n")) {
    const g = /^GPU\s+([0-9a-fA-F:.]+)\s*$/.exec(line);
    if (g) {
      bus = normalizeBusId(g[1]);
      continue;
    }
    const kv = /^\s*([^:]+?)\s*:\s*(.*?)\s*$/.exec(line);
    if (!kv || !bus) continue;
    if (kv[1] === "vGPU ID") {
      cur = { busId: bus, mdevUuid: "", instanceId: "" };
      out.push(cur);
    } else if (cur && kv[1] === "MDEV UUID") {
      cur.mdevUuid = kv[2].toLowerCase();
    } else if (cur && kv[1] === "GPU Instance ID") {
      cur.instanceId = kv[2] === "N/A" ? "" : kv[2];
    }
  }
  return out;
}

/** Parses `rocm-smi --showproductname --showserial --showbus --csv` output. */
export function parseRocmSmiCsv(text: string): GpuDevice[] {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("="));
  const hi = lines.findIndex((l) => l.startsWith("device,"));
  if (hi < 0) throw new Error("rocm-smi: no CSV header");
  const header = lines[hi].split(",");
  const col = (n: string) => header.indexOf(n);
  const [dc, sc, bc] = [col("device"), col("Serial Number"), col("PCI Bus")];
  if (dc < 0 || sc < 0) throw new Error("rocm-smi: CSV lacks device or Serial Number column");
  const out: GpuDevice[] = [];
  for (const l of lines.slice(hi + 1)) {
    const f = l.split(",");
    const m = /^card(\d+)$/.exec(f[dc] ?? "");
    if (!m) throw new Error(`rocm-smi: unexpected device ${JSON.stringify(f[dc])}`);
    out.push({
      index: m[1],
      minor: m[1],
      uuid: f[sc] ?? "",
      busId: bc >= 0 ? normalizeBusId(f[bc] ?? "") : "",
      instanceId: "",
      fraction: 1,
      smCount: 0,
    });
  }
  return out;
}

/** Parses `amd-smi static -a -B -b -p --json` output (array of per-GPU objects). */
export function parseAmdSmiJson(text: string): GpuDevice[] {
  const data = JSON.parse(text);
  const list = Array.isArray(data) ? data : data?.gpu_data;
  if (!Array.isArray(list)) throw new Error("amd-smi: expected a JSON array");
  return list.map((g: Record<string, Record<string, unknown> | number>, i: number) => {
    const idx = String(typeof g.gpu === "number" ? g.gpu : i);
    const asic = (g.asic ?? {}) as Record<string, unknown>;
    const bus = (g.bus ?? {}) as Record<string, unknown>;
    return {
      index: idx,
      minor: idx,
      uuid: String(asic.asic_serial ?? asic.serial ?? ""),
      busId: normalizeBusId(String(bus.bdf ?? "")),
      instanceId: "",
      fraction: 1,
      smCount: 0,
    };
  });
}

/** Applies --collector.slurm.gpu-order-map (`<idx>:<minor>[.<gpu instance>],...`) to the devices. */
export function applyOrderMap(devices: GpuDevice[], orderMap: string): GpuDevice[] {
  if (!orderMap.trim()) return devices;
  const out: GpuDevice[] = [];
  for (const entry of orderMap.split(",")) {
    const m = /^\s*(\d+):(\d+)(?:\.(\d+))?\s*$/.exec(entry);
    if (!m) throw new Error(`--collector.slurm.gpu-order-map: malformed entry ${JSON.stringify(entry)}`);
    const dev = devices.find((d) => d.minor === m[2] && d.instanceId === (m[3] ?? ""));
    if (dev) out.push({ ...dev, index: m[1] });
  }
  return out;
}

/** The SMI tools run without any capability, as the exporter's user. */
export const GPU_TOOL_CONTEXT: SecurityContext = { name: "gpu", caps: [] };

/** Runs an SMI command (asynchronously, capability-free) and returns stdout; non-zero exit or timeout throws. */
export function runTool(security: SecurityManager, cmd: string[], timeoutMs = defaultToolTimeoutMs): Promise<string> {
  return commandOutput(security, GPU_TOOL_CONTEXT, { cmd, timeoutMs }, { asRoot: false });
}

/** Autodetects the GPU vendor from PCI display/accelerator devices in sysfs. */
export function detectGpuType(sysfs: string): "nvidia" | "amd" | "nogpu" {
  try {
    for (const e of Deno.readDirSync(`${sysfs}/bus/pci/devices`)) {
      const base = `${sysfs}/bus/pci/devices/${e.name}`;
      try {
        const cls = Deno.readTextFileSync(`${base}/class`).trim();
        if (!cls.startsWith("0x03") && !cls.startsWith("0x12")) continue;
        const vendor = Deno.readTextFileSync(`${base}/vendor`).trim();
        if (vendor === "0x10de") return "nvidia";
        if (vendor === "0x1002") return "amd";
      } catch {
        // unreadable device: skip
      }
    }
  } catch {
    // no PCI tree
  }
  return "nogpu";
}

/** Settings of a GPU inventory. */
export interface GpuConfig {
  type: "nvidia" | "amd" | "nogpu";
  nvidiaSmi: string;
  rocmSmi: string;
  amdSmi: string;
  security: SecurityManager;
  timeoutMs?: number;
}

/** Loads devices (and vGPUs for NVIDIA when asked) from the vendor tool. */
export async function loadGpus(cfg: GpuConfig, withVgpu: boolean): Promise<{ devices: GpuDevice[]; vgpus: VGpu[] }> {
  const t = cfg.timeoutMs ?? defaultToolTimeoutMs;
  if (cfg.type === "nvidia") {
    const smi = cfg.nvidiaSmi;
    if (!smi) throw new Error("nvidia-smi not found");
    const devices = parseNvidiaSmiXml(await runTool(cfg.security, [smi, "--query", "--xml-format"], t));
    const vgpus = withVgpu ? parseNvidiaVgpuQuery(await runTool(cfg.security, [smi, "vgpu", "--query"], t)) : [];
    return { devices, vgpus };
  }
  if (cfg.type === "amd") {
    const amd = cfg.amdSmi;
    if (amd) {
      return {
        devices: parseAmdSmiJson(await runTool(cfg.security, [amd, "static", "-a", "-B", "-b", "-p", "--json"], t)),
        vgpus: [],
      };
    }
    const rocm = cfg.rocmSmi;
    if (!rocm) throw new Error("neither amd-smi nor rocm-smi found");
    const out = await runTool(cfg.security, [rocm, "--showproductname", "--showserial", "--showbus", "--csv"], t);
    return { devices: parseRocmSmiCsv(out), vgpus: [] };
  }
  return { devices: [], vgpus: [] };
}

/** GPU type from --collector.gpu.type, else autodetected; an autodetected vendor without its tool becomes nogpu. */
export function resolveGpuType(
  flagType: string,
  sysfs: string,
  tools: { nvidiaSmi: string; rocmSmi: string; amdSmi: string },
  warn: (msg: string) => void,
): "nvidia" | "amd" | "nogpu" {
  if (flagType === "nvidia" || flagType === "amd" || flagType === "nogpu") return flagType;
  const t = detectGpuType(sysfs);
  if (t === "nvidia" && !tools.nvidiaSmi) {
    warn("NVIDIA GPU found but nvidia-smi is not; GPU mapping disabled");
    return "nogpu";
  }
  if (t === "amd" && !(tools.amdSmi || tools.rocmSmi)) {
    warn("AMD GPU found but neither amd-smi nor rocm-smi; GPU mapping disabled");
    return "nogpu";
  }
  return t;
}
