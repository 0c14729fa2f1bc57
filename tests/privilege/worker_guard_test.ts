// Guard over the privileged Worker's module graph (privilege/worker.ts and everything it imports):
// none may use what the rules forbid while capabilities are raised.

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { WORKER_MODULE_FILES } from "../../privilege/worker_source.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const workerPath = fileURLToPath(new URL("../../privilege/worker.ts", import.meta.url));

/** The worker module and its transitive relative imports (type-only imports included: cheap and strict). */
function moduleGraph(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = Deno.readTextFileSync(file);
    for (const m of src.matchAll(/(?:import|export)[^"';]*?from\s*["']([^"']+)["']|import\s*["']([^"']+)["']/g)) {
      const spec = m[1] ?? m[2];
      if (!spec.startsWith(".")) throw new Error(`${file}: privileged module imports non-local ${spec}`);
      visit(join(dirname(file), spec));
    }
  };
  visit(entry);
  return [...seen].sort();
}

/** Source without comments and string contents, so prose mentioning a forbidden word does not count. */
function code(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "")
    .replace(/`(?:[^`\\]|\\.)*`/g, "``")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""')
    .replace(/'(?:[^'\\\n]|\\.)*'/g, "''");
}

const FORBIDDEN: [RegExp, string][] = [
  [/\bawait\b/, "await"],
  [/\basync\b/, "async function"],
  [/\bsetTimeout\b|\bsetInterval\b|\bqueueMicrotask\b|\brequestAnimationFrame\b/, "timer"],
  [/\bfetch\s*\(/, "fetch"],
  [/nonblocking\s*:\s*true/, "nonblocking FFI symbol"],
  [
    /\bDeno\.(readFile|readTextFile|writeFile|writeTextFile|open|create|stat|lstat|readDir|readLink|realPath|remove|mkdir|copyFile|rename|chmod|chown|truncate|makeTempDir|makeTempFile|symlink|link|utime)\s*\(/,
    "async Deno file API",
  ],
  [/\.output\s*\(\s*\)|\.spawn\s*\(\s*\)|\.status\b/, "async Deno.Command"],
  [/node:fs\/promises|from\s+""\s*;?\s*\/\/fs-promises|\bfs\.promises\b/, "fs/promises"],
  [/\.then\s*\(/, "promise continuation"],
];

Deno.test("the privileged Worker's modules use only synchronous calls", () => {
  const files = moduleGraph(workerPath);
  assert(files.length >= 4, `graph too small: ${files}`);
  const problems: string[] = [];
  for (const f of files) {
    const raw = Deno.readTextFileSync(f);
    if (/node:fs\/promises/.test(raw)) problems.push(`${f}: imports node:fs/promises`);
    const lines = code(raw).split("\n");
    lines.forEach((line, i) => {
      for (const [re, what] of FORBIDDEN) if (re.test(line)) problems.push(`${f}:${i + 1}: ${what}: ${line.trim()}`);
    });
  }
  assertEquals(problems, []);
});

Deno.test("the guard catches each forbidden construct", () => {
  for (
    const bad of [
      "const x = await y;",
      "async function f() {}",
      "setTimeout(f, 1);",
      'fetch("http://x");',
      "const s = { f: { parameters: [], result: 'i32', nonblocking: true } };",
      "Deno.readTextFile(p);",
      "new Deno.Command('x').output();",
      "p.then(f);",
    ]
  ) assert(FORBIDDEN.some(([re]) => re.test(code(bad))), `not caught: ${bad}`);
  for (const ok of ["Deno.readTextFileSync(p);", "new Deno.Command('x').outputSync();", "// await in a comment"]) {
    assert(!FORBIDDEN.some(([re]) => re.test(code(ok))), `false positive: ${ok}`);
  }
});

Deno.test("setup grants the run-as user read access to exactly the Worker's module graph", () => {
  assertEquals([...WORKER_MODULE_FILES].sort(), moduleGraph(workerPath));
});
