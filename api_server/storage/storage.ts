// The storage interface of the API server: what the update cycle writes and the shapes of the HTTP API's
// queries, so a deployment that outgrows one SQLite file can plug in a server database behind the same calls.

import type { Project, Unit, User } from "../models.ts";
import type { RawUnits } from "../managers/manager.ts";

/** Everything one update window writes, applied atomically. */
export interface UpdateBatch {
  /** Cluster whose window this is ("" when no cluster is configured). */
  clusterId: string;
  windowStartMs: number;
  windowEndMs: number;
  units: Unit[];
  users: User[];
  projects: Project[];
  /** Admin user names with their source ("ceems" from config, "grafana" from teams). */
  adminUsers: { name: string; source: string }[];
  /** Retention purge to run in the same transaction (0 = skip). */
  retentionMs: number;
}

/** Filters of the /units endpoints. */
export interface UnitQuery {
  /** Owners to include; undefined = every user (admin). */
  users?: string[];
  clusterIds: string[];
  uuids: string[];
  projects: string[];
  fromMs: number;
  toMs: number;
  running: boolean;
  /** Columns to return (validated Unit fields). */
  fields: string[];
}

/** Filters of the /users, /projects and /usage endpoints. */
export interface ScopeQuery {
  /** Users whose scope is asked; undefined = all (admin without `user`). */
  users?: string[];
  clusterIds: string[];
  projects: string[];
}

/** Per-cluster unit statistics. */
export interface ClusterStats {
  cluster_id: string;
  resource_manager: string;
  num_units: number;
  num_inactive_units: number;
  num_active_units: number;
  num_projects: number;
  num_users: number;
}

/** Scope and window of a current-usage query. */
export type UsageCurrentQuery = ScopeQuery & {
  fromMs: number;
  toMs: number;
  terminated: boolean;
  experimental?: boolean;
  /** Columns grouped by besides username and project (CEEMS's `groupby`). */
  groupBy?: string[];
};

/** A value or a promise of it (in-process stores answer at once, worker-backed ones asynchronously). */
export type MaybePromise<T> = T | Promise<T>;

/** What the update cycle needs of the store; the HTTP API reads through its own read-only connections. */
export interface Storage {
  /** End of the cluster's last applied update window, or undefined when none was applied. */
  lastUpdateMs(clusterId: string): MaybePromise<number | undefined>;
  /** Up to `limit` uuids of the cluster's units stored as still running (the next window must list them). */
  runningUnits(clusterId: string, limit: number): MaybePromise<string[]>;
  /** Applies one window's units, users, projects and admins (and the retention purge) atomically. */
  applyUpdate(batch: UpdateBatch): Promise<void>;
  /** Writes a consistent copy of the DB into `dir`, prunes old copies; resolves to the new file's path. */
  backup(dir: string, retention?: { keep: number; maxAgeMs: number }): Promise<string>;
  /**
   * Parses a window as its source printed it and runs the cluster's updaters on it where the store writes (off
   * the event loop); the window then waits for {@link applyStaged} or {@link discardStaged}. Optional.
   */
  stage?(raw: RawUnits, w: StageWindow): Promise<Staged>;
  /** Applies a staged window (its units with the rest of `meta`) atomically. */
  applyStaged?(id: number, meta: Omit<UpdateBatch, "units">): Promise<void>;
  /** Drops a staged window. */
  discardStaged?(id: number): Promise<void>;
}

/** The window a raw source output belongs to, and the updaters to run on its units. */
export interface StageWindow {
  clusterId: string;
  startMs: number;
  endMs: number;
  updaters: string[];
}

/** A staged window: how many units parsed, and the records that did not (count and first). */
export interface Staged {
  id: number;
  units: number;
  skipped: number;
  firstSkipped?: { line: string; reason: string };
}
