// SQLite storage: ordered migrations applied once, idempotent window upserts (totals add, averages weight by
// time, num_units counted once), online backups that open and hold the data, retention purge, ownership.

import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { SqliteStorage } from "../../../api_server/storage/sqlite.ts";
import { MIGRATIONS } from "../../../api_server/storage/migrations.ts";
import type { Unit } from "../../../api_server/models.ts";
import { encodeRow } from "../../../api_server/http/json.ts";
import type { UpdateBatch } from "../../../api_server/storage/storage.ts";

const H = 3_600_000;

function unit(uuid: string, user: string, project: string, endTs: number, wall: number, cpu: number): Unit {
  return {
    cluster_id: "c0",
    resource_manager: "slurm",
    uuid,
    name: "j",
    project,
    groupname: "g",
    username: user,
    created_at: "x",
    started_at: "x",
    ended_at: endTs ? "x" : "Unknown",
    created_at_ts: 1,
    started_at_ts: 1,
    ended_at_ts: endTs,
    elapsed: "00:00:01",
    state: endTs ? "COMPLETED" : "RUNNING",
    allocation: { cpus: 2 },
    tags: {},
    total_time_seconds: { walltime: wall, alloc_cputime: 2 * wall },
    avg_cpu_usage: { global: cpu },
    total_cpu_energy_usage_kwh: { total: wall / 1000 },
  };
}

function batch(end: number, units: Unit[], extra: Partial<UpdateBatch> = {}): UpdateBatch {
  return {
    clusterId: "c0",
    windowStartMs: end - H,
    windowEndMs: end,
    units,
    users: [{ uid: "", cluster_id: "c0", resource_manager: "slurm", name: "alice", projects: ["p1"], tags: [] }],
    projects: [{ uid: "", cluster_id: "c0", resource_manager: "slurm", name: "p1", users: ["alice"], tags: [] }],
    adminUsers: [{ name: "root", source: "ceems" }],
    retentionMs: 0,
    ...extra,
  };
}

