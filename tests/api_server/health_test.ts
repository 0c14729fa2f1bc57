// Start-up checks and /health of `ceems api`: a zero-length database is refused, a corrupt one is served as
// it is with /health saying why and no window written, and admins removed from the configuration lose
// their rights at once.

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCeems, startCeems } from "../helpers/process.ts";
import { generateApiDb } from "../helpers/api_db.ts";

/** A cluster whose sacct never answers in time: no window is applied while the test looks. */
function silentCluster(dir: string): string {
  const bin = join(dir, "bin");
  Deno.mkdirSync(bin, { recursive: true });
  Deno.writeTextFileSync(join(bin, "sacct"), "#!/bin/sh\nsleep 30\n", { mode: 0o755 });
  Deno.writeTextFileSync(join(bin, "sacctmgr"), "#!/bin/sh\nsleep 30\n", { mode: 0o755 });
  return `clusters:\n  - {id: c0, manager: slurm, cli: {path: ${bin}}}\n`;
}

Deno.test("a zero-length database stops start-up with one line instead of becoming a new database", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-empty-" });
  try {
    Deno.mkdirSync(join(dir, "data"));
    Deno.writeFileSync(join(dir, "data/ceems.db"), new Uint8Array());
    Deno.writeTextFileSync(join(dir, "c.yml"), `ceems_api_server:\n  data:\n    path: ${dir}/data\n`);
    const r = await runCeems(["api", `--config.file=${dir}/c.yml`, "--web.listen-address=127.0.0.1:0"]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert(/ceems\.db is empty \(0 bytes\); restore a backup/.test(r.stderr), r.stderr);
    assertEquals(Deno.statSync(join(dir, "data/ceems.db")).size, 0, "left as it was");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a corrupt database: /health says so, reads go on, no window is written", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-corrupt-" });
  try {
    const g = generateApiDb(join(dir, "data"), { units: 5_000 });
    // Garbage over a page in the second half of the file (index pages), the schema pages intact.
    const size = Deno.statSync(g.dbPath).size;
    const f = Deno.openSync(g.dbPath, { write: true });
    f.seekSync(Math.floor(size * 0.7 / 16384) * 16384, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array(16384).fill(0xa5));
    f.close();
    Deno.writeTextFileSync(
      join(dir, "c.yml"),
      `ceems_api_server:\n  data: {path: ${dir}/data, update_from: '2026-01-01'}\n${silentCluster(dir)}`,
    );
    const api = await startCeems(["api", `--config.file=${dir}/c.yml`]);
    try {
      const h = await fetch(`${api.base}/health`);
      const body = await h.text();
      assertEquals(h.status, 503, body);
      assert(/^KO: database integrity check failed/.test(body), body);
      const r = await fetch(`${api.base}/api/v1/users`, { headers: { "X-Grafana-User": g.user } });
      assertEquals(r.status, 200, "what can be read is still served");
      await r.body?.cancel();
    } finally {
      const { code, stderr } = await api.stop();
      assertEquals(code, 0, stderr);
      assert(/database integrity check failed/.test(stderr), stderr);
      assert(!/sacct/.test(stderr), "no update was attempted");
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an admin removed from the configuration loses admin rights at the next start, before any window", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-admins-" });
  const cfg = (admins: string) =>
    Deno.writeTextFileSync(
      join(dir, "c.yml"),
      `ceems_api_server:\n  data: {path: ${dir}/data}\n  admin: {users: [${admins}]}\n${silentCluster(dir)}`,
    );
  const adminsInDb = () => {
    const db = new DatabaseSync(join(dir, "data/ceems.db"), { readOnly: true });
    try {
      return (db.prepare("SELECT name FROM admin_users ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    } finally {
      db.close();
    }
  };
  const status = async (base: string, user: string) => {
    const r = await fetch(`${base}/api/v1/units/admin`, { headers: { "X-Grafana-User": user } });
    await r.body?.cancel();
    return r.status;
  };
  try {
    cfg("boss, chief");
    let api = await startCeems(["api", `--config.file=${dir}/c.yml`]);
    assertEquals([await status(api.base, "boss"), await status(api.base, "chief")], [200, 200]);
    assertEquals((await api.stop()).code, 0);
    assertEquals(adminsInDb(), ["boss", "ceems-int-svc", "chief"], "what the load balancer reads");
    cfg("chief");
    api = await startCeems(["api", `--config.file=${dir}/c.yml`]);
    try {
      assertEquals([await status(api.base, "boss"), await status(api.base, "chief")], [403, 200]);
      assertEquals(adminsInDb(), ["ceems-int-svc", "chief"]);
    } finally {
      assertEquals((await api.stop()).code, 0);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
