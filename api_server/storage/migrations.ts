// Ordered schema migrations of the SQLite store (CEEMS's final schema: units, usage, daily_usage, users,
// projects, admin_users, with its index names), applied once each and recorded in schema_migrations.

const metricCols = [
  "total_time_seconds",
  "avg_cpu_usage",
  "avg_cpu_mem_usage",
  "total_cpu_energy_usage_kwh",
  "total_cpu_emissions_gms",
  "avg_gpu_usage",
  "avg_gpu_mem_usage",
  "total_gpu_energy_usage_kwh",
  "total_gpu_emissions_gms",
  "total_io_write_stats",
  "total_io_read_stats",
  "total_ingress_stats",
  "total_egress_stats",
].map((c) => `${c} TEXT DEFAULT '{}'`).join(",\n  ");

const usageTable = (name: string) =>
  `CREATE TABLE IF NOT EXISTS ${name} (
  id INTEGER PRIMARY KEY,
  resource_manager TEXT NOT NULL,
  cluster_id TEXT NOT NULL,
  num_units INTEGER DEFAULT 0,
  project TEXT NOT NULL,
  groupname TEXT NOT NULL,
  username TEXT NOT NULL,
  ${metricCols},
  num_updates INTEGER DEFAULT 0,
  last_updated_at TEXT
)`;

const memberTable = (name: string, list: string) =>
  `CREATE TABLE IF NOT EXISTS ${name} (
  id INTEGER PRIMARY KEY,
  uid TEXT DEFAULT '',
  cluster_id TEXT NOT NULL,
  resource_manager TEXT NOT NULL,
  name TEXT NOT NULL,
  ${list} TEXT DEFAULT '[]',
  tags TEXT DEFAULT '[]',
  last_updated_at TEXT
)`;

/** Migrations in order; index i has version i+1. */
export const MIGRATIONS: string[][] = [
  [`CREATE TABLE IF NOT EXISTS units (
  id INTEGER PRIMARY KEY,
  resource_manager TEXT NOT NULL,
  cluster_id TEXT NOT NULL,
  uuid TEXT NOT NULL,
  name TEXT,
  project TEXT,
  groupname TEXT,
  username TEXT,
  created_at TEXT,
  started_at TEXT,
  ended_at TEXT,
  created_at_ts INTEGER,
  started_at_ts INTEGER,
  ended_at_ts INTEGER,
  elapsed TEXT,
  state TEXT,
  allocation TEXT DEFAULT '{}',
  tags TEXT DEFAULT '{}',
  ${metricCols},
  ignore INTEGER DEFAULT 0,
  num_updates INTEGER DEFAULT 0,
  last_updated_at TEXT
)`],
  [usageTable("usage")],
  [memberTable("users", "projects"), memberTable("projects", "users")],
  [memberTable("admin_users", "projects")],
  [usageTable("daily_usage")],
  [
    "CREATE INDEX IF NOT EXISTS idx_cluster_id_usr_uuid ON units (cluster_id, username, uuid)",
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_uuid_start ON units (cluster_id, uuid, started_at)",
    "CREATE INDEX IF NOT EXISTS idx_cluster_id_project_user_ended ON units (cluster_id, project, username, ended_at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_project_usr ON usage (cluster_id, username, project)",
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_daily_cluster_id_project_usr_day ON daily_usage (cluster_id, username, project, last_updated_at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_users_cluster_id_name ON users (cluster_id, name)",
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_projects_cluster_id_name ON projects (cluster_id, name)",
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_admin_users_cluster_id_name ON admin_users (cluster_id, name)",
  ],
  [
    // Per-user time-window lookups across clusters (the /units hot path).
    "CREATE INDEX IF NOT EXISTS idx_usr_ended_ts ON units (username, ended_at_ts)",
    "CREATE INDEX IF NOT EXISTS idx_uuid ON units (uuid)",
    // Per cluster, the end of the last applied update window, written in the same transaction as its rows.
    "CREATE TABLE IF NOT EXISTS update_state (cluster_id TEXT PRIMARY KEY, last_update_ms INTEGER NOT NULL)",
  ],
  [
    // Admin windows (/units/admin, /stats/current/admin) read the units that ended in the window, not the table.
    "CREATE INDEX IF NOT EXISTS idx_units_ended_ts ON units (ended_at_ts)",
    // /usage/current reads the units updated in the window, not the table.
    "CREATE INDEX IF NOT EXISTS idx_units_last_updated_at ON units (last_updated_at)",
  ],
];
