// Fake SLURM tools for API server tests: sacct and sacctmgr scripts that print CEEMS's recorded outputs
// (tests/api_server/fixtures/tools) or generated job records, for a server started without a real cluster.

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

/** `n` completed one-hour jobs of `users` users (usr0...) in 10 accounts, as `sacct --parsable2` prints them. */
export function sacctRecords(n: number, o: { firstId?: number; users?: number } = {}): string {
  const first = o.firstId ?? 50_000_000, users = o.users ?? 50;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const user = `usr${i % users}`;
    lines.push(
      `${first + i}|p|normal|acc${i % 10}|g|100|${user}|${
        1000 + (i % users)
      }|2026-01-01T00:00:00+0000|2026-01-01T00:00:10+0000|2026-01-01T01:00:10+0000|01:00:00|3600|0:0|COMPLETED|billing=1,cpu=1,mem=1G,node=1|n${
        i % 8
      }|job${i}|/home/${user}`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * Writes fake SLURM tools into `<dir>/bin` whose sacct prints `records` only once `<dir>/go` exists (a window
 * ingested when the test says so); returns the bin directory and a function that says go.
 */
export function gatedSlurmTools(dir: string, records: string): { bin: string; go(): void } {
  const bin = join(dir, "bin");
  Deno.mkdirSync(bin, { recursive: true });
  Deno.writeTextFileSync(join(dir, "sacct.txt"), records);
  Deno.writeTextFileSync(
    join(bin, "sacct"),
    `#!/bin/sh\nwhile [ ! -e '${dir}/go' ]; do sleep 0.05; done\ncat '${dir}/sacct.txt'\n`,
    { mode: 0o755 },
  );
  Deno.writeTextFileSync(join(bin, "sacctmgr"), "#!/bin/sh\necho 'acc0|usr0'\n", { mode: 0o755 });
  return { bin, go: () => Deno.writeTextFileSync(join(dir, "go"), "") };
}
