// Builds the C fakes of hardware libraries (NVML, the IPMI driver's ioctls) with gcc into a temp dir,
// once per test process, for tests that load them through the real FFI bindings.

import { fileURLToPath } from "node:url";

const built = new Map<string, string>();

/** Compiles tests/fakes/<source> into a shared library named `soname` and returns its path. */
export function buildFakeLibrary(source: string, soname: string): string {
  const key = `${source}:${soname}`;
  const have = built.get(key);
  if (have) return have;
  const dir = Deno.makeTempDirSync({ prefix: "ceems-fake-" });
  const out = `${dir}/${soname}`;
  const src = fileURLToPath(new URL(source, import.meta.url));
  const r = new Deno.Command("gcc", {
    args: ["-O2", "-Wall", "-Werror", "-fPIC", "-shared", "-o", out, src],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (r.code !== 0) throw new Error(`gcc ${source} failed:\n${new TextDecoder().decode(r.stderr)}`);
  built.set(key, out);
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  return out;
}
