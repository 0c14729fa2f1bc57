// The ebpf sub-collector: per-unit VFS IO and TCP/UDP traffic from BPF programs of ours (collectors/units/ebpf/),
// loaded in a cap_bpf+cap_perfmon security context, maps read by fd from the main thread, CEEMS's names.

import { join } from "../../common/path.ts";
import type { FlagSet } from "../../common/flags.ts";
import { pathExists } from "../../common/fs.ts";
import type { Logger } from "../../common/log.ts";
import {
  type BpfAttachGroup,
  type BpfLoadResult,
  bpfMapDelete,
  bpfMapDump,
  bpfMapUpdate,
  bpfPossibleCpus,
  bpfUnload,
  fromHex,
  libbpfAvailable,
  sumPercpu,
  toHex,
} from "../../ffi/libbpf.ts";
import type { DeclaredContext, SecurityNeeds } from "../../privilege/declare.ts";
import type { SecurityManager } from "../../privilege/security.ts";
import type { Labels, MetricSink, Paths } from "../framework/collector.ts";
import { type BpfObjectName, bpfObjectNames, buildBpfObjects, defaultBpfOutDir } from "./ebpf/build.ts";
import { cgroupHierarchyOf, type ComputeUnit, type MountInfo, readMountInfo } from "./subcollector.ts";

/** Declares the ebpf flags (idempotent: every unit collector calls it). */
export function registerEbpfFlags(fs: FlagSet): void {
  if (fs.has("collector.ebpf.io-metrics")) return;
  fs.add({
    name: "collector.ebpf.io-metrics",
    kind: "bool",
    default: false,
    help: "Enables collection of IO metrics using ebpf (default: disabled)",
  });
  fs.add({
    name: "collector.ebpf.network-metrics",
    kind: "bool",
    default: false,
    help: "Enables collection of network metrics using ebpf (default: disabled)",
  });
  fs.add({
    name: "collector.ebpf.fs-mount-point",
    kind: "strings",
    help: "File system mount points to monitor IO stats. If empty all mount points are monitored. It is " +
      "strongly advised to choose appropriate mount points to reduce cardinality.",
  });
  fs.add({
    name: "collector.ebpf.objects-dir",
    kind: "string",
    default: "",
    hidden: true,
    help: "Directory where the BPF objects are built (default: .bpf/ in the installation).",
  });
}

/** File in the objects directory saying its objects are prebuilt (a package's): they are never rebuilt there. */
export const PREBUILT_MARKER = "PREBUILT";

/** The ebpf flags, read once. */
export interface EbpfFlags {
  io: boolean;
  net: boolean;
  /** Keep mount points containing one of these strings (empty: all). */
  mountPoints: string[];
  /** Where the BPF objects are built and loaded from. */
  objectsDir: string;
}

/** Reads the ebpf flags (declared by registerEbpfFlags). */
export function ebpfFlags(f: FlagSet): EbpfFlags {
  return {
    io: f.bool("collector.ebpf.io-metrics"),
    net: f.bool("collector.ebpf.network-metrics"),
    mountPoints: f.strings("collector.ebpf.fs-mount-point"),
    objectsDir: f.string("collector.ebpf.objects-dir") || defaultBpfOutDir,
  };
}

/** Kernel older than major.minor. */
function kernelOlderThan(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a < major || (a === major && b < minor);
}

/**
 * The context BPF programs are loaded and (on kernels that want CAP_BPF for it) their maps read in. Before
 * 5.11 BPF memory counts against RLIMIT_MEMLOCK, which libbpf raises: cap_sys_resource joins then.
 */
export function ebpfContext(kernelRelease = Deno.osRelease()): DeclaredContext {
  const old = kernelOlderThan(kernelRelease, 5, 11);
  return {
    name: "ebpf",
    caps: old ? ["cap_bpf", "cap_perfmon", "cap_sys_resource"] : ["cap_bpf", "cap_perfmon"],
    // ebpf has no --collector.ebpf flag: --collector.ebpf.io-metrics or .network-metrics enables it.
    flag: "collector.ebpf.*-metrics",
    reason: "loads and attaches BPF tracing programs and reads their maps" +
      (old ? " (and raises RLIMIT_MEMLOCK on kernels older than 5.11)" : ""),
    uses: ["bpfLoad", "bpfMapRead", "bpfMapDelete"],
  };
}

