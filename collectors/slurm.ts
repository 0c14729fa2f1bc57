// The `slurm` collector: SLURM job cgroups (v1 `slurm[_<node>]/uid_*/job_*`, v2 `[<node>_]slurmstepd.scope/job_*`
// or `/<SLUID>`) as ceems_compute_unit* metrics, GPU→job mapping from environments or map files, rdma sub-collector.

import type { FlagSet } from "../common/flags.ts";
import { gatherNeeds, type SecurityNeeds } from "../privilege/declare.ts";
import type { Collector, CollectorContext } from "./framework/collector.ts";
import type { Unit } from "./units/discovery.ts";
import {
  addCgroupFlags,
  addGpuFlags,
  addRdmaFlags,
  type CgroupOptions,
  cgroupOptions,
  gpuCommands,
  type GpuOptions,
  gpuOptions,
} from "./units/flags.ts";
import { type GpuShare, UnitCollector, unitKey } from "./units/unit_collector.ts";
import { applyOrderMap, type GpuDevice, loadGpus, resolveGpuType } from "./gpu/devices.ts";
import { registerCollector } from "./framework/registry.ts";
import {
  createUnitSubCollectors,
  registerUnitSubCollectorFlags,
  type UnitSubOptions,
  unitSubOptions,
  unitSubSecurity,
} from "./units/subcollectors.ts";
import { expandHostlist } from "../common/slurm_hostlist.ts";
import { SluidResolver, SLURM_ENVIRON_CONTEXT } from "./slurm/sluid.ts";

/** The slurm flags, read once. */
export interface SlurmOptions {
  cgroup: CgroupOptions;
  gpu: GpuOptions;
  sub: UnitSubOptions;
  swap: boolean;
  psi: boolean;
  gpuOrderMap: string;
  gresConfigFile: string;
  /** Directory of files named by GPU index holding a job id ("" = read job environments instead). */
  gpuJobMapPath: string;
}

/** Reads the slurm flags (and its sub-collectors' and shared groups'). */
export function slurmOptions(f: FlagSet): SlurmOptions {
  const gpuOrderMap = f.string("collector.slurm.gpu-order-map");
  applyOrderMap([], gpuOrderMap); // validates the flag at start-up
  return {
    cgroup: cgroupOptions(f),
    gpu: gpuOptions(f),
    sub: unitSubOptions(f, { rdma: true }),
    swap: f.bool("collector.slurm.swap-memory-metrics"),
    psi: f.bool("collector.slurm.psi-metrics"),
    gpuOrderMap,
    gresConfigFile: f.string("collector.slurm.gres-config-file"),
    gpuJobMapPath: f.string("collector.slurm.gpu-job-map-path"),
  };
}

/** What slurm declares: job environments read unless a GPU job map is given, its tools, sub-collectors. */
export function slurmSecurity(o: SlurmOptions): SecurityNeeds {
  const own: SecurityNeeds = {
    contexts: o.gpuJobMapPath ? [] : [SLURM_ENVIRON_CONTEXT],
    commands: gpuCommands(o.gpu),
  };
  return gatherNeeds([own, ...unitSubSecurity(o.sub)]);
}

/** GPU request of a job read from its environment. */
export interface JobGpuRequest {
  ordinals: string[];
  /** SLURM_SHARDS_ON_NODE, when the job uses GPU shards. */
  shards?: number;
  /** CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, when the job uses MPS. */
  mpsPercent?: number;
}

