// Crash safety: `ceems api` is killed with SIGKILL while it ingests a large sacct window, restarted, and
// catches up; every window is applied all-or-nothing, so no unit is lost or duplicated.

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals } from "../helpers/assert.ts";
import { startCeems } from "../helpers/process.ts";

const N = 20_000;

function sacctLines(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const user = `u${i % 50}`;
    lines.push(
      `${1_000_000 + i}|p|normal|acc${i % 10}|g|100|${user}|${
        1000 + (i % 50)
      }|2026-01-01T00:00:00+0000|2026-01-01T00:00:10+0000|2026-01-01T01:00:10+0000|01:00:00|3600|0:0|COMPLETED|billing=1,cpu=1,mem=1G,node=1|n${
        i % 8
      }|job${i}|/home/${user}`,
    );
  }
  return lines.join("\n") + "\n";
}

function counts(dbPath: string) {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    const one = <T>(sql: string) => db.prepare(sql).get() as T;
    return {
      units: one<{ n: number }>("SELECT COUNT(*) AS n FROM units").n,
      distinct: one<{ n: number }>("SELECT COUNT(DISTINCT uuid) AS n FROM units").n,
      usageUnits: one<{ n: number | null }>("SELECT SUM(num_units) AS n FROM usage").n ?? 0,
      updateSpread: one<{ n: number | null }>("SELECT MAX(num_updates) - MIN(num_updates) AS n FROM units").n ?? 0,
      last: (one<{ v: number } | undefined>("SELECT last_update_ms AS v FROM update_state"))?.v,
    };
  } finally {
    db.close();
  }
}

Deno.test("kill -9 during an update, restart: no lost and no duplicated units", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-crash-" });
  const bin = join(dir, "bin");
  Deno.mkdirSync(bin);
  Deno.writeTextFileSync(join(dir, "sacct.txt"), sacctLines(N));
  const marker = join(dir, "sacct-called");
  Deno.writeTextFileSync(join(bin, "sacct"), `#!/bin/sh\necho x >> '${marker}'\ncat '${dir}/sacct.txt'\n`, {
    mode: 0o755,
  });
  Deno.writeTextFileSync(join(bin, "sacctmgr"), "#!/bin/sh\necho 'acc0|u0'\n", { mode: 0o755 });
  const from = new Date(Date.now() - 3 * 3_600_000 + 60_000).toISOString().slice(0, 19) + "Z";
  Deno.writeTextFileSync(
    join(dir, "config.yml"),
    `ceems_api_server:\n  data:\n    path: ${dir}/data\n    update_from: '${
      from.slice(0, 16)
    }Z'\n    max_update_interval: 1h\nclusters:\n  - {id: c0, manager: slurm, cli: {path: ${bin}}}\n`,
  );
  const args = ["api", `--config.file=${dir}/config.yml`, "--storage.data.skip.delete.old.units"];
  const dbPath = join(dir, "data/ceems.db");
  try {
    // 1st run: killed shortly after sacct was called for the first window (while parsing/upserting).
    const first = await startCeems(args);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        Deno.statSync(marker);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    await new Promise((r) => setTimeout(r, 150));
    await first.stop("SIGKILL");
    const after = counts(dbPath);
    assert(after.units === 0 || after.units === N, `all-or-nothing after kill: ${after.units} units`);
    assertEquals(after.units, after.distinct);
    assert(after.last === undefined || after.last < Date.now() - 30 * 60_000, "the kill interrupted the catch-up");

    // 2nd run: catches up to now.
    const second = await startCeems(args);
    try {
      const end = Date.now() + 90_000;
      let c = counts(dbPath);
      while (Date.now() < end && !(c.last !== undefined && c.last > Date.now() - 10 * 60_000)) {
        await new Promise((r) => setTimeout(r, 250));
        c = counts(dbPath);
      }
      assert(c.last !== undefined && c.last > Date.now() - 10 * 60_000, `catch-up finished (last=${c.last})`);
      assertEquals(c.units, N, "no lost units");
      assertEquals(c.distinct, N, "no duplicated units");
      assertEquals(c.usageUnits, N, "usage counts each unit once");
      assertEquals(c.updateSpread, 0, "every window applied to all units or none");
    } finally {
      assertEquals((await second.stop()).code, 0);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
