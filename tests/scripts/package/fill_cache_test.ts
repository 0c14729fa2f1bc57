// The postinst's cache filler: which files it loads from an app directory, and that it loads Worker entry
// modules and guarded entry points without running them as programs while naming each module that fails.

import { join } from "node:path";
import { assertEquals } from "../../helpers/assert.ts";
import { appModules, loadAll } from "../../../scripts/package/fill_cache.ts";

function tree(files: Record<string, string>): string {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-fill-" });
  for (const [p, text] of Object.entries(files)) {
    Deno.mkdirSync(join(dir, p, ".."), { recursive: true });
    Deno.writeTextFileSync(join(dir, p), text);
  }
  return dir;
}

Deno.test("appModules: the app's .ts modules, without npm packages, dot-directories, tests or other files", () => {
  const dir = tree({
    "main.ts": "",
    "lb/a.ts": "",
    "lb/a_test.ts": "",
    "lb/b.js": "",
    "node_modules/.deno/x/index.ts": "",
    "node_modules/y.ts": "",
    ".bpf/z.ts": "",
    "api_server/http/c.ts": "",
  });
  try {
    assertEquals(appModules(dir).map((p) => p.slice(dir.length + 1)), ["api_server/http/c.ts", "lb/a.ts", "main.ts"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loadAll: Worker modules load on the main thread, entry points stay idle, failures are named", async () => {
  const dir = tree({
    "dep.ts": "export const n = 41;",
    "ok.ts": 'import { n } from "./dep.ts";\nexport const m = n + 1;',
    "worker.ts": "self.onmessage = () => {};\nself.postMessage({ ready: true });",
    "entry.ts": 'if (import.meta.main) throw new Error("ran as a program");',
    "broken.ts": 'throw new Error("no config\\nsecond line");',
    "syntax.ts": "export const = ;",
  });
  try {
    const failed = await loadAll(appModules(dir));
    assertEquals(failed.map((f) => f.slice(dir.length + 1).replace(/: .*/, "")), ["broken.ts", "syntax.ts"]);
    assertEquals(failed[0].slice(dir.length + 1), "broken.ts: no config");
    assertEquals((await import(join("file://", dir, "ok.ts"))).m, 42);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