/** What ebpf declares: its context, and the objects it loads after the drop (which nobody may replace). */
export function ebpfSecurity(o: EbpfFlags, kernelRelease = Deno.osRelease()): SecurityNeeds {
  if (!o.io && !o.net) return {};
  return { contexts: [ebpfContext(kernelRelease)], readPaths: [o.objectsDir], loadPaths: [o.objectsDir] };
}

/** Syscalls with a `syscalls:sys_exit_<name>` program `io_tp_<name>` in io.bpf.c. */
const ioTracepointSyscalls = [
  "read",
  "pread64",
  "readv",
  "preadv",
  "preadv2",
  "write",
  "pwrite64",
  "writev",
  "pwritev",
  "pwritev2",
  "open",
  "openat",
  "openat2",
  "creat",
  "mkdir",
  "mkdirat",
  "unlink",
  "unlinkat",
  "rmdir",
];

/**
 * Ids of the io object's per-syscall exit tracepoints, by program name, from tracefs under `sysfs`
 * (`kernel/tracing`, then the older `kernel/debug/tracing`). The id files are root-only, so this runs at
 * start-up before privileges drop; it never mounts tracefs. Returns why when the ids cannot be read.
 */
export function readIoTracepointIds(sysfs: string): { ids: Record<string, number> } | { reason: string } {
  const roots = [join(sysfs, "kernel/tracing"), join(sysfs, "kernel/debug/tracing")];
  const root = roots.find((r) => pathExists(join(r, "events")));
  if (!root) {
    return {
      reason: `tracefs is not mounted at ${roots[0]} (mount it, e.g. "mount -t tracefs tracefs ${
        roots[0]
      }" or the sys-kernel-tracing.mount unit, to count with per-syscall tracepoints)`,
    };
  }
  const ids: Record<string, number> = {};
  for (const name of ioTracepointSyscalls) {
    const file = join(root, "events/syscalls", `sys_exit_${name}`, "id");
    try {
      const id = Number(Deno.readTextFileSync(file).trim());
      if (!Number.isInteger(id) || id <= 0) return { reason: `${file}: not a tracepoint id` };
      ids[`io_tp_${name}`] = id;
    } catch (e) {
      return { reason: `reading ${file}: ${(e as Error).message}` };
    }
  }
  return { ids };
}

/** Attach groups per object, most precise first: fentry/fexit, then BTF tracepoints, then raw tracepoints. */
const objectSpecs: Record<BpfObjectName, { groups: BpfAttachGroup[]; maps: string[] }> = {
  io: {
    groups: [
      { mode: "fentry", programs: ["io_read_fexit", "io_write_fexit", "io_exit_btf"], config: [0, 1] },
      { mode: "tracepoint", programs: ioTracepointSyscalls.map((n) => `io_tp_${n}`), config: [0, 0] },
      { mode: "tp_btf", programs: ["io_exit_btf"], config: [0, 0] },
      { mode: "raw_tp", programs: ["io_exit_raw"], config: [0, 0] },
    ],
    maps: ["io_rw", "io_vfs"],
  },
  net: {
    groups: [
      { mode: "tp_btf", programs: ["net_send_btf", "net_recv_btf", "net_retrans_btf"], config: [0, 0] },
      { mode: "raw_tp", programs: ["net_send_raw", "net_recv_raw", "net_retrans_raw"], config: [0, 0] },
    ],
    maps: ["net_stats"],
  },
};

/** cgroup v1 controller codes understood by the BPF programs (common.bpf.h v1_subsys_index). */
const v1ControllerCodes: [string, number][] = [
  ["memory", 1],
  ["cpuacct", 2],
  ["cpu", 3],
  ["pids", 4],
  ["cpuset", 5],
  ["blkio", 6],
  ["devices", 7],
  ["freezer", 8],
];

interface Loaded {
  name: BpfObjectName;
  result: BpfLoadResult;
  /** Config words as loaded ([v1 controller, rw_from_fexit]). */
  config: number[];
}

/** Options of the ebpf sub-collector. */
export interface EbpfOptions {
  flags: EbpfFlags;
  logger: Logger;
  paths: Paths;
  security: SecurityManager;
  /** Attach modes never to try (benchmarks and tests compare modes with it; none skipped by default). */
  skipModes?: string[];
}

