// A large CEEMS API database generated in bulk (units spread over months, users in projects), for the
// API server's concurrency tests and its benchmark; written through the server's own schema.

import { join } from "node:path";
import { UNIT_FIELDS } from "../../api_server/models.ts";
import { SqliteStorage } from "../../api_server/storage/sqlite.ts";

/** Size and shape of a generated database. */
export interface GenerateOptions {
  units: number;
  users?: number;
  projects?: number;
  spanDays?: number;
  /** End of the newest unit (epoch ms). */
  now?: number;
}

/** What was generated: its cost and a user with units in the last 30 days. */
export interface Generated {
  genMs: number;
  dbPath: string;
  user: string;
  /** Up to 50 uuids of `user` that ended in the last 30 days. */
  uuids: string[];
}

const DAY = 86_400_000;
const UNIT_COLS = [...UNIT_FIELDS, "ignore", "num_updates", "last_updated_at"];

/**
 * Creates `<dataDir>/ceems.db` with `units` completed one-hour units (user i % users, project i % projects,
 * clusters slurm-0 and slurm-1), ending evenly over `spanDays` before `now`, plus users, projects and usage.
 */
export function generateApiDb(dataDir: string, o: GenerateOptions): Generated {
  const users = o.users ?? 1000, projects = o.projects ?? 200, span = o.spanDays ?? 180;
  const now = o.now ?? Date.now();
  const st = new SqliteStorage(dataDir);
  const db = st.db;
  const t0 = performance.now();
  // Bulk load without the units indexes, then build them once (as a restore would).
  const idx = db.prepare(
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'units' AND sql IS NOT NULL",
  ).all() as { name: string; sql: string }[];
  for (const i of idx) db.exec(`DROP INDEX ${i.name}`);
  const ins = db.prepare(`INSERT INTO units (${UNIT_COLS.join(",")}) VALUES (${UNIT_COLS.map(() => "?").join(",")})`);
  db.exec("BEGIN");
  const wall = 3600;
  for (let i = 0; i < o.units; i++) {
    const user = `usr${i % users}`;
    const end = now - Math.floor((i / o.units) * span * DAY) - 1000;
    const start = end - wall * 1000;
    const iso = new Date(end).toISOString().slice(0, 19);
    ins.run(
      `slurm-${i % 2}`,
      "slurm",
      String(10_000_000 + i),
      `job${i}`,
      `acc${i % projects}`,
      "grp",
      user,
      iso,
      iso,
      iso,
      start - 60_000,
      start,
      end,
      "01:00:00",
      "COMPLETED",
      '{"billing":4,"cpus":4,"gpus":0,"mem":4294967296,"nodes":1}',
      // Metric columns in order: time, CPU usage, CPU memory, CPU energy, CPU emissions, then GPU, IO, network.
      `{"alloc_cpumemtime":${4096 * wall},"alloc_cputime":${
        4 * wall
      },"alloc_gpumemtime":0,"alloc_gputime":0,"walltime":${wall}}`,
      `{"global":${((i % 100) + 0.5).toFixed(8)}}`,
      `{"global":${((i % 50) + 0.25).toFixed(8)}}`,
      `{"total":${((i % 7) * 0.01 + 0.001).toFixed(8)}}`,
      `{"emaps_total":${i % 13},"rte_total":${i % 11}}`,
      ...Array(8).fill("{}"),
      `{"exit_code":"0:0","gid":1000,"nodelist":"n${i % 64}","partition":"cpu","qos":"normal","uid":${
        1000 + (i % users)
      },"workdir":"/home/${user}"}`,
      0,
      1,
      iso,
    );
  }
  // Memberships as the units have them: user u works in the projects u + k*users (mod projects).
  const members = new Map<string, Set<string>>();
  for (let i = 0; i < Math.min(o.units, users * projects); i++) {
    const key = `${i % 2}\0acc${i % projects}`;
    if (!members.has(key)) members.set(key, new Set());
    members.get(key)!.add(`usr${i % users}`);
  }
  const byUser = new Map<string, Set<string>>();
  const insProject = db.prepare(
    "INSERT INTO projects (cluster_id, resource_manager, name, users, last_updated_at) VALUES (?, 'slurm', ?, ?, ?)",
  );
  const today = new Date(now).toISOString().slice(0, 19);
  for (const [key, us] of members) {
    const [c, p] = key.split("\0");
    insProject.run(`slurm-${c}`, p, JSON.stringify([...us].sort()), today);
    for (const u of us) {
      const k = `slurm-${c}\0${u}`;
      if (!byUser.has(k)) byUser.set(k, new Set());
      byUser.get(k)!.add(p);
    }
  }
  const insUser = db.prepare(
    "INSERT INTO users (cluster_id, resource_manager, name, projects, last_updated_at) VALUES (?, 'slurm', ?, ?, ?)",
  );
  for (const [k, ps] of byUser) {
    const [c, u] = k.split("\0");
    insUser.run(c, u, JSON.stringify([...ps].sort()), today);
  }
  db.prepare("INSERT INTO update_state (cluster_id, last_update_ms) VALUES ('', ?)").run(now);
  db.exec("COMMIT");
  for (const i of idx) db.exec(i.sql);
  db.exec("ANALYZE");
  const genMs = performance.now() - t0;
  const user = "usr42";
  const uuids = (db.prepare("SELECT uuid FROM units WHERE username = ? AND ended_at_ts > ? LIMIT 50").all(
    user,
    now - 30 * DAY,
  ) as { uuid: string }[]).map((r) => r.uuid);
  st.close();
  return { genMs, dbPath: join(dataDir, "ceems.db"), user, uuids };
}
