// What must hold before a root start drops privileges: no descriptor the process could write through
// afterwards (Deno's SQLite caches), and nothing loaded after the drop replaceable by the run-as user.

import { join } from "../common/path.ts";
import { replaceableBy, type Who } from "./writable.ts";

/** Regular files this process holds open for writing, except the files its stdout and stderr write to. */
export function writableFileDescriptors(): string[] {
  const same = (a: Deno.FileInfo, b?: Deno.FileInfo) => !!b && a.dev === b.dev && a.ino === b.ino;
  const stdio = [1, 2].map((fd) => {
    try {
      return Deno.statSync(`/proc/self/fd/${fd}`);
    } catch {
      return undefined;
    }
  });
  const out: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(e.name);
    if (fd < 3) continue;
    try {
      const st = Deno.statSync(`/proc/self/fd/${fd}`);
      if (!st.isFile || stdio.some((s) => same(st, s))) continue;
      const flags = parseInt(/^flags:\s*(\d+)/m.exec(Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`))?.[1] ?? "0", 8);
      if ((flags & 3) !== 0) out.push(Deno.readLinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return [...new Set(out)].sort();
}

/** Deno's cache directory for this process ($DENO_DIR, else the XDG or home cache), if it exists. */
export function denoDir(): string | undefined {
  const env = (k: string) => Deno.env.get(k);
  const dir = env("DENO_DIR") ||
    (env("XDG_CACHE_HOME")
      ? join(env("XDG_CACHE_HOME")!, "deno")
      : env("HOME")
      ? join(env("HOME")!, ".cache/deno")
      : "");
  try {
    return dir && Deno.statSync(dir).isDirectory ? dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Deno's cache directory `dir` and its entries (the SQLite caches, the transpiled code in gen/, ...): what a root
 * start loads code from. Only the top level: a bounded look, whatever the cache holds.
 */
export function denoCachePaths(dir: string): string[] {
  return [dir, ...[...Deno.readDirSync(dir)].map((e) => join(dir, e.name)).sort()];
}

/**
 * The first of `paths` (files loaded after the drop, and the directories code is loaded from) that `who`
 * could change, with the reason; undefined when none. Missing paths are skipped.
 */
export function firstReplaceable(paths: string[], who: Who): string | undefined {
  for (const p of new Set(paths)) {
    let why: string | undefined;
    try {
      why = replaceableBy(p, who);
    } catch {
      continue; // absent
    }
    if (why) return why;
  }
  return undefined;
}
