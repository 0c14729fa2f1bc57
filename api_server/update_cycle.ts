// The update cycle: from the last applied window to now (in max_update_interval chunks), fetch units and
// memberships from every cluster, run each cluster's updaters, and apply the window atomically to storage.

import type { Logger } from "../common/log.ts";
import type { ApiConfig } from "./config.ts";
import type { ResourceManager } from "./managers/manager.ts";
import type { Project, Unit, User } from "./models.ts";
import type { Storage } from "./storage/storage.ts";
import type { TsdbUpdater } from "./updater/tsdb.ts";

/** Name of the internal service account CEEMS always treats as admin. */
export const INTERNAL_ADMIN = "ceems-int-svc";

/** Drives managers and updaters into the storage. */
export class UpdateCycle {
  #running: Promise<void> | undefined;

  constructor(
    private cfg: ApiConfig,
    private storage: Storage,
    private managers: ResourceManager[],
    private updaters: Map<string, TsdbUpdater>,
    private logger: Logger,
    private opts: { skipDeleteOldUnits: boolean; chunkPauseMs?: number; now?: () => number } = {
      skipDeleteOldUnits: false,
    },
  ) {}

  /** Runs one catch-up (all pending windows); concurrent calls share the run in progress. */
  run(): Promise<void> {
    this.#running ??= this.#catchUp().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Resolves once no update is in progress. */
  async idle(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  async #catchUp(): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    let start = this.storage.lastUpdateMs() ?? this.cfg.data.updateFromMs;
    if (start >= now) return;
    while (start < now) {
      const end = Math.min(start + this.cfg.data.maxUpdateIntervalMs, now);
      await this.updateWindow(start, end);
      start = end;
      if (start < now && this.opts.chunkPauseMs) await new Promise((r) => setTimeout(r, this.opts.chunkPauseMs));
    }
  }

  /** Fetches, enriches and stores one window [startMs, endMs]. */
  async updateWindow(startMs: number, endMs: number): Promise<void> {
    const units: Unit[] = [];
    const users: User[] = [];
    const projects: Project[] = [];
    const results = await Promise.allSettled(this.managers.map(async (m) => {
      const [us, mem] = await Promise.all([m.fetchUnits(startMs, endMs), m.fetchMembership(endMs)]);
      const clusterCfg = this.cfg.clusters.find((c) => c.id === m.clusterId);
      for (const id of clusterCfg?.updaters ?? []) {
        const up = this.updaters.get(id);
        if (up) await up.update(us, startMs, endMs);
      }
      return { us, mem };
    }));
    let failures = 0;
    results.forEach((r, i) => {
      if (r.status === "fulfilled") {
        units.push(...r.value.us);
        users.push(...r.value.mem.users);
        projects.push(...r.value.mem.projects);
      } else {
        failures++;
        this.logger.error("fetching units failed", { cluster_id: this.managers[i].clusterId, err: r.reason });
      }
    });
    if (failures && failures === this.managers.length) {
      // Nothing fetched: do not advance, so the window is retried and no unit is lost.
      throw new Error(`all ${failures} clusters failed for window ending ${new Date(endMs).toISOString()}`);
    }
    const adminUsers = [
      ...new Set([...this.cfg.adminUsers, INTERNAL_ADMIN]),
    ].map((name) => ({ name, source: "ceems" }));
    this.storage.applyUpdate({
      windowStartMs: startMs,
      windowEndMs: endMs,
      units,
      users,
      projects,
      adminUsers,
      retentionMs: this.opts.skipDeleteOldUnits ? 0 : this.cfg.data.retentionPeriodMs,
    });
    this.logger.info("units updated", {
      from: new Date(startMs).toISOString(),
      to: new Date(endMs).toISOString(),
      units: units.length,
    });
  }
}