/** Picks the GPU request of job `jobId` from process environments (KEY=VALUE lists). */
export function gpuRequestFromEnv(jobId: string, envs: string[][]): JobGpuRequest | undefined {
  for (const env of envs) {
    const vars = new Map(env.map((kv) => {
      const i = kv.indexOf("=");
      return [kv.slice(0, i), kv.slice(i + 1)] as [string, string];
    }));
    if (vars.get("SLURM_JOB_ID") !== jobId) continue;
    const list = vars.get("SLURM_JOB_GPUS") ?? vars.get("SLURM_STEP_GPUS") ?? vars.get("GPU_DEVICE_ORDINAL");
    if (!list) continue;
    const ordinals = list.split(",").map((s) => s.trim()).filter((s) => /^\d+$/.test(s));
    if (!ordinals.length) continue;
    const shards = vars.has("SLURM_SHARDS_ON_NODE") ? Number(vars.get("SLURM_SHARDS_ON_NODE")) : undefined;
    const mps = vars.has("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE")
      ? Number(vars.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"))
      : undefined;
    return { ordinals, shards, mpsPercent: mps };
  }
  return undefined;
}

/** Shards (or MPS units) configured per GPU file index in gres.conf, for this host. */
export function parseGresShards(text: string, hostname: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const kv = new Map(
      line.split(/\s+/).map((p) => {
        const i = p.indexOf("=");
        return [p.slice(0, i).toLowerCase(), p.slice(i + 1)] as [string, string];
      }),
    );
    const name = kv.get("name");
    if (name !== "shard" && name !== "mps") continue;
    const node = kv.get("nodename");
    if (node && hostname && !expandHostlist(node).includes(hostname)) continue;
    const files = expandHostlist(kv.get("file") ?? "").map((f) => /(\d+)$/.exec(f)?.[1]).filter((x): x is string =>
      !!x
    );
    const count = Number(kv.get("count") ?? 0);
    if (!files.length || !count) continue;
    const per = out.get(name) ?? new Map<string, number>();
    for (const f of files) per.set(f, count / files.length);
    out.set(name, per);
  }
  return out;
}

class SlurmGpuMapper {
  #devices?: GpuDevice[];
  #cache = new Map<string, GpuShare[]>();
  constructor(private ctx: CollectorContext, private o: SlurmOptions, private gpuType: "nvidia" | "amd") {}

  async #loadDevices(): Promise<GpuDevice[]> {
    if (this.#devices) return this.#devices;
    const { devices } = await loadGpus({ ...this.o.gpu, type: this.gpuType, security: this.ctx.security }, false);
    this.#devices = applyOrderMap(devices, this.o.gpuOrderMap);
    return this.#devices;
  }

  async shares(units: Unit[]): Promise<Map<string, GpuShare[]>> {
    const devices = await this.#loadDevices();
    const live = new Set(units.map(unitKey));
    for (const k of this.#cache.keys()) if (!live.has(k)) this.#cache.delete(k);
    const todo = units.filter((u) => !this.#cache.has(unitKey(u)));
    if (todo.length) {
      const requests = await this.#requests(todo);
      const gres = this.#gres();
      for (const u of todo) {
        const req = requests.get(unitKey(u));
        // A job whose GPUs are not found yet (environment not set up, map file not written) is looked up
        // again next scrape instead of staying GPU-less until it ends (CEEMS 0.10.1, #388). Jobs without
        // GPUs are therefore looked up every scrape, as in CEEMS.
        if (!req || req.ordinals.length === 0) {
          this.ctx.logger.debug("GPUs of job not found; retrying next scrape", { uuid: u.uuid });
          continue;
        }
        const shares: GpuShare[] = [];
        for (const ord of req.ordinals) {
          const d = devices.find((x) => x.index === ord);
          if (!d) continue;
          let value = d.fraction;
          if (req.shards !== undefined && gres.get("shard")?.get(d.minor)) {
            value = req.shards / gres.get("shard")!.get(d.minor)!;
          } else if (req.mpsPercent !== undefined) {
            value = req.mpsPercent / 100;
          }
          shares.push({ index: d.index, uuid: d.uuid, instanceId: d.instanceId, value, smCount: d.smCount });
        }
        this.#cache.set(unitKey(u), shares);
      }
    }
    return this.#cache;
  }

  #gres(): Map<string, Map<string, number>> {
    try {
      return parseGresShards(
        Deno.readTextFileSync(this.o.gresConfigFile),
        this.ctx.hostname || Deno.hostname(),
      );
    } catch {
      return new Map();
    }
  }

  async #requests(units: Unit[]): Promise<Map<string, JobGpuRequest>> {
    const out = new Map<string, JobGpuRequest>();
    const mapDir = this.o.gpuJobMapPath;
    if (mapDir) {
      for (const e of Deno.readDirSync(mapDir)) {
        if (!/^\d+$/.test(e.name)) continue;
        const job = Deno.readTextFileSync(`${mapDir}/${e.name}`).trim();
        for (const u of units) {
          if (u.uuid !== job) continue;
          const r = out.get(unitKey(u)) ?? { ordinals: [] };
          r.ordinals.push(e.name);
          out.set(unitKey(u), r);
        }
      }
      for (const r of out.values()) r.ordinals.sort((a, b) => Number(a) - Number(b));
      return out;
    }
    const pids = [...new Set(units.flatMap((u) => u.pids))];
    const [res] = await this.ctx.security.run(SLURM_ENVIRON_CONTEXT, [
      { kind: "readEnviron", procfs: this.ctx.paths.procfs, pids },
    ]);
    if (!res.ok) throw new Error(`reading job environments: ${res.error}`);
    const envs = res.value as Record<string, string[]>;
    for (const u of units) {
      const req = gpuRequestFromEnv(u.uuid, u.pids.map((p) => envs[String(p)] ?? []));
      if (req) out.set(unitKey(u), req);
    }
    return out;
  }
}

