// SIGTERM during a long catch-up (three days of one-hour windows, sacct slow to answer): `ceems api`
// stops between windows and exits within CEEMS's 5 s, every applied window whole.

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals } from "../helpers/assert.ts";
import { startCeems } from "../helpers/process.ts";
import { fakeSlurmTools } from "../helpers/fake_slurm.ts";

function state(dbPath: string): { last?: number; spread: number } {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    const last = (db.prepare("SELECT last_update_ms AS v FROM update_state WHERE cluster_id = 'c0'").get() as
      | { v: number }
      | undefined)?.v;
    const spread = (db.prepare("SELECT MAX(num_updates) - MIN(num_updates) AS n FROM units").get() as {
      n: number | null;
    }).n ?? 0;
    return { last, spread };
  } catch {
    return { spread: 0 };
  } finally {
    db.close();
  }
}

Deno.test("SIGTERM during a three-day catch-up exits within 5 s; the catch-up resumes at the next start", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-sigterm-" });
  try {
    const bin = fakeSlurmTools(dir);
    // sacct takes a second per window, as on a busy slurmdbd.
    const sacct = join(bin, "sacct");
    Deno.writeTextFileSync(sacct, Deno.readTextFileSync(sacct).replace("#!/bin/sh\n", "#!/bin/sh\nsleep 1\n"));
    const from = new Date(Date.now() - 3 * 86_400_000).toISOString().slice(0, 16);
    Deno.writeTextFileSync(
      join(dir, "c.yml"),
      `ceems_api_server:\n  data: {path: ${dir}/data, update_from: '${from}Z', max_update_interval: 1h}\nclusters:\n  - {id: c0, manager: slurm, cli: {path: ${bin}}}\n`,
    );
    const args = ["api", `--config.file=${dir}/c.yml`, "--storage.data.skip.delete.old.units"];
    const dbPath = join(dir, "data/ceems.db");
    const api = await startCeems(args);
    const deadline = Date.now() + 30_000;
    while (state(dbPath).last === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const first = state(dbPath).last;
    assert(first !== undefined, "a first window was applied");
    // In the middle of the next window's sacct call.
    await new Promise((r) => setTimeout(r, 700));
    const t0 = performance.now();
    const { code, stderr } = await api.stop("SIGTERM");
    const took = performance.now() - t0;
    assertEquals(code, 0, stderr);
    assert(took < 5_000, `exited after ${Math.round(took)} ms`);
    const after = state(dbPath);
    assert(after.last! < Date.now() - 86_400_000, "the catch-up was interrupted, not finished");
    assertEquals(after.spread, 0, "windows are applied whole");
    // Restarted, it goes on from the last applied window.
    const again = await startCeems(args);
    const deadline2 = Date.now() + 30_000;
    while (state(dbPath).last! <= after.last! && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 100));
    assert(state(dbPath).last! > after.last!, "the next start continues the catch-up");
    assertEquals((await again.stop()).code, 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
