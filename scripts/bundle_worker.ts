// Regenerates privilege/worker.bundle.js (the privileged Worker as one JS file) with `deno bundle`,
// headed by the SHA-256 of its sources so the runtime only uses a bundle that matches them.

import { fileURLToPath } from "node:url";
import { bundleHeader, WORKER_BUNDLE_URL, workerSourcesHash } from "../privilege/worker_source.ts";

/** Bundles privilege/worker.ts and returns the file text the repository should hold. */
export async function buildWorkerBundle(): Promise<string> {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", fileURLToPath(new URL("../privilege/worker.ts", import.meta.url))],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (out.code !== 0) throw new Error(`deno bundle failed: ${new TextDecoder().decode(out.stderr)}`);
  return bundleHeader(await workerSourcesHash()) + new TextDecoder().decode(out.stdout);
}

if (import.meta.main) {
  Deno.writeTextFileSync(WORKER_BUNDLE_URL, await buildWorkerBundle());
  console.log(`wrote ${fileURLToPath(WORKER_BUNDLE_URL)}`);
}
