// Fake SLURM tools for API server tests: sacct and sacctmgr scripts that print CEEMS's recorded outputs
// (tests/api_server/fixtures/tools), for a server started on fixtures instead of a real cluster.

import { join } from "node:path";
import { repoRoot } from "./process.ts";

const fixtures = join(repoRoot, "tests/api_server/fixtures");

/** Writes executable fake sacct/sacctmgr that print the fixtures, into a new temp dir. */
export function fakeSlurmTools(dir: string, sacctFile = join(fixtures, "tools/sacct.txt")): string {
  const bin = join(dir, "bin");
  Deno.mkdirSync(bin, { recursive: true });
  Deno.writeTextFileSync(join(bin, "sacct"), `#!/bin/sh\ncat '${sacctFile}'\n`, { mode: 0o755 });
  Deno.writeTextFileSync(join(bin, "sacctmgr"), `#!/bin/sh\ncat '${join(fixtures, "tools/sacctmgr.txt")}'\n`, {
    mode: 0o755,
  });
  return bin;
}
