// libbpf.so.1 through Deno FFI: opening, loading and attaching a BPF object with an attach-mode
// fallback (synchronous, for privileged ops), and reading/updating its maps by raw fd (no capability).

import { closeRaw, cString, errno, ErrnoError } from "./libc.ts";
import { perfTracepointOpenSync } from "./perf.ts";

const libbpfSymbols = {
  libbpf_set_print: { parameters: ["pointer"], result: "pointer" },
  bpf_object__open_file: { parameters: ["buffer", "pointer"], result: "pointer" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_object__next_program: { parameters: ["pointer", "pointer"], result: "pointer" },
  bpf_object__find_program_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_program__name: { parameters: ["pointer"], result: "pointer" },
  bpf_program__set_autoload: { parameters: ["pointer", "bool"], result: "i32" },
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  bpf_program__attach_perf_event: { parameters: ["pointer", "i32"], result: "pointer" },
  bpf_link__fd: { parameters: ["pointer"], result: "i32" },
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_map_get_next_key: { parameters: ["i32", "pointer", "buffer"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
  bpf_obj_get_info_by_fd: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
} as const;

type Libbpf = Deno.DynamicLibrary<typeof libbpfSymbols>["symbols"];
let libbpf: Libbpf | undefined;

/**
 * The libbpf symbols, opened on first use in this thread. The main thread must call this before any
 * privileged Worker loads an object, so the library stays mapped after that Worker's handle closes;
 * on main it also silences libbpf's stderr printer (a global hook, set from main only).
 */
export function libbpfSyms(): Libbpf {
  if (!libbpf) {
    libbpf = Deno.dlopen("libbpf.so.1", libbpfSymbols).symbols;
    // deno-lint-ignore no-explicit-any
    if (!(globalThis as any).WorkerGlobalScope) libbpf.libbpf_set_print(null);
  }
  return libbpf;
}

/** Whether libbpf.so.1 can be loaded here (throws nothing). */
export function libbpfAvailable(): string | undefined {
  try {
    libbpfSyms();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** One attach mode of an object: the programs it loads and the config words written before attach. */
export interface BpfAttachGroup {
  mode: string;
  programs: string[];
  /** u32 words written at key 0 of `configMap` after load and before attach. */
  config?: number[];
  /**
   * Tracepoint ids (from tracefs, read by the caller while it could) of programs attached through a
   * tracepoint perf event opened here (perf_event_open on CPU 0 + bpf_program__attach_perf_event, which
   * needs CAP_PERFMON only) instead of libbpf's own attach, which reads the id from tracefs itself.
   */
  tracepointIds?: Record<string, number>;
}

/** What a successful load hands back: plain data that crosses a Worker boundary. */
export interface BpfLoadResult {
  mode: string;
  object: bigint;
  links: bigint[];
  linkFds: number[];
  maps: Record<string, number>;
  /** Why the earlier modes failed. */
  fallbacks: string[];
}

function ptrValue(p: Deno.PointerValue): bigint {
  return p === null ? 0n : BigInt(Deno.UnsafePointer.value(p));
}

function ptrFrom(v: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(v);
}

/** Attaches each program (see BpfAttachGroup.tracepointIds); on a failure detaches those done and throws. */
function attachPrograms(
  lib: Libbpf,
  progs: (readonly [string, Deno.PointerValue])[],
  group: BpfAttachGroup,
): Deno.PointerValue[] {
  const links: Deno.PointerValue[] = [];
  try {
    for (const [name, p] of progs) {
      const tpId = group.tracepointIds?.[name];
      let link: Deno.PointerValue;
      if (tpId === undefined) {
        link = lib.bpf_program__attach(p);
      } else {
        let pfd: number;
        try {
          pfd = perfTracepointOpenSync(tpId, 0);
        } catch (e) {
          throw new ErrnoError(`perf_event_open tracepoint ${tpId} for ${name}`, (e as ErrnoError).errno ?? 5);
        }
        // On success the link owns the perf fd (bpf_link__destroy closes it).
        link = lib.bpf_program__attach_perf_event(p, pfd);
        if (link === null) {
          const err = errno();
          closeRaw(pfd);
          throw new ErrnoError(`attach ${name} to perf event (${group.mode})`, err);
        }
      }
      if (link === null) throw new ErrnoError(`attach ${name} (${group.mode})`, errno());
      links.push(link);
    }
    return links;
  } catch (e) {
    for (const l of links) lib.bpf_link__destroy(l);
    throw e;
  }
}

function tryGroup(
  lib: Libbpf,
  objectPath: string,
  group: BpfAttachGroup,
  maps: string[],
  configMap: string | undefined,
): BpfLoadResult {
  const obj = lib.bpf_object__open_file(cString(objectPath), null);
  if (obj === null) throw new ErrnoError(`open ${objectPath}`, errno());
  const links: Deno.PointerValue[] = [];
  try {
    for (let p = lib.bpf_object__next_program(obj, null); p !== null; p = lib.bpf_object__next_program(obj, p)) {
      const name = Deno.UnsafePointerView.getCString(lib.bpf_program__name(p)!);
      lib.bpf_program__set_autoload(p, group.programs.includes(name));
    }
    const progs = group.programs.map((name) => {
      const p = lib.bpf_object__find_program_by_name(obj, cString(name));
      if (p === null) throw new Error(`program ${name} not in ${objectPath}`);
      return [name, p] as const;
    });
    const rc = lib.bpf_object__load(obj);
    if (rc < 0) throw new ErrnoError(`load (${group.mode})`, -rc);
    const mapFds: Record<string, number> = {};
    for (const m of [...maps, ...(configMap ? [configMap] : [])]) {
      const mp = lib.bpf_object__find_map_by_name(obj, cString(m));
      if (mp === null) throw new Error(`map ${m} not in ${objectPath}`);
      mapFds[m] = lib.bpf_map__fd(mp);
    }
    if (configMap && group.config) {
      const rcu = lib.bpf_map_update_elem(
        mapFds[configMap],
        new Uint8Array(4),
        new Uint8Array(new Uint32Array(group.config).buffer),
        0n,
      );
      if (rcu < 0) throw new ErrnoError(`config map update (${group.mode})`, -rcu);
    }
    links.push(...attachPrograms(lib, progs, group));
    return {
      mode: group.mode,
      object: ptrValue(obj),
      links: links.map(ptrValue),
      linkFds: links.map((l) => lib.bpf_link__fd(l)),
      maps: mapFds,
      fallbacks: [],
    };
  } catch (e) {
    for (const l of links) lib.bpf_link__destroy(l);
    lib.bpf_object__close(obj);
    throw e;
  }
}

/**
 * Opens, loads and attaches `objectPath`, trying each attach group in order until one fully works
 * (synchronous: meant for a privileged op with CAP_BPF+CAP_PERFMON). Throws with every group's reason.
 */
export function bpfLoadSync(
  objectPath: string,
  groups: BpfAttachGroup[],
  maps: string[],
  configMap?: string,
): BpfLoadResult {
  const lib = libbpfSyms();
  const reasons: string[] = [];
  for (const g of groups) {
    try {
      const r = tryGroup(lib, objectPath, g, maps, configMap);
      r.fallbacks = reasons;
      return r;
    } catch (e) {
      reasons.push(`${g.mode}: ${(e as Error).message}`);
    }
  }
  const err = new Error(`no attach mode works for ${objectPath} (${reasons.join("; ")})`);
  throw err;
}

/**
 * Detaches a loaded object's programs, keeping them loaded and the maps as they are (benchmarks toggle the
 * hooks with this and bpfReattach; no capability needed).
 */
export function bpfDetach(r: BpfLoadResult): void {
  const lib = libbpfSyms();
  for (const l of r.links) lib.bpf_link__destroy(ptrFrom(l));
  r.links = [];
  r.linkFds = [];
}

/** Attaches a detached object's programs again as `group` says (needs CAP_BPF+CAP_PERFMON on this thread). */
export function bpfReattach(r: BpfLoadResult, group: BpfAttachGroup): void {
  if (r.links.length) throw new Error("bpfReattach: programs still attached");
  const lib = libbpfSyms();
  const obj = ptrFrom(r.object);
  const progs = group.programs.map((name) => {
    const p = lib.bpf_object__find_program_by_name(obj, cString(name));
    if (p === null) throw new Error(`program ${name} not in the object`);
    return [name, p] as const;
  });
  const links = attachPrograms(lib, progs, group);
  r.links = links.map(ptrValue);
  r.linkFds = links.map((l) => lib.bpf_link__fd(l));
}

/** Detaches the links and closes the object a load returned (no capability needed). */
export function bpfUnload(r: Pick<BpfLoadResult, "object" | "links">): void {
  const lib = libbpfSyms();
  for (const l of r.links) lib.bpf_link__destroy(ptrFrom(l));
  lib.bpf_object__close(ptrFrom(r.object));
}

/** Every key/value of a hash map, as raw bytes, by fd. Throws ErrnoError on a lookup failure. */
export function bpfMapDump(fd: number, keySize: number, valueSize: number): [Uint8Array, Uint8Array][] {
  const lib = libbpfSyms();
  // The kernel writes the whole value (every CPU's copy for per-CPU maps): refuse a buffer that is too small.
  const need = bpfMapValueBytes(fd);
  if (valueSize < need || keySize !== bpfMapInfo(fd).keySize) {
    throw new Error(
      `map fd ${fd}: key/value buffers of ${keySize}/${valueSize} bytes, the map needs ${
        bpfMapInfo(fd).keySize
      }/${need}`,
    );
  }
  const out: [Uint8Array, Uint8Array][] = [];
  let key: Uint8Array<ArrayBuffer> | null = null;
  for (let i = 0; i < 1 << 20; i++) {
    const next = new Uint8Array(keySize);
    // A NULL key asks for the first key.
    const rc = lib.bpf_map_get_next_key(fd, key ? Deno.UnsafePointer.of(key) : null, next);
    if (rc < 0) {
      const errno = -rc;
      if (errno === 2) break; // ENOENT: no more keys
      throw new ErrnoError(`bpf_map_get_next_key fd ${fd}`, errno);
    }
    const value = new Uint8Array(valueSize);
    const lr = lib.bpf_map_lookup_elem(fd, next, value);
    if (lr === 0) out.push([next, value]);
    else if (-lr !== 2) throw new ErrnoError(`bpf_map_lookup_elem fd ${fd}`, -lr);
    key = next;
  }
  return out;
}

/** Hex string of bytes (the encoding bpfMapDumpHex and the bpfMapDelete op use). */
export const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const hex = toHex;

/** bpfMapDump with keys and values as hex strings (plain data for a privileged op's result). */
export function bpfMapDumpHex(fd: number, keySize: number, valueSize: number): [string, string][] {
  return bpfMapDump(fd, keySize, valueSize).map(([k, v]) => [hex(k), hex(v)]);
}

/** Bytes of a hex string (inverse of bpfMapDumpHex's encoding). */
export function fromHex(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Writes one map element by fd. */
export function bpfMapUpdate(fd: number, key: Uint8Array<ArrayBuffer>, value: Uint8Array<ArrayBuffer>): void {
  const rc = libbpfSyms().bpf_map_update_elem(fd, key, value, 0n);
  if (rc < 0) throw new ErrnoError(`bpf_map_update_elem fd ${fd}`, -rc);
}

/** Deletes one map element by fd; a key already gone is not an error. */
export function bpfMapDelete(fd: number, key: Uint8Array<ArrayBuffer>): void {
  const rc = libbpfSyms().bpf_map_delete_elem(fd, key);
  if (rc < 0 && -rc !== 2) throw new ErrnoError(`bpf_map_delete_elem fd ${fd}`, -rc);
}

let possibleCpus = 0;
/** Number of possible CPUs: the number of copies a per-CPU map value has in user space. */
export function bpfPossibleCpus(): number {
  if (!possibleCpus) {
    const n = libbpfSyms().libbpf_num_possible_cpus();
    if (n <= 0) throw new ErrnoError("libbpf_num_possible_cpus", -n || 5);
    possibleCpus = n;
  }
  return possibleCpus;
}

/**
 * Sums the per-CPU copies of a per-CPU map value (as read by fd: `cpus` copies of `valueSize` bytes,
 * each rounded up to 8) into one value of u64 words.
 */
export function sumPercpu(value: Uint8Array, valueSize: number, cpus: number): Uint8Array<ArrayBuffer> {
  const stride = Math.ceil(valueSize / 8);
  const words = new BigUint64Array(value.buffer, value.byteOffset, stride * cpus);
  const out = new BigUint64Array(valueSize / 8);
  for (let c = 0; c < cpus; c++) for (let i = 0; i < out.length; i++) out[i] += words[c * stride + i];
  return new Uint8Array(out.buffer);
}

/** Every key of a per-CPU hash map by fd with its copies summed (a value of `valueSize` bytes each). */
export function bpfPercpuMapDump(fd: number, keySize: number, valueSize: number): [Uint8Array, Uint8Array][] {
  const cpus = bpfPossibleCpus();
  return bpfMapDump(fd, keySize, Math.ceil(valueSize / 8) * 8 * cpus).map((
    [k, v],
  ) => [k, sumPercpu(v, valueSize, cpus)]);
}

const percpuTypes = new Set([5, 6, 10]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH

/** A map's type, key size and value size (one CPU's copy), by fd. */
export function bpfMapInfo(fd: number): { type: number; keySize: number; valueSize: number } {
  const info = new Uint8Array(96);
  const len = new Uint32Array([info.length]);
  const rc = libbpfSyms().bpf_obj_get_info_by_fd(fd, info, new Uint8Array(len.buffer));
  if (rc < 0) throw new ErrnoError(`bpf_obj_get_info_by_fd ${fd}`, -rc);
  const v = new DataView(info.buffer);
  return { type: v.getUint32(0, true), keySize: v.getUint32(8, true), valueSize: v.getUint32(12, true) };
}

/** Bytes a lookup by fd writes for one value: every CPU's copy (each rounded up to 8) for per-CPU maps. */
export function bpfMapValueBytes(fd: number): number {
  const i = bpfMapInfo(fd);
  return percpuTypes.has(i.type) ? Math.ceil(i.valueSize / 8) * 8 * bpfPossibleCpus() : i.valueSize;
}
