// Installed as /usr/lib/ceems/fill_cache.ts and run by the package's postinst, as root with Deno's permissions
// limited to reading the app: loads each module of the installed app once, so $DENO_DIR holds Deno's caches of it.

import { join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The app's TypeScript modules under `app` (only under `entries`, its files and directories, when given), sorted:
 * npm packages, dot-directories and tests aside.
 */
export function appModules(app: string, entries: string[] = []): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) walk(p);
      else if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(p);
    }
  };
  if (!entries.length) walk(app);
  for (const e of entries) {
    const p = join(app, e);
    if (Deno.statSync(p).isDirectory) walk(p);
    else out.push(p);
  }
  return out.sort();
}

/**
 * Imports each of `modules` (their top-level code runs; entry points wait for `import.meta.main`); returns the
 * modules that failed, with the reason.
 */
export async function loadAll(modules: string[]): Promise<string[]> {
  // The Worker entry modules announce themselves with postMessage when loaded; here, on the main thread, a no-op.
  const g = globalThis as { postMessage?: unknown };
  g.postMessage ??= () => {};
  const failed: string[] = [];
  for (const m of modules) {
    try {
      await import(pathToFileURL(m).href);
    } catch (e) {
      failed.push(`${m}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return failed;
}

if (import.meta.main) {
  const [app, ...entries] = Deno.args;
  if (!app) {
    console.error("usage: fill_cache.ts <app directory> [its files and directories to load]");
    Deno.exit(2);
  }
  const modules = appModules(app, entries);
  const failed = await loadAll(modules);
  for (const f of failed) console.error(`fill_cache: ${f}`);
  console.error(`fill_cache: loaded ${modules.length - failed.length} of ${modules.length} modules of ${app}`);
  // The Worker modules' message ports keep the event loop alive: leave at once.
  Deno.exit(failed.length ? 1 : 0);
}
