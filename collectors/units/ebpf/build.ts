// Builds the BPF objects of the ebpf sub-collector with clang: vmlinux.h from the running kernel's BTF
// (bpftool), then io.bpf.o and net.bpf.o (+ the benchmark's floor.bpf.o), rebuilt only when stale.

import { dirname, join } from "../../../common/path.ts";
import { fileURLToPath } from "node:url";
import { runLocal } from "../../../privilege/exec_local.ts";
import { checkRootTool, findTool, SYSTEM_DIRS, SYSTEM_PATH } from "../../../privilege/tools.ts";
import { NOT_ROOT, replaceableBy } from "../../../privilege/writable.ts";

/** Names of the BPF objects (sources are `<name>.bpf.c` next to this file). */
export const bpfObjectNames = ["io", "net"] as const;
export type BpfObjectName = (typeof bpfObjectNames)[number];

/**
 * BPF objects built for benchmarks only, never loaded by the collector: `floor` has empty programs on the io
 * and net objects' attach points (scripts/bench_ebpf.ts measures the kernel's hook cost with it).
 */
export const benchBpfObjectNames = ["floor"] as const;
export type BenchBpfObjectName = (typeof benchBpfObjectNames)[number];

const srcDir = dirname(fileURLToPath(import.meta.url));

/** Default output directory: `.bpf/` at the repository root (ignored by git). */
export const defaultBpfOutDir = join(srcDir, "..", "..", "..", ".bpf");

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

/** How long one toolchain command may run. */
const toolTimeoutMs = 120_000;

/** Where clang and bpftool are looked up (the system directories; tests empty it to mimic a host without them). */
export const bpfToolchain: { dirs: readonly string[] } = { dirs: SYSTEM_DIRS };

async function run(cmd: string, args: string[]): Promise<Uint8Array> {
  const path = findTool(cmd, bpfToolchain.dirs);
  if (!path) throw new Error(`${cmd}: not found in ${SYSTEM_PATH}`);
  if (Deno.uid() === 0) checkRootTool(path);
  let out;
  try {
    out = await runLocal({ cmd: [path, ...args], timeoutMs: toolTimeoutMs });
  } catch (e) {
    throw new Error(`${cmd}: ${(e as Error).message}`);
  }
  if (out.status !== "exited") throw new Error(`${cmd} ${args.join(" ")}: ${out.status}`);
  if (out.code !== 0) {
    const err = out.stderr.trim().split("\n").slice(-5).join(" | ");
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${out.code}): ${err}`);
  }
  return new TextEncoder().encode(out.stdout);
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, data, { mode: 0o644 });
  await Deno.rename(tmp, path);
}

/**
 * Makes sure the BPF objects `names` (default: the collector's) exist and are current in `outDir`, building
 * what is stale; returns the object paths by name. Throws with the tool's message when the toolchain is
 * missing or fails.
 */
export async function buildBpfObjects<N extends string = BpfObjectName>(
  outDir = defaultBpfOutDir,
  btfPath = "/sys/kernel/btf/vmlinux",
  names: readonly N[] = bpfObjectNames as unknown as readonly N[],
): Promise<Record<N, string>> {
  await Deno.mkdir(outDir, { recursive: true, mode: 0o755 });
  if (Deno.uid() === 0) {
    // Built as root before the drop, then loaded into the kernel: nothing in or above the sources or the
    // output may be replaceable by another user (a planted vmlinux.h, object or symbolic link).
    for (const dir of [outDir, srcDir]) {
      const why = replaceableBy(dir, NOT_ROOT);
      if (why) throw new Error(`refusing to build BPF objects as root: ${why}`);
    }
  }
  const header = join(outDir, "vmlinux.h");
  const stamp = join(outDir, "vmlinux.h.btf-stamp");
  const btfStat = Deno.statSync(btfPath);
  const btfId = `${btfStat.size} ${Deno.osRelease()}`;
  let haveId = "";
  try {
    haveId = Deno.readTextFileSync(stamp);
  } catch { /* first build */ }
  if (haveId !== btfId || mtime(header) === 0) {
    const text = await run("bpftool", ["btf", "dump", "file", btfPath, "format", "c"]);
    await writeAtomic(header, text);
    await writeAtomic(stamp, new TextEncoder().encode(btfId));
  }
  const common = Math.max(mtime(header), mtime(join(srcDir, "common.bpf.h")));
  const out = {} as Record<N, string>;
  for (const name of names) {
    const src = join(srcDir, `${name}.bpf.c`);
    const obj = join(outDir, `${name}.bpf.o`);
    out[name] = obj;
    if (mtime(obj) > Math.max(common, mtime(src))) continue;
    const tmp = `${obj}.${Deno.pid}.tmp`;
    await run("clang", [
      "-O2",
      "-g",
      "-target",
      "bpf",
      "-D__TARGET_ARCH_x86",
      "-I",
      outDir,
      "-I",
      srcDir,
      "-c",
      src,
      "-o",
      tmp,
    ]);
    await Deno.chmod(tmp, 0o644);
    await Deno.rename(tmp, obj);
  }
  return out;
}

if (import.meta.main) {
  // By hand (deno task build:bpf): the collector's objects and the benchmark's.
  const objs = await buildBpfObjects<string>(Deno.args[0], undefined, [...bpfObjectNames, ...benchBpfObjectNames]);
  for (const [name, path] of Object.entries(objs)) console.log(`${name}: ${path}`);
}
