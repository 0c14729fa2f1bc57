// `ceems api` flags: --web.max-requests means CEEMS's per-client rate per minute for the API (default 0),
// while the exporter keeps its own meaning of the shared flag.

import { assert, assertEquals } from "../helpers/assert.ts";
import { join } from "node:path";
import { runCeems, startCeems } from "../helpers/process.ts";
import { SqliteStorage } from "../../api_server/storage/sqlite.ts";
import { generateApiDb } from "../helpers/api_db.ts";
import { gatedSlurmTools, sacctRecords } from "../helpers/fake_slurm.ts";
import { DatabaseSync } from "node:sqlite";

Deno.test("api help explains --web.max-requests as a per-client rate; exporter keeps its parallel limit", async () => {
  const line = (out: string) => out.split("\n").find((l) => l.includes("--web.max-requests")) ?? "";
  const api = await runCeems(["api", "--help"]);
  assertEquals(api.code, 0, api.stderr);
  const a = line(api.stdout + api.stderr);
  assert(/per minute per client/.test(a) && a.includes("(default: 0)"), a);
  const exp = await runCeems(["exporter", "--help"]);
  const e = line(exp.stdout + exp.stderr);
  assert(/parallel requests/.test(e) && e.includes("(default: 40)"), e);
});

Deno.test("api started as root opens a DB that root created (restored) after dropping privileges", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-rootdb-" });
  try {
    // Created by this (root) process, mode 0640 as the store makes it, with a committed window.
    const st = new SqliteStorage(join(dir, "data"));
    st.db.exec("INSERT INTO update_state (cluster_id, last_update_ms) VALUES ('x', 1)");
    st.close();
    Deno.writeTextFileSync(join(dir, "c.yml"), `ceems_api_server:\n  data:\n    path: ${dir}/data\n`);
    const api = await startCeems(["api", `--config.file=${dir}/c.yml`]);
    try {
      const r = await fetch(`${api.base}/api/v1/units`, { headers: { "X-Grafana-User": "u" } });
      assertEquals([r.status, await r.text()], [200, '{"status":"success","data":[]}\n']);
      const h = await fetch(`${api.base}/health`);
      assertEquals(h.status, 200, await h.text());
    } finally {
      assertEquals((await api.stop()).code, 0);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a second api on the same data directory refuses to start with one line; the first keeps serving", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-lock-" });
  try {
    Deno.writeTextFileSync(join(dir, "c.yml"), `ceems_api_server:\n  data:\n    path: ${dir}/data\n`);
    const first = await startCeems(["api", `--config.file=${dir}/c.yml`]);
    try {
      const second = await runCeems(["api", `--config.file=${dir}/c.yml`, "--web.listen-address=127.0.0.1:0"]);
      assertEquals(second.code, 1, second.stderr);
      const lines = second.stderr.trim().split("\n");
      assertEquals(lines.length, 1, second.stderr);
      assert(/^ceems api: error: .*ceems\.db is in use by another ceems api \(pid \d+\)/.test(lines[0]), lines[0]);
      const r = await fetch(`${first.base}/api/v1/units`, { headers: { "X-Grafana-User": "u" } });
      assertEquals(r.status, 200, await r.text());
    } finally {
      assertEquals((await first.stop()).code, 0);
    }
    // The lock goes with the process: the next server starts.
    const third = await startCeems(["api", `--config.file=${dir}/c.yml`]);
    assertEquals((await third.stop()).code, 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a stopped api leaves no WAL frames behind, even with an answer streaming from before the last window", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-wal-" });
  try {
    const g = generateApiDb(join(dir, "data"), { units: 30_000 });
    const { bin, go } = gatedSlurmTools(dir, sacctRecords(500));
    const from = new Date(Date.now() - 30 * 60_000).toISOString().slice(0, 16);
    Deno.writeTextFileSync(
      join(dir, "c.yml"),
      `ceems_api_server:\n  data: {path: ${dir}/data, update_from: '${from}Z'}\n  admin: {users: [boss]}\nclusters:\n  - {id: c0, manager: slurm, cli: {path: ${bin}}}\n`,
    );
    const api = await startCeems(["api", `--config.file=${dir}/c.yml`, "--storage.data.skip.delete.old.units"]);
    // An admin's answer of all units, read a little and left waiting: its reader holds the snapshot it began on.
    const now = Math.floor(Date.now() / 1000);
    const r = await fetch(`${api.base}/api/v1/units/admin?from=${now - 200 * 86400}&to=${now}`, {
      headers: { "X-Grafana-User": "boss" },
    });
    assertEquals(r.status, 200);
    const reader = r.body!.getReader();
    await reader.read();
    // A window is written after that snapshot.
    go();
    const applied = () => {
      const db = new DatabaseSync(g.dbPath, { readOnly: true });
      try {
        return db.prepare("SELECT 1 FROM update_state WHERE cluster_id = 'c0'").get() !== undefined;
      } finally {
        db.close();
      }
    };
    const deadline = Date.now() + 20_000;
    while (!applied() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert(applied(), "the window was applied");
    const t0 = performance.now();
    const { code, stderr } = await api.stop();
    const took = performance.now() - t0;
    await reader.cancel().catch(() => {});
    assertEquals(code, 0, stderr);
    assert(took < 5_000, `stopped in ${Math.round(took)} ms`);
    const wal = (() => {
      try {
        return Deno.statSync(`${g.dbPath}-wal`).size;
      } catch {
        return 0;
      }
    })();
    assertEquals(wal, 0, "the WAL was folded into the database and emptied");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