/** Declares the slurm collector's flags (shared cgroup/GPU/RDMA flags included). */
export function registerSlurmFlags(fs: FlagSet): void {
  addCgroupFlags(fs);
  addGpuFlags(fs);
  addRdmaFlags(fs);
  registerUnitSubCollectorFlags(fs);
  fs.add({
    name: "collector.slurm.swap-memory-metrics",
    kind: "bool",
    help: "Enables collection of swap memory metrics (default: disabled)",
  });
  fs.alias("collector.slurm.swap.memory.metrics", "collector.slurm.swap-memory-metrics");
  fs.add({
    name: "collector.slurm.psi-metrics",
    kind: "bool",
    help: "Enables collection of PSI metrics (default: disabled)",
  });
  fs.alias("collector.slurm.psi.metrics", "collector.slurm.psi-metrics");
  fs.add({
    name: "collector.slurm.gres-config-file",
    kind: "string",
    default: "/etc/slurm/gres.conf",
    help: "Path to SLURM gres.conf file (for GPU shards and MPS).",
  });
  fs.add({
    name: "collector.slurm.gpu-order-map",
    kind: "string",
    default: "",
    help: "GPU order mapping between SLURM and NVIDIA SMI/ROCm SMI tools: <slurm_idx>:<smi_minor>[.<mig_id>],...",
  });
  fs.add({
    name: "collector.slurm.gpu-job-map-path",
    kind: "string",
    default: "",
    help: "Directory with files named by GPU index holding the job id using it (instead of job environments).",
  });
}

/** Builds the slurm collector (with its perf, ebpf and rdma sub-collectors). */
export async function createSlurmCollector(ctx: CollectorContext, o: SlurmOptions): Promise<Collector> {
  const gpuType = resolveGpuType(o.gpu.type, ctx.paths.sysfs, o.gpu, (m) => ctx.logger.warn(m));
  const mapper = gpuType === "nogpu" ? undefined : new SlurmGpuMapper(ctx, o, gpuType);
  const sluids = new SluidResolver({ procfs: ctx.paths.procfs, logger: ctx.logger, security: ctx.security });
  const subs = await createUnitSubCollectors(ctx, o.sub);
  // A unit ordered before slurmd starts before its cgroup root exists.
  const uc = new UnitCollector(ctx, "slurm", { swap: o.swap, psi: o.psi, blkio: false }, subs, {
    cgroup: o.cgroup,
    rootMayAppearLater: true,
  });
  return {
    start: () => uc.start(),
    async update(sink) {
      const units = await sluids.resolve(uc.discover());
      const gpuShares = mapper ? await mapper.shares(units).catch((e) => e as Error) : undefined;
      await uc.scrape(sink, units, { gpuShares });
    },
    stop: () => uc.stop(),
  };
}

registerCollector({
  name: "slurm",
  defaultEnabled: false,
  help: "SLURM job cgroups",
  registerFlags: registerSlurmFlags,
  options: slurmOptions,
  security: slurmSecurity,
  create: createSlurmCollector,
});
