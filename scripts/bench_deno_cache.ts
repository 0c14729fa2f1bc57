// Deno's caches for the benchmarks, as the package runs the daemons: filled from this checkout's app by the
// postinst's filler (scripts/package/fill_cache.ts, two passes), then opened read-only.

import { join } from "node:path";
import { readOnlyMounts } from "../tests/helpers/systemd_unit.ts";
import { APP_DIRS } from "./package/stage.ts";

/** A filled cache and how to run a command with it. */
export interface BenchDenoCache {
  /** Environment of a command run with the cache. */
  env: Record<string, string>;
  /**
   * `cmd args` as run with the cache: as root, in a mount namespace where the cache is read-only (as the
   * units' ProtectSystem=strict makes it; a root start refuses a cache it could write), else unchanged.
   */
  command(cmd: string, args: string[]): { cmd: string; args: string[] };
  /** Deletes the cache. */
  remove(): void;
}

/**
 * Fills a cache from the app of the checkout at `repo` as postinst does, for runs with `v8Flags` (the `--v8-flags`
 * value; V8 rejects code cached under other flags); throws with the filler's output on failure.
 */
export function packagedDenoCache(repo: string, v8Flags = ""): BenchDenoCache {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-bench-deno-cache-" });
  Deno.chmodSync(dir, 0o755);
  const env = { DENO_DIR: dir, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };
  for (let pass = 0; pass < 2; pass++) {
    const r = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
        "--no-remote",
        "--cached-only",
        "--frozen",
        `--config=${join(repo, "deno.json")}`,
        `--allow-read=${repo}`,
        "--allow-env",
        "--no-prompt",
        join(repo, "scripts/package/fill_cache.ts"),
        repo,
        "main.ts",
        ...APP_DIRS,
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!r.success) {
      Deno.removeSync(dir, { recursive: true });
      throw new Error(`filling Deno's caches: ${new TextDecoder().decode(r.stderr)}`);
    }
  }
  return {
    env,
    command: (cmd, args) => {
      if (Deno.uid() !== 0) return { cmd, args };
      const wrap = readOnlyMounts([dir]);
      return { cmd: wrap[0], args: [...wrap.slice(1), cmd, ...args] };
    },
    remove: () => Deno.removeSync(dir, { recursive: true }),
  };
}
