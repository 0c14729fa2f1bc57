// collectors/ shows its architecture: the framework in framework/, the unit engine with its sub-collectors in
// units/, one entry file per collector with its own parts in a directory; nothing imports back up, no cycles.

import { dirname, join, normalize, relative } from "node:path";
import { assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";

const root = join(repoRoot, "collectors");

/** Every .ts file under collectors/, relative to it. */
function files(dir = root): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory) return files(p);
    return e.name.endsWith(".ts") ? [relative(root, p)] : [];
  });
}

/** The collectors/ files a file imports (type-only imports too), relative to collectors/. */
function importsOf(file: string): string[] {
  const src = Deno.readTextFileSync(join(root, file));
  const out: string[] = [];
  for (const m of src.matchAll(/(?:import|export)[^"';]*?from\s*["'](\.[^"']+)["']|import\s*["'](\.[^"']+)["']/g)) {
    const target = relative(root, normalize(join(root, dirname(file), m[1] ?? m[2])));
    if (!target.startsWith("..")) out.push(target);
  }
  return out;
}

/** The layer of a file: framework, units, an entry (one file per collector, plus exporter/all), or a collector's part. */
function layer(file: string): string {
  if (file.startsWith("framework/")) return "framework";
  if (file.startsWith("units/")) return "units";
  return file.includes("/") ? `part:${file.split("/")[0]}` : "entry";
}

/** Which layers each layer may import. */
function allowed(from: string, to: string, toFile: string): boolean {
  if (from === "framework") return to === "framework";
  if (from === "units") return to === "framework" || to === "units";
  if (from.startsWith("part:")) return to === "framework" || to === "units" || to.startsWith("part:");
  // Entries: the framework, the engine, collectors' parts; only the subcommand and the list import entries.
  return to !== "entry" || toFile === "all.ts";
}

Deno.test("collectors/: no module imports a layer above it (framework ← units ← parts ← entries)", () => {
  const bad: string[] = [];
  for (const f of files()) {
    for (const t of importsOf(f)) {
      if (!allowed(layer(f), layer(t), t) && f !== "exporter.ts" && f !== "all.ts") bad.push(`${f} → ${t}`);
    }
  }
  assertEquals(bad, []);
});

Deno.test("collectors/: the import graph has no cycle", () => {
  const graph = new Map(files().map((f) => [f, importsOf(f)]));
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") {
      cycles.push([...path.slice(path.indexOf(f)), f].join(" → "));
      return;
    }
    state.set(f, "open");
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, "done");
  };
  for (const f of graph.keys()) visit(f, []);
  assertEquals(cycles, []);
});

Deno.test("collectors/: one entry file per registered collector", () => {
  const entries = files().filter((f) => layer(f) === "entry" && f !== "exporter.ts" && f !== "all.ts").sort();
  const listed = [...Deno.readTextFileSync(join(root, "all.ts")).matchAll(/import "\.\/([a-z0-9_]+\.ts)";/g)].map((m) =>
    m[1]
  ).sort();
  assertEquals(listed, entries);
  for (const f of entries) {
    const src = Deno.readTextFileSync(join(root, f));
    assertEquals(src.match(/registerCollector\(\{/g)?.length, 1, `${f} registers exactly one collector`);
  }
});
