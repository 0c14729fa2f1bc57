// Tests that every launcher of `ceems exporter` (deno task, packaging wrapper, deno compile, the cgroup
// benchmark) and the package's cache of it use the V8 heap flags of common/v8_flags.ts.

import { assert, assertEquals } from "../helpers/assert.ts";
import { EXPORTER_V8_FLAGS } from "../../common/v8_flags.ts";

const repo = new URL("../../", import.meta.url);
const read = (p: string) => Deno.readTextFileSync(new URL(p, repo));

Deno.test("v8 flags: deno.json's exporter task uses EXPORTER_V8_FLAGS", () => {
  const task = JSON.parse(read("deno.json")).tasks.exporter as string;
  assertEquals(/--v8-flags=(\S+)/.exec(task)?.[1], EXPORTER_V8_FLAGS);
});

Deno.test("v8 flags: packaging/bin/ceems passes EXPORTER_V8_FLAGS to the exporter only", () => {
  const script = read("packaging/bin/ceems");
  assert(script.includes(`[ "$1" = exporter ] && V8_FLAGS=--v8-flags=${EXPORTER_V8_FLAGS}\n`), script);
});

Deno.test("v8 flags: postinst fills the exporter's Deno cache with EXPORTER_V8_FLAGS (V8 rejects other flags' code)", () => {
  const script = read("packaging/debian/postinst");
  assert(script.includes(`fill_one "$CACHE_ROOT/deno-exporter" --v8-flags=${EXPORTER_V8_FLAGS})`), script);
  assert(read("packaging/bin/ceems").includes('[ "$1" = exporter ] && CEEMS_CACHE=/var/cache/ceems/deno-exporter'));
});

Deno.test("v8 flags: the build and the cgroup benchmark import EXPORTER_V8_FLAGS", () => {
  for (const f of ["scripts/build.ts", "scripts/bench_cgroups.ts"]) {
    assert(read(f).includes("EXPORTER_V8_FLAGS"), f);
  }
});

Deno.test("v8 flags: V8 accepts them (a run with them starts and exits 0)", () => {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["eval", `--v8-flags=${EXPORTER_V8_FLAGS}`, "console.log('ok')"],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const err = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, err);
  assert(!/unrecognized|Error: unknown/i.test(err), err);
});