Deno.test("storage: migrations, window merges, usage counted once, backups, retention", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-store-" });
  try {
    const s = new SqliteStorage(dir);
    assertEquals(s.migrate(), MIGRATIONS.length, "re-running migrations is a no-op");
    assertEquals((s.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode, "wal");
    const t0 = Date.parse("2026-01-10T00:00:00Z");
    // Window 1: running job 1 h at 40 % CPU; window 2: it ran 3 h more at 80 % and ended.
    await s.applyUpdate(batch(t0, [unit("1", "alice", "p1", 0, 3600, 40)]));
    await s.applyUpdate(batch(t0 + H, [unit("1", "alice", "p1", t0 + H, 3 * 3600, 80)]));
    assertEquals(s.lastUpdateMs("c0"), t0 + H);
    const [raw] = s.units({
      users: ["alice"],
      clusterIds: [],
      uuids: ["1"],
      projects: [],
      fromMs: 0,
      toMs: 0,
      running: false,
      fields: [],
    });
    const u = JSON.parse(encodeRow(raw));
    assertEquals(u.total_time_seconds, { walltime: 4 * 3600, alloc_cputime: 8 * 3600 });
    assertEquals(u.avg_cpu_usage, { global: 70 }, "(40*1 + 80*3) / 4");
    assertEquals(u.state, "COMPLETED");
    assertEquals((s.db.prepare("SELECT COUNT(*) AS n FROM units").get() as { n: number }).n, 1);
    const usage = s.usageGlobal({ users: ["alice"], clusterIds: [], projects: [] }, []);
    assertEquals(usage.length, 1);
    assertEquals(usage[0].num_units, 1, "the unit is counted once across windows");
    assertEquals(usage[0].avg_cpu_usage, { global: 70 });
    assert(s.isAdmin("root") && !s.isAdmin("alice"));
    assert(s.verifyOwnership("alice", ["1"], []));
    assert(!s.verifyOwnership("bob", ["1"], []));

    // Backup: a consistent copy that opens on its own.
    const backupDir = `${dir}/backup`;
    const file = await s.backup(backupDir);
    assert(/ceems-\d{14}\.db$/.test(file), file);
    const copy = new DatabaseSync(file, { readOnly: true });
    assertEquals((copy.prepare("SELECT COUNT(*) AS n FROM units").get() as { n: number }).n, 1);
    assertEquals(
      (copy.prepare("SELECT version FROM schema_migrations").get() as { version: number }).version,
      MIGRATIONS.length,
    );
    copy.close();

    // Retention: units that ended more than retention ago are purged in the next window.
    await s.applyUpdate(batch(t0 + 40 * 24 * H, [unit("2", "alice", "p1", 0, 10, 1)], { retentionMs: 30 * 24 * H }));
    const left = (s.db.prepare("SELECT uuid FROM units").all() as { uuid: string }[]).map((r) => r.uuid);
    assertEquals(left, ["2"]);
    s.close();

    // Reopening keeps data and schema.
    const s2 = new SqliteStorage(dir);
    assertEquals(s2.lastUpdateMs("c0"), t0 + 40 * 24 * H);
    s2.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("storage: a failing window rolls back completely", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-store-rb-" });
  try {
    const s = new SqliteStorage(dir);
    const bad = unit("9", "alice", "p1", 0, 1, 1);
    (bad as unknown as Record<string, unknown>).uuid = null; // NOT NULL violation mid-batch
    let threw = false;
    try {
      await s.applyUpdate(batch(Date.now(), [unit("8", "alice", "p1", 0, 1, 1), bad]));
    } catch {
      threw = true;
    }
    assert(threw);
    assertEquals((s.db.prepare("SELECT COUNT(*) AS n FROM units").get() as { n: number }).n, 0);
    assertEquals(s.lastUpdateMs("c0"), undefined);
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("storage: reads see the last committed window while a big window is being written", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-store-ro-" });
  try {
    const s = new SqliteStorage(dir);
    const t0 = Date.parse("2026-01-10T00:00:00Z");
    await s.applyUpdate(batch(t0, [unit("1", "alice", "p1", t0 - 1000, 10, 1)]));
    const many = Array.from({ length: 10_000 }, (_, i) => unit(String(100 + i), "alice", "p1", t0 + 1000, 10, 1));
    let done = false;
    const writing = s.applyUpdate(batch(t0 + H, many)).then(() => (done = true));
    // Let the writer start its transaction and write its first chunk.
    await new Promise((r) => setTimeout(r, 0));
    const during = s.stats([]);
    assert(!done, "the read ran while the window was still being written");
    assertEquals(during[0].num_units, 1, "only the committed window is visible");
    // A second writer waits for the first (one transaction at a time).
    const second = s.applyUpdate(batch(t0 + 2 * H, [unit("2", "alice", "p1", t0 + 2000, 10, 1)]));
    await Promise.all([writing, second]);
    assertEquals(s.stats([])[0].num_units, 10_002);
    assertEquals(s.lastUpdateMs("c0"), t0 + 2 * H);
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("storage: new units go in multi-row inserts; a uuid repeated in a window merges into one row", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-store-batch-" });
  try {
    const s = new SqliteStorage(dir);
    const t0 = Date.parse("2026-01-10T00:00:00Z");
    // 70 units: more than two insert batches; uuid "5" comes again as the 41st, after its batch was written.
    const units = Array.from({ length: 70 }, (_, i) => unit(String(i), "alice", "p1", t0 - 1000, 10, 1));
    units[40] = unit("5", "alice", "p1", t0 - 1000, 30, 3);
    await s.applyUpdate(batch(t0, units));
    const n = (s.db.prepare("SELECT COUNT(*) AS n FROM units").get() as { n: number }).n;
    assertEquals(n, 69);
    const five = s.db.prepare("SELECT total_time_seconds, avg_cpu_usage, num_updates FROM units WHERE uuid = '5'")
      .get() as Record<string, string | number>;
    assertEquals(JSON.parse(five.total_time_seconds as string), { alloc_cputime: 80, walltime: 40 });
    assertEquals(JSON.parse(five.avg_cpu_usage as string).global, 2.5, "averages weighted by alloc_cputime");
    assertEquals(five.num_updates, 2);
    const usage = s.usageGlobal({ users: ["alice"], clusterIds: [], projects: [] }, []);
    assertEquals(usage.length, 1);
    assertEquals(usage[0].num_units, 69, "the repeated uuid is counted once");
    assertEquals((usage[0].total_time_seconds as Record<string, number>).walltime, 69 * 10 + 20 + 10);
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("storage: current usage groups by username and project; groupby adds columns", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-store-groupby-" });
  try {
    const s = new SqliteStorage(dir);
    const t0 = Date.parse("2026-01-10T00:00:00Z");
    const inCluster = (c: string, u: Unit) => ({ ...u, cluster_id: c });
    await s.applyUpdate(batch(t0, [unit("1", "alice", "p1", t0 - 1000, 10, 1), unit("2", "alice", "p1", 0, 20, 4)]));
    const c1 = batch(t0, [inCluster("c1", unit("1", "alice", "p1", t0 - 1000, 30, 2))], { clusterId: "c1" });
    c1.users = c1.users.map((u) => ({ ...u, cluster_id: "c1" }));
    await s.applyUpdate(c1);
    const q = { users: ["alice"], clusterIds: [], projects: [], fromMs: t0 - H, toMs: t0 + H, terminated: false };
    const merged = s.usageCurrent(q, []);
    assertEquals(merged.length, 1, "clusters merge without groupby, as CEEMS's GROUP BY username, project");
    assertEquals(merged[0].num_units, 3);
    assertEquals((merged[0].total_time_seconds as Record<string, number>).walltime, 60);
    const split = s.usageCurrent({ ...q, groupBy: ["cluster_id"] }, []);
    assertEquals(split.map((r) => [r.cluster_id, r.num_units]), [["c0", 2], ["c1", 1]]);
    assertEquals((split[0].avg_cpu_usage as Record<string, number>).global, 3, "weighted by alloc_cputime");
    const done = s.usageCurrent({ ...q, groupBy: ["cluster_id"], terminated: true }, []);
    assertEquals(done.map((r) => [r.cluster_id, r.num_units]), [["c0", 1], ["c1", 1]]);
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("storage: a full disk is reported as such, not as a failed rollback; nothing of the window stays", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-store-full-" });
  try {
    const s = new SqliteStorage(dir);
    const t0 = Date.parse("2026-01-10T00:00:00Z");
    await s.applyUpdate(batch(t0, [unit("1", "alice", "p1", t0 - 1000, 10, 1)]));
    // The database may not grow by more than a few pages: SQLite answers SQLITE_FULL, as on a full disk.
    const pages = (s.db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count;
    s.db.exec(`PRAGMA max_page_count = ${pages + 2}`);
    const many = Array.from({ length: 5_000 }, (_, i) => unit(String(100 + i), "alice", "p1", t0 + 1000, 10, 1));
    const err = await s.applyUpdate(batch(t0 + H, many)).then(() => undefined, (e) => e as Error);
    assert(err && /database or disk is full/.test(err.message), String(err));
    assert(!/rollback/.test(err.message), err.message);
    assertEquals(s.lastUpdateMs("c0"), t0, "the failed window left no trace");
    assertEquals((s.db.prepare("SELECT COUNT(*) AS n FROM units").get() as { n: number }).n, 1);
    // Space again: the same window applies.
    s.db.exec("PRAGMA max_page_count = 1073741823");
    await s.applyUpdate(batch(t0 + H, many));
    assertEquals(s.lastUpdateMs("c0"), t0 + H);
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("storage: backups get the live database's mode; old ones are pruned by count and by age", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-store-bk-" });
  try {
    const s = new SqliteStorage(join(dir, "data"));
    const backups = join(dir, "backups");
    Deno.mkdirSync(backups, { mode: 0o755 });
    // Older backups (CEEMS's and ours), one of them two days old, and a file that is no backup.
    const old = ["ceems-202601010000.db", "ceems-20260102000000.db", "ceems-20260103000000.db", "notes.txt"];
    for (const f of old) Deno.writeTextFileSync(join(backups, f), "x");
    Deno.utimeSync(join(backups, "ceems-20260103000000.db"), new Date(), new Date(Date.now() - 2 * 86_400_000));
    const file = await s.backup(backups, { keep: 3, maxAgeMs: 0 });
    assertEquals(Deno.statSync(file).mode! & 0o777, 0o640, "as the live database, not the umask's 0644");
    assertEquals(Deno.statSync(s.path).mode! & 0o777, 0o640);
    const left = () => [...Deno.readDirSync(backups)].map((e) => e.name).sort();
    assertEquals(left(), ["ceems-20260102000000.db", "ceems-20260103000000.db", file.split("/").pop(), "notes.txt"]);
    await new Promise((r) => setTimeout(r, 1100)); // a new name (seconds)
    const second = await s.backup(backups, { keep: 0, maxAgeMs: 86_400_000 });
    assertEquals(left(), ["ceems-20260102000000.db", file.split("/").pop(), second.split("/").pop(), "notes.txt"]);
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
