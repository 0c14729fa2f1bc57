// Builds small sysfs/procfs trees in temp directories for collector tests: files from a path → content
// map, symlinks from a path → target map.

import { dirname, join } from "node:path";

/** Creates `root/<path>` files (and parent directories) from the map; a value `{link}` makes a symlink. */
export function writeTree(root: string, files: Record<string, string | { link: string }>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    Deno.mkdirSync(dirname(p), { recursive: true });
    if (typeof content === "string") Deno.writeTextFileSync(p, content);
    else Deno.symlinkSync(content.link, p);
  }
}

/** Runs `fn` with a fresh temp directory that is removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-test-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
