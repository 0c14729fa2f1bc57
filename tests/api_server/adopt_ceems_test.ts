// Adopting a CEEMS 0.9/0.10 database: one built with the sqlite3 CLI from CEEMS's final schema (fixture) and
// filled with an ingest's rows serves the same JSON as the database ceems made, then takes new windows.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { fakeSlurmTools, gatedSlurmTools, sacctRecords } from "../helpers/fake_slurm.ts";
import { repoRoot, runCeems, startCeems } from "../helpers/process.ts";
import { MIGRATIONS } from "../../api_server/storage/migrations.ts";

const SCHEMA = join(repoRoot, "tests/fixtures/ceems/ceems_v0.10_schema.sql");
const TABLES = ["units", "usage", "daily_usage", "users", "projects", "admin_users"];

/** Runs `sql` on `db` with the sqlite3 CLI (the SQL on its standard input). */
function sqlite(db: string, sql: string): string {
  const file = Deno.makeTempFileSync({ suffix: ".sql" });
  try {
    Deno.writeTextFileSync(file, sql);
    const r = new Deno.Command("sh", {
      args: ["-c", 'exec sqlite3 -bail "$1" < "$2"', "sh", db, file],
      stdout: "piped",
      stderr: "piped",
    })
      .outputSync();
    const dec = new TextDecoder();
    if (!r.success) throw new Error(`sqlite3: ${dec.decode(r.stderr)}`);
    return dec.decode(r.stdout).trim();
  } finally {
    Deno.removeSync(file);
  }
}

function config(dir: string, bin: string): string {
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const path = join(dir, "config.yml");
  Deno.writeTextFileSync(
    path,
    `ceems_api_server:\n  data:\n    path: ${dir}/data\n    update_from: '${yesterday}'\n    max_update_interval: 3d\n` +
      `  admin:\n    users: [grafana]\nclusters:\n  - id: slurm-0\n    manager: slurm\n    cli: {path: ${bin}}\n`,
  );
  return path;
}

/** Each user's view of the fixture's units, users and projects, and the admin's: path → body. */
async function views(base: string, jobs: Map<string, string[]>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const get = async (path: string, user: string) => {
    const r = await fetch(`${base}/api/v1${path}`, { headers: { "X-Grafana-User": user } });
    out.set(`${user} ${path}`, `${r.status} ${await r.text()}`);
  };
  for (const [user, ids] of jobs) {
    await get(`/units?cluster_id=slurm-0&${ids.map((i) => `uuid=${i}`).join("&")}`, user);
    await get("/users", user);
    await get("/projects", user);
  }
  await get("/units/admin?cluster_id=slurm-0&from=1600000000&to=1700000000", "grafana");
  await get("/users/admin?cluster_id=slurm-0", "grafana");
  return out;
}

async function until(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("api adopts a CEEMS 0.10 database: same JSON for its units, then updates it", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-adopt-" });
  try {
    // 1. ceems's own database from the fixture sacct, and what it serves.
    const a = join(dir, "a");
    const jobs = new Map<string, string[]>();
    for (const l of Deno.readTextFileSync(join(repoRoot, "tests/api_server/fixtures/tools/sacct.txt")).split("\n")) {
      const f = l.split("|");
      if (f.length > 6) jobs.set(f[6], [...(jobs.get(f[6]) ?? []), f[0]]);
    }
    const first = await startCeems(["api", `--config.file=${config(a, fakeSlurmTools(a))}`]);
    let reference: Map<string, string>;
    try {
      await until("the fixture's units", async () => {
        const r = await fetch(`${first.base}/api/v1/stats/global/admin`, { headers: { "X-Grafana-User": "grafana" } });
        return r.ok && (await r.json()).data?.length > 0;
      });
      reference = await views(first.base, jobs);
    } finally {
      await first.stop();
    }
    assert([...reference.values()].filter((b) => b.startsWith("200 ") && b.includes('"uuid"')).length >= jobs.size);

    // 2. A CEEMS 0.10 database: CEEMS's schema (sqlite3 CLI), the same rows.
    const b = join(dir, "b");
    Deno.mkdirSync(join(b, "data"), { recursive: true });
    const db = join(b, "data", "ceems.db");
    sqlite(db, Deno.readTextFileSync(SCHEMA));
    const copies = TABLES.map((t) => {
      const cols = sqlite(db, `SELECT group_concat(name, ',') FROM pragma_table_info('${t}') WHERE name != 'id'`);
      return `INSERT INTO main.${t} (${cols}) SELECT ${cols} FROM ours.${t};`;
    });
    sqlite(db, `ATTACH '${join(a, "data", "ceems.db")}' AS ours; ${copies.join(" ")}`);
    assertEquals(sqlite(db, "SELECT version || ' ' || dirty FROM schema_migrations"), "9 0");

    // 3. ceems on it: the same answers while its first window waits, then new units.
    const gate = gatedSlurmTools(b, sacctRecords(3, { firstId: 91_000_000, users: 2 }));
    const second = await startCeems(["api", `--config.file=${config(b, gate.bin)}`]);
    try {
      const adopted = await views(second.base, jobs);
      assertEquals([...adopted.keys()], [...reference.keys()]);
      for (const [k, v] of reference) assertEquals(adopted.get(k), v, k);
      gate.go();
      await until("a new window's units", async () => {
        const r = await fetch(`${second.base}/api/v1/units?uuid=91000000`, { headers: { "X-Grafana-User": "usr0" } });
        return r.ok && (await r.json()).data?.length === 1;
      });
    } finally {
      const { code, stderr } = await second.stop();
      assertEquals(code, 0, stderr);
    }
    assertEquals(sqlite(db, "SELECT version || ' ' || dirty FROM schema_migrations"), `${MIGRATIONS.length} 0`);
    assertEquals(sqlite(db, "SELECT cluster_id FROM update_state"), "slurm-0");
    assertEquals(sqlite(db, "SELECT count(*) FROM units WHERE uuid LIKE '9100000%'"), "3");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("api refuses, in one line, a CEEMS database of another schema version or left dirty", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-adopt-" });
  try {
    Deno.mkdirSync(join(dir, "data"));
    const db = join(dir, "data", "ceems.db");
    sqlite(db, Deno.readTextFileSync(SCHEMA));
    const cfg = join(dir, "c.yml");
    Deno.writeTextFileSync(cfg, `ceems_api_server:\n  data: {path: ${dir}/data}\n`);
    for (
      const [row, re] of [["5, 0", /schema version 5: ceems adopts version 9 \(CEEMS 0\.9 and 0\.10\)/], [
        "9, 1",
        /left dirty at schema version 9: restore a backup/,
      ]] as const
    ) {
      sqlite(db, `DELETE FROM schema_migrations; INSERT INTO schema_migrations VALUES (${row})`);
      const r = await runCeems(["api", `--config.file=${cfg}`, "--web.listen-address=127.0.0.1:0"]);
      assert(r.code !== 0);
      assertMatch(r.stderr, re);
      // One line says why (log lines of the start-up before it aside).
      const errors = r.stderr.trim().split("\n").filter((l) => !l.startsWith("time="));
      assertEquals(errors.length, 1, r.stderr);
      assertMatch(errors[0], /^ceems api: error: cannot open database under .*: a CEEMS database /);
      assertEquals(sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name = 'update_state'"), "0");
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
