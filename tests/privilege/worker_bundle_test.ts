// The committed privileged-Worker bundle: it matches its sources (else the runtime falls back to the TS
// module, slower after the drop), it is what `deno bundle` produces, and a stale one is not used.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveWorkerUrl, WORKER_BUNDLE_URL, workerSourcesHash } from "../../privilege/worker_source.ts";
import { buildWorkerBundle } from "../../scripts/bundle_worker.ts";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";

const REGEN = "regenerate it: deno run -A scripts/bundle_worker.ts";

Deno.test("privilege/worker.bundle.js is fresh and identical to deno bundle's output", async () => {
  const text = Deno.readTextFileSync(WORKER_BUNDLE_URL);
  assertEquals(text.split("\n")[0], `// ceems-worker-bundle sources-sha256=${await workerSourcesHash()}`, REGEN);
  assertEquals(text, await buildWorkerBundle(), REGEN);
  const r = await resolveWorkerUrl();
  assertEquals([r.bundled, r.url.startsWith("blob:")], [true, true]);
});

Deno.test("a bundle whose sources changed is not used: the TS module is", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-bundle-" });
  try {
    for (const d of ["privilege", "ffi"]) {
      new Deno.Command("cp", { args: ["-a", join(repoRoot, d), join(dir, d)] }).outputSync();
    }
    Deno.writeTextFileSync(join(dir, "privilege/ops.ts"), "\n// changed\n", { append: true });
    const mod = await import(new URL("privilege/worker_source.ts", `file://${dir}/`).href);
    const r = await mod.resolveWorkerUrl();
    assertEquals(r.bundled, false);
    assertEquals(r.reason, "bundle is stale");
    assertEquals(fileURLToPath(r.url), join(dir, "privilege/worker.ts"));
    assertMatch(Deno.readTextFileSync(join(dir, "privilege/worker.bundle.js")), /^\/\/ ceems-worker-bundle /);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
