// Guard over what runs while capabilities are raised: the privileged Worker's module graph (worker.ts and
// its imports) and the root-exec Worker's raised window (exec_spawn.ts and its imports, which fork).

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { WORKER_MODULE_FILES } from "../../privilege/worker_source.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";

const workerPath = fileURLToPath(new URL("../../privilege/worker.ts", import.meta.url));
const execSpawnPath = fileURLToPath(new URL("../../privilege/exec_spawn.ts", import.meta.url));
const execWorkerPath = fileURLToPath(new URL("../../privilege/exec_worker.ts", import.meta.url));

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

/** Forbidden constructs found in the files of a graph (`allow` names rules that do not apply). */
function problemsIn(files: string[], allow: string[] = []): string[] {
  const problems: string[] = [];
  for (const f of files) {
    const raw = Deno.readTextFileSync(f);
    if (/node:fs\/promises/.test(raw)) problems.push(`${f}: imports node:fs/promises`);
    const lines = code(raw).split("\n");
    lines.forEach((line, i) => {
      for (const [re, what] of FORBIDDEN) {
        if (!allow.includes(what) && re.test(line)) problems.push(`${f}:${i + 1}: ${what}: ${line.trim()}`);
      }
    });
  }
  return problems;
}

Deno.test("the privileged Worker's modules use only synchronous calls", () => {
  const files = moduleGraph(workerPath);
  assert(files.length >= 4, `graph too small: ${files}`);
  assertEquals(problemsIn(files), []);
});

Deno.test("the root-exec Worker's raised window only forks: synchronous, spawn() its one Deno.Command call", () => {
  const files = moduleGraph(execSpawnPath);
  assertEquals(problemsIn(files, ["async Deno.Command"]), []);
  // spawn() is the fork; what reads the child (output, status) is not in this graph.
  const spawns = files.flatMap((f) => code(Deno.readTextFileSync(f)).split("\n").filter((l) => /\.spawn\s*\(/.test(l)));
  assertEquals(spawns.length, 1, spawns.join("\n"));
  assert(!files.some((f) => f.endsWith("exec_collect.ts")), "the async reader must stay outside the raised window");
  // The Worker forks first (spawnAsRoot drops every capability in `finally`), then reads without any.
  const worker = code(Deno.readTextFileSync(execWorkerPath));
  const spawnAt = worker.indexOf("spawnAsRoot(ev.data)");
  assert(spawnAt > 0 && spawnAt < worker.indexOf("collectOutput("), "spawn before any asynchronous read");
  assertMatch(code(Deno.readTextFileSync(execSpawnPath)), /finally \{\s*capsetThread\(\{ permitted: 0n, effective: 0n/);
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

Deno.test("setup grants the run-as user read access to exactly the Workers' module graphs", () => {
  const both = [...new Set([...moduleGraph(workerPath), ...moduleGraph(execWorkerPath)])].sort();
  assertEquals([...WORKER_MODULE_FILES].sort(), both);
});
