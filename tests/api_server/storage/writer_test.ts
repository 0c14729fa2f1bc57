// The writer thread: a window posted as units in slices is applied whole, a slice that fails rolls the
// window back with its own error, and a window staged as sacct output is parsed there.

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { sacctRecords } from "../../helpers/fake_slurm.ts";
import { parseSacct } from "../../../api_server/managers/sacct_parse.ts";
import { WorkerStorage } from "../../../api_server/storage/writer_client.ts";

const T0 = Date.parse("2026-01-10T00:00:00Z");
const meta = (end: number) => ({
  clusterId: "c0",
  windowStartMs: end - 3_600_000,
  windowEndMs: end,
  users: [],
  projects: [],
  adminUsers: [],
  retentionMs: 0,
});

Deno.test("writer thread: windows in slices apply whole or not at all; staged sacct output is parsed there", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-writer-" });
  const s = await WorkerStorage.open(join(dir, "data"));
  const count = () => {
    const db = new DatabaseSync(s.path, { readOnly: true });
    try {
      return (db.prepare("SELECT COUNT(*) AS n FROM units").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  try {
    // 450 units: three slices on their way to the thread.
    const units = parseSacct(sacctRecords(450), "c0", T0 - 3_600_000, T0).units;
    await s.applyUpdate({ ...meta(T0), units });
    assertEquals([count(), await s.lastUpdateMs("c0")], [450, T0]);
    // A unit of the third slice cannot be stored: the window's first two slices go too, and the error is SQLite's.
    const more = parseSacct(sacctRecords(450, { firstId: 1 }), "c0", T0, T0 + 3_600_000).units;
    (more[420] as unknown as Record<string, unknown>).uuid = null;
    const err = await s.applyUpdate({ ...meta(T0 + 3_600_000), units: more }).then(() => undefined, (e) => e);
    assert(err instanceof Error && /NOT NULL/.test(err.message), String(err));
    assertEquals([count(), await s.lastUpdateMs("c0")], [450, T0]);
    // Staged: parsed on the thread, then applied (or dropped).
    const st = await s.stage({ format: "sacct", text: sacctRecords(10, { firstId: 7 }) + "not a record\n" }, {
      clusterId: "c0",
      startMs: T0,
      endMs: T0 + 3_600_000,
      updaters: [],
    });
    assertEquals([st.units, st.skipped, st.firstSkipped?.line.trim()], [10, 1, "not a record"]);
    await s.applyStaged(st.id, meta(T0 + 3_600_000));
    assertEquals([count(), await s.lastUpdateMs("c0")], [460, T0 + 3_600_000]);
    const dropped = await s.stage({ format: "sacct", text: sacctRecords(5, { firstId: 100 }) }, {
      clusterId: "c0",
      startMs: T0,
      endMs: T0 + 7_200_000,
      updaters: [],
    });
    await s.discardStaged(dropped.id);
    const gone = await s.applyStaged(dropped.id, meta(T0 + 7_200_000)).then(() => undefined, (e) => e);
    assert(gone instanceof Error && /no staged window/.test(gone.message), String(gone));
    assertEquals(count(), 460);
  } finally {
    await s.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