const ioFields = ["read_bytes", "read_requests", "read_errors", "write_bytes", "write_requests", "write_errors"];
const ioHelp: Record<string, string> = {
  read_bytes: "Total number of bytes read from a cgroup in bytes",
  read_requests: "Total number of read requests from a cgroup",
  read_errors: "Total number of read errors from a cgroup",
  write_bytes: "Total number of bytes written from a cgroup in bytes",
  write_requests: "Total number of write requests from a cgroup",
  write_errors: "Total number of write errors from a cgroup",
};
/** VFS op counters in map order; the create-errors name is CEEMS's own (`ceems_ebpf_open_create_total`). */
const vfsMetrics: [string, string][] = [
  ["ceems_ebpf_open_requests_total", "Total number of open requests from a cgroup"],
  ["ceems_ebpf_open_errors_total", "Total number of open errors from a cgroup"],
  ["ceems_ebpf_create_requests_total", "Total number of create requests from a cgroup"],
  ["ceems_ebpf_open_create_total", "Total number of create errors from a cgroup"],
  ["ceems_ebpf_unlink_requests_total", "Total number of unlink requests from a cgroup"],
  ["ceems_ebpf_unlink_errors_total", "Total number of unlink errors from a cgroup"],
];
const netFields: [string, string][] = [
  ["ingress_bytes", "Total number of ingress bytes from a cgroup"],
  ["ingress_packets", "Total number of ingress packets from a cgroup"],
  ["egress_bytes", "Total number of egress bytes from a cgroup"],
  ["egress_packets", "Total number of egress packets from a cgroup"],
  ["retrans_bytes", "Total number of retransmission bytes from a cgroup"],
  ["retrans_packets", "Total number of retransmission packets from a cgroup"],
];

function u64s(b: Uint8Array): bigint[] {
  return Array.from(new BigUint64Array(b.buffer, b.byteOffset, b.byteLength / 8));
}

/** Per-unit eBPF IO and network counters; the unit collectors call update() each scrape. */
export class EbpfCollector {
  #want: BpfObjectName[];
  #mountFilter: string[];
  #logger: Logger;
  #paths: Paths;
  #security: SecurityManager;
  #outDir: string;
  #objects?: Record<BpfObjectName, string>;
  #loaded: Loaded[] = [];
  #state: "new" | "on" | "off" = "new";
  #v1Controller = 0;
  /** Whether map reads go through the privileged op (the kernel refused them without CAP_BPF). */
  #privilegedReads = false;
  /** Per map fd: keys (hex) of cgroups that were not units at the last scrape (deleted if still not now). */
  #notUnits = new Map<number, Set<string>>();

  #skipModes: string[];
  readonly #context = ebpfContext();
  /** Per-syscall tracepoint ids read at prepare() (undefined: that group is skipped). */
  #tracepointIds?: Record<string, number>;

  constructor(opts: EbpfOptions) {
    this.#want = [];
    if (opts.flags.io) this.#want.push("io");
    if (opts.flags.net) this.#want.push("net");
    this.#mountFilter = opts.flags.mountPoints;
    this.#logger = opts.logger.with({ sub_collector: "ebpf" });
    this.#paths = opts.paths;
    this.#security = opts.security;
    this.#skipModes = opts.skipModes ?? [];
    this.#outDir = opts.flags.objectsDir;
  }

