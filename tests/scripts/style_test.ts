// The design card's style rules as a test, so CI fails on them: the tree is `deno fmt` and `deno lint`
// clean (type checking is already part of `deno test`, which checks every module a test imports).

import { assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";

async function deno(args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: repoRoot,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("style: deno fmt --check finds nothing to reformat", async () => {
  const r = await deno(["fmt", "--check"]);
  assertEquals(r.code, 0, r.output);
});

Deno.test("style: deno lint finds no problem", async () => {
  const r = await deno(["lint"]);
  assertEquals(r.code, 0, r.output);
});
