// `ceems api` flags: --web.max-requests means CEEMS's per-client rate per minute for the API (default 0),
// while the exporter keeps its own meaning of the shared flag.

import { assert, assertEquals } from "../helpers/assert.ts";
import { join } from "node:path";
import { runCeems, startCeems } from "../helpers/process.ts";
import { SqliteStorage } from "../../api_server/storage/sqlite.ts";

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
