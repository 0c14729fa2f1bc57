// The runtime the Debian package carries: the compiled single binary where deno compile can get denort (DENORT_BIN
// or Deno's download), else Deno itself from the npm registry's @deno/linux-x64-glibc package, fetched with npm.

import { join } from "node:path";

/** What runs ceems in the package. */
export type Runtime =
  | { kind: "compiled"; binary: string }
  | { kind: "deno"; binary: string; version: string };

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { ok: boolean; out: string; err: string } {
  const r = new Deno.Command(cmd, { args, cwd: opts.cwd, env: { NO_COLOR: "1" }, stdout: "piped", stderr: "piped" })
    .outputSync();
  const dec = new TextDecoder();
  return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/**
 * Builds the single binary with scripts/build.ts into `out`; undefined (with the reason) when deno compile cannot
 * get its denort runtime. Leaves no partial file behind.
 */
export function compiledRuntime(root: string, out: string): Runtime | { reason: string } {
  const r = run(Deno.execPath(), ["run", "-A", join(root, "scripts/build.ts"), out], { cwd: root });
  if (r.ok) return { kind: "compiled", binary: out };
  const lines = r.err.split("\n");
  const line = lines.find((l) => /^Download /.test(l)) ?? lines.find((l) => /error/i.test(l)) ?? lines.pop() ?? "";
  return { reason: /^Download /.test(line) ? `denort unavailable: ${line} failed` : line.trim() };
}

/**
 * Deno `version` for linux x86_64 from the npm registry (@deno/linux-x64-glibc, the package `npx deno` runs),
 * fetched once with `npm pack` (npm checks its integrity) into `cacheDir`; checked by running `deno --version`.
 */
export function npmDenoRuntime(version: string, cacheDir: string): Runtime {
  const dir = join(cacheDir, `deno-${version}`);
  const binary = join(dir, "package", "deno");
  const ok = () => run(binary, ["--version"]).out.startsWith(`deno ${version} `);
  try {
    if (ok()) return { kind: "deno", binary, version };
  } catch {
    // not fetched yet
  }
  Deno.mkdirSync(dir, { recursive: true });
  const pack = run("npm", ["pack", `@deno/linux-x64-glibc@${version}`, "--pack-destination", dir, "--json"]);
  if (!pack.ok) throw new Error(`npm pack @deno/linux-x64-glibc@${version} failed: ${pack.err.trim()}`);
  const tgz = join(dir, (JSON.parse(pack.out) as { filename: string }[])[0].filename);
  const tar = run("tar", ["xzf", tgz, "-C", dir]);
  if (!tar.ok) throw new Error(`unpacking ${tgz}: ${tar.err.trim()}`);
  Deno.removeSync(tgz);
  if (!ok()) throw new Error(`${binary} is not deno ${version}`);
  return { kind: "deno", binary, version };
}