  /** Whether programs are attached (after start() or the first update), and in which mode per object. */
  get attachModes(): Record<string, string> {
    return Object.fromEntries(this.#loaded.map((l) => [l.name, l.result.mode]));
  }

  /** Each loaded object with the attach group it uses (benchmarks detach and reattach with it). */
  get loaded(): { name: BpfObjectName; result: BpfLoadResult; group: BpfAttachGroup }[] {
    return this.#loaded.map((l) => ({
      name: l.name,
      result: l.result,
      group: this.#groups(l.name).find((g) => g.mode === l.result.mode)!,
    }));
  }

  /** Map fds by name of every loaded object (tests and benchmarks read them). */
  get maps(): Record<string, number> {
    return Object.assign({}, ...this.#loaded.map((l) => l.result.maps));
  }

  /** Builds the BPF objects (at start-up, before privileges drop); a failure turns the collector off. */
  async prepare(): Promise<void> {
    const noLib = libbpfAvailable();
    if (noLib) return this.#turnOff(`libbpf unavailable: ${noLib}`);
    if (this.#want.includes("io") && !this.#skipModes.includes("tracepoint")) {
      const tp = readIoTracepointIds(this.#paths.sysfs);
      if ("ids" in tp) this.#tracepointIds = tp.ids;
      else {
        this.#logger.warn(
          "per-syscall tracepoints unavailable; IO counting falls back to raw_syscalls:sys_exit, which every " +
            "syscall of every process pays for",
          { reason: tp.reason },
        );
      }
    }
    // An installed package's objects (deno task package marks them): loaded as shipped, never rebuilt in place.
    if (pathExists(join(this.#outDir, PREBUILT_MARKER))) {
      this.#objects = Object.fromEntries(bpfObjectNames.map((n) => [n, join(this.#outDir, `${n}.bpf.o`)])) as Record<
        BpfObjectName,
        string
      >;
      return;
    }
    try {
      this.#objects = await buildBpfObjects(this.#outDir);
    } catch (e) {
      // Objects are CO-RE: ones built elsewhere (a host without clang/bpftool) still load here.
      const prebuilt = Object.fromEntries(bpfObjectNames.map((n) => [n, join(this.#outDir, `${n}.bpf.o`)]));
      if (Object.values(prebuilt).every((p) => pathExists(p))) {
        this.#objects = prebuilt as Record<BpfObjectName, string>;
        this.#logger.info("using prebuilt BPF objects", { dir: this.#outDir, build_err: (e as Error).message });
        return;
      }
      this.#turnOff(`building BPF objects failed: ${(e as Error).message}`);
    }
  }

  #turnOff(reason: string): void {
    if (this.#state === "off") return;
    this.#state = "off";
    this.#logger.warn("eBPF sub-collector disabled", { reason });
  }

  async #load(): Promise<void> {
    if (!this.#objects) await this.prepare();
    if (this.#state === "off") return;
    const names = this.#want;
    const results = await this.#security.run(
      this.#context,
      names.map((name) => ({
        kind: "bpfLoad" as const,
        objectPath: this.#objects![name],
        groups: this.#groups(name),
        maps: objectSpecs[name].maps,
        configMap: "ceems_cfg",
      })),
    );
    const failures: string[] = [];
    names.forEach((name, i) => {
      const r = results[i];
      if (r?.ok) {
        const result = r.value as BpfLoadResult;
        const group = objectSpecs[name].groups.find((g) => g.mode === result.mode)!;
        this.#loaded.push({ name, result, config: [...(group.config ?? [0, 0])] });
        this.#logger.info("eBPF programs attached", {
          object: name,
          mode: result.mode,
          fallbacks: result.fallbacks.join("; "),
        });
      } else {
        failures.push(`${name}: ${r?.error ?? "no result"}`);
      }
    });
    if (this.#loaded.length === 0) return this.#turnOff(failures.join("; "));
    if (failures.length > 0) {
      this.#logger.warn("some eBPF programs could not be attached", { err: failures.join("; ") });
    }
    this.#state = "on";
  }

  /** The attach groups to try for an object: skipped modes out, tracepoint ids filled in (or that group out). */
  #groups(name: BpfObjectName): BpfAttachGroup[] {
    return objectSpecs[name].groups
      .filter((g) => !this.#skipModes.includes(g.mode) && (g.mode !== "tracepoint" || this.#tracepointIds))
      .map((g) => (g.mode === "tracepoint" ? { ...g, tracepointIds: this.#tracepointIds } : g));
  }

  /**
   * Loads and attaches the programs now (the exporter calls this at start-up, once privileges are set up),
   * so that IO and traffic before the first scrape are counted and the first scrape does not pay the load.
   * `cgroupPath`, a directory of the hierarchy the units will live in, points them at it at once.
   */
  async start(cgroupPath?: string): Promise<void> {
    if (this.#state === "new") await this.#load();
    if (this.#state === "on" && cgroupPath) this.#configure(cgroupPath, readMountInfo(this.#paths.procfs));
  }

  /** Points the programs at the hierarchy of `path` (cgroup v2, or a v1 controller). */
  #configure(path: string, mounts: MountInfo[]): void {
    const h = cgroupHierarchyOf(path, mounts);
    let code = 0;
    if (h?.version === 1) code = v1ControllerCodes.find(([c]) => h.controllers.includes(c))?.[1] ?? 0;
    if (code === this.#v1Controller) return;
    this.#v1Controller = code;
    for (const l of this.#loaded) {
      l.config[0] = code;
      try {
        bpfMapUpdate(l.result.maps.ceems_cfg, new Uint8Array(4), new Uint8Array(new Uint32Array(l.config).buffer));
      } catch (e) {
        this.#logger.warn("configuring the cgroup hierarchy of eBPF programs failed", { err: (e as Error).message });
      }
    }
  }

  /**
   * Every entry of a per-CPU counter map (copies summed), read by fd from this thread or through the ebpf
   * context if the kernel wants CAP_BPF. Ages the map: a key whose cgroup is not a unit now and was not
   * one at the previous scrape either is deleted (its counters are never reported; ended units' go too).
   * Two scrapes, not one, so a unit that appears between listing the units and reading the map keeps its
   * first counts.
   */
  async #dump(fd: number, keySize: number, valueSize: number, units: Map<bigint, unknown>) {
    const cpus = bpfPossibleCpus();
    const raw = await this.#dumpRaw(fd, keySize, Math.ceil(valueSize / 8) * 8 * cpus);
    const entries = raw.map(([k, v]) => [k, sumPercpu(v, valueSize, cpus)] as [Uint8Array, Uint8Array]);
    const before = this.#notUnits.get(fd) ?? new Set<string>();
    const now = new Set<string>();
    const stale: string[] = [];
    for (const [k] of entries) {
      if (units.has(new DataView(k.buffer, k.byteOffset).getBigUint64(0, true))) continue;
      const h = toHex(k);
      if (before.has(h)) stale.push(h);
      else now.add(h);
    }
    this.#notUnits.set(fd, now);
    if (stale.length) await this.#delete(fd, stale);
    return entries;
  }

  async #dumpRaw(fd: number, keySize: number, valueSize: number): Promise<[Uint8Array, Uint8Array][]> {
    if (!this.#privilegedReads) {
      try {
        return bpfMapDump(fd, keySize, valueSize);
      } catch (e) {
        if ((e as { code?: string }).code !== "EPERM") throw e;
        this.#privilegedReads = true;
        this.#logger.info("BPF map reads need CAP_BPF on this kernel; reading through the security context");
      }
    }
    const [r] = await this.#security.run(this.#context, [{ kind: "bpfMapRead", fd, keySize, valueSize }]);
    if (!r.ok) throw new Error(`reading BPF map: ${r.error}`);
    return (r.value as [string, string][]).map(([k, v]) => [fromHex(k), fromHex(v)]);
  }

  async #delete(fd: number, keys: string[]): Promise<void> {
    if (!this.#privilegedReads) {
      for (const k of keys) bpfMapDelete(fd, fromHex(k));
      return;
    }
    const [r] = await this.#security.run(this.#context, [{ kind: "bpfMapDelete", fd, keys }]);
    if (!r.ok) throw new Error(`ageing BPF map: ${r.error}`);
  }

  /**
   * Emits every unit's counters (loading the programs first if start() was not called). Never throws: a failure is logged
   * and reported as false; a collector that is off (nothing loads) reports true with no samples.
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
    if (this.#state === "new") await this.#load();
    if (this.#state !== "on") return;
    const mounts = readMountInfo(this.#paths.procfs);
    const first = units.find((u) => u.cgroupPath);
    if (first) this.#configure(first.cgroupPath, mounts);
    // A unit's processes may live in cgroups below its own (SLURM's step_*/task_* cgroups): all count.
    const byId = new Map<bigint, ComputeUnit>();
    for (const u of units) {
      for (const ino of cgroupTreeInodes(u.cgroupPath)) byId.set(ino, u);
    }
    for (const l of this.#loaded) {
      if (l.name === "io") {
        this.#emitIo(await this.#dump(l.result.maps.io_rw, 16, 48, byId), byId, mounts, sink, labels);
        this.#emitVfs(await this.#dump(l.result.maps.io_vfs, 8, 48, byId), byId, sink, labels);
      } else {
        this.#emitNet(await this.#dump(l.result.maps.net_stats, 16, 48, byId), byId, sink, labels);
      }
    }
  }

  /** CEEMS's rule: a mount point is kept when any configured one is a substring of it (all when none). */
  #mountLabel(mountPoint: string): boolean {
    if (this.#mountFilter.length === 0) return true;
    return this.#mountFilter.some((f) => mountPoint.includes(f));
  }

  #emitIo(
    entries: [Uint8Array, Uint8Array][],
    byId: Map<bigint, ComputeUnit>,
    mounts: MountInfo[],
    sink: MetricSink,
    labels: Labels,
  ) {
    const mountById = new Map(mounts.map((m) => [m.id, m.mountPoint]));
    const sums = new Map<string, { uuid: string; mountpoint: string; v: bigint[] }>();
    for (const [k, v] of entries) {
      const dv = new DataView(k.buffer);
      const unit = byId.get(dv.getBigUint64(0, true));
      const mountpoint = mountById.get(dv.getUint32(8, true));
      if (!unit || mountpoint === undefined || !this.#mountLabel(mountpoint)) continue;
      const key = `${unit.uuid}\0${mountpoint}`;
      const vals = u64s(v);
      const s = sums.get(key);
      if (s) s.v = s.v.map((x, i) => x + vals[i]);
      else sums.set(key, { uuid: unit.uuid, mountpoint, v: vals });
    }
    for (const s of sums.values()) {
      ioFields.forEach((f, i) => {
        sink.counter(
          `ceems_ebpf_${f}_total`,
          ioHelp[f],
          { ...labels, uuid: s.uuid, mountpoint: s.mountpoint },
          Number(s.v[i]),
        );
      });
    }
  }

  #emitVfs(entries: [Uint8Array, Uint8Array][], byId: Map<bigint, ComputeUnit>, sink: MetricSink, labels: Labels) {
    const sums = sumByKey(entries, byId, () => "");
    for (const { unit, v } of sums.values()) {
      vfsMetrics.forEach(([name, help], i) => sink.counter(name, help, { ...labels, uuid: unit.uuid }, Number(v[i])));
    }
  }

  #emitNet(entries: [Uint8Array, Uint8Array][], byId: Map<bigint, ComputeUnit>, sink: MetricSink, labels: Labels) {
    const sums = sumByKey(entries, byId, (dv) => `${dv.getUint16(8, true)}/${dv.getUint16(10, true)}`);
    for (const [key, { unit, v }] of sums) {
      const [p, fam] = key.split("\0")[1].split("/").map(Number);
      const proto = p === 6 ? "tcp" : "udp";
      const family = fam === 10 ? "ipv6" : "ipv4";
      netFields.forEach(([f, help], i) => {
        sink.counter(`ceems_ebpf_${f}_total`, help, { ...labels, uuid: unit.uuid, proto, family }, Number(v[i]));
      });
    }
  }

  /** Detaches the programs and closes the objects. */
  stop(): void {
    for (const l of this.#loaded) bpfUnload(l.result);
    this.#loaded = [];
    this.#notUnits.clear();
    if (this.#state === "on") this.#state = "new";
  }
}

/** Inode numbers (cgroup ids) of the cgroup at `path` and of every cgroup below it; none when it is gone. */
export function cgroupTreeInodes(path: string, out: bigint[] = []): bigint[] {
  try {
    out.push(BigInt(Deno.statSync(path).ino ?? 0));
    for (const e of Deno.readDirSync(path)) if (e.isDirectory) cgroupTreeInodes(`${path}/${e.name}`, out);
  } catch {
    // gone meanwhile: nothing (more) to count for it
  }
  return out;
}

/** Map entries of the same unit (and the same `rest` of the key) summed: a unit may have several cgroups. */
function sumByKey(
  entries: [Uint8Array, Uint8Array][],
  byId: Map<bigint, ComputeUnit>,
  rest: (key: DataView) => string,
): Map<string, { unit: ComputeUnit; v: bigint[] }> {
  const sums = new Map<string, { unit: ComputeUnit; v: bigint[] }>();
  for (const [k, v] of entries) {
    const dv = new DataView(k.buffer);
    const unit = byId.get(dv.getBigUint64(0, true));
    if (!unit) continue;
    const key = `${unit.uuid}\0${rest(dv)}`;
    const vals = u64s(v);
    const s = sums.get(key);
    if (s) s.v = s.v.map((x, i) => x + vals[i]);
    else sums.set(key, { unit, v: vals });
  }
  return sums;
}

/** Builds the ebpf sub-collector when an ebpf flag is on (objects built now), else undefined. */
export async function createEbpfCollector(opts: EbpfOptions): Promise<EbpfCollector | undefined> {
  if (!opts.flags.io && !opts.flags.net) return undefined;
  const c = new EbpfCollector(opts);
  await c.prepare();
  return c;
}
