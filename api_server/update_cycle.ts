// The update cycle: each cluster catches up from its own last applied window to now (in max_update_interval
// chunks): fetch units and memberships, run the cluster's updaters, apply the window atomically to storage.

import type { Logger } from "../common/log.ts";
import type { ApiConfig } from "./config.ts";
import type { ResourceManager } from "./managers/manager.ts";
import type { Storage } from "./storage/storage.ts";
import type { TsdbUpdater } from "./updater/tsdb.ts";
import { clientHeaders } from "./http_client.ts";
import { SERVICE_ACCOUNT } from "../common/ceems_db.ts";

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

  /** Runs one catch-up of every cluster; concurrent calls share the run in progress. Rejects if any failed. */
  run(): Promise<void> {
    this.#running ??= this.#catchUpAll().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Resolves once no update is in progress. */
  async idle(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  #grafanaAdmins: string[] = [];

  get #adminUsers() {
    const ceems = [...new Set([...this.cfg.adminUsers, SERVICE_ACCOUNT])];
    return [
      ...ceems.map((name) => ({ name, source: "ceems" })),
      ...this.#grafanaAdmins.filter((n) => !ceems.includes(n)).map((name) => ({ name, source: "grafana" })),
    ];
  }

  /** Members (login) of the configured Grafana teams; on failure the previous list is kept. */
  async #refreshGrafanaAdmins(): Promise<void> {
    const g = this.cfg.grafana;
    if (!g || !g.teamIds.length) return;
    try {
      const headers = clientHeaders(g.web, "ceems_api_server.admin.grafana");
      const names = new Set<string>();
      for (const id of g.teamIds) {
        const r = await fetch(`${g.url}/api/teams/${encodeURIComponent(id)}/members`, {
          headers,
          signal: AbortSignal.timeout(30_000),
        });
        if (!r.ok) {
          await r.body?.cancel();
          throw new Error(`team ${id}: HTTP ${r.status}`);
        }
        for (const m of (await r.json()) as { login?: string }[]) if (m.login) names.add(m.login);
      }
      this.#grafanaAdmins = [...names].sort();
    } catch (e) {
      this.logger.warn("cannot fetch Grafana team members, keeping the previous admins", { err: e });
    }
  }

  async #catchUpAll(): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    await this.#refreshGrafanaAdmins();
    if (!this.managers.length) {
      // No cluster: still record the admin users.
      const start = (await this.storage.lastUpdateMs("")) ?? this.cfg.data.updateFromMs;
      await this.storage.applyUpdate({
        clusterId: "",
        windowStartMs: start,
        windowEndMs: now,
        units: [],
        users: [],
        projects: [],
        adminUsers: this.#adminUsers,
        retentionMs: 0,
      });
      return;
    }
    // Clusters catch up independently: one that fails keeps its last window and retries next time,
    // so its units are fetched later instead of being lost.
    const results = await Promise.allSettled(this.managers.map((m) => this.#catchUp(m, now)));
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    if (failed.length) throw new AggregateError(failed.map((f) => f.reason), `${failed.length} cluster(s) failed`);
  }

  async #catchUp(m: ResourceManager, now: number): Promise<void> {
    let start = (await this.storage.lastUpdateMs(m.clusterId)) ?? this.cfg.data.updateFromMs;
    while (start < now) {
      const end = Math.min(start + this.cfg.data.maxUpdateIntervalMs, now);
      try {
        await this.updateWindow(m, start, end);
      } catch (e) {
        this.logger.error("update failed, window will be retried", {
          cluster_id: m.clusterId,
          from: new Date(start).toISOString(),
          to: new Date(end).toISOString(),
          err: e,
        });
        throw e;
      }
      start = end;
      if (start < now && this.opts.chunkPauseMs) await new Promise((r) => setTimeout(r, this.opts.chunkPauseMs));
    }
  }

  /** Fetches, enriches and stores one window [startMs, endMs] of one cluster. */
  async updateWindow(m: ResourceManager, startMs: number, endMs: number): Promise<void> {
    const [units, mem] = await Promise.all([m.fetchUnits(startMs, endMs), m.fetchMembership(endMs)]);
    const clusterCfg = this.cfg.clusters.find((c) => c.id === m.clusterId);
    for (const id of clusterCfg?.updaters ?? []) {
      const up = this.updaters.get(id);
      if (up) await up.update(units, startMs, endMs);
    }
    await this.storage.applyUpdate({
      clusterId: m.clusterId,
      windowStartMs: startMs,
      windowEndMs: endMs,
      units,
      users: mem.users,
      projects: mem.projects,
      adminUsers: this.#adminUsers,
      retentionMs: this.opts.skipDeleteOldUnits ? 0 : this.cfg.data.retentionPeriodMs,
    });
    this.logger.info("units updated", {
      cluster_id: m.clusterId,
      from: new Date(startMs).toISOString(),
      to: new Date(endMs).toISOString(),
      units: units.length,
    });
  }
}
