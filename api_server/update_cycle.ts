// The update cycle: each cluster catches up from its own last applied window to now (in max_update_interval
// chunks): fetch units and memberships, run the cluster's updaters, apply the window atomically to storage.
// A cluster whose window fails keeps it and is retried with backoff; stopping takes effect between windows.

import type { Logger } from "../common/log.ts";
import type { ApiConfig } from "./config.ts";
import { type Membership, type ResourceManager, SourceError } from "./managers/manager.ts";
import { judgeParse } from "./managers/sacct_parse.ts";
import type { Storage } from "./storage/storage.ts";
import type { TsdbUpdater } from "./updater/tsdb.ts";
import { clientHeaders } from "./http_client.ts";
import { SERVICE_ACCOUNT } from "../common/ceems_db.ts";
import type { HealthState } from "./health.ts";

/** Options of {@link UpdateCycle}. */
export interface UpdateCycleOptions {
  skipDeleteOldUnits: boolean;
  /** Pause between two windows of a catch-up (ms). */
  chunkPauseMs?: number;
  now?: () => number;
  /** First retry of a failed cluster after this long (ms); doubles with each failure up to maxRetryMs. */
  retryBaseMs?: number;
  maxRetryMs?: number;
  /** Where update outcomes are reported for /health. */
  health?: HealthState;
}

/** Running units checked against the source when a window comes back empty. */
const RUNNING_PROBE = 50;

/** A cluster's failures in a row, when it may be tried again, and the error last logged. */
interface Backoff {
  failures: number;
  retryAt: number;
  logged: string;
}

/** Stopped while catching up: the remaining windows wait for the next start. */
class Stopped extends Error {}

/** Drives managers and updaters into the storage. */
export class UpdateCycle {
  #running: Promise<void> | undefined;
  readonly #stop = new AbortController();
  readonly #backoff = new Map<string, Backoff>();
  #loop: Promise<void> | undefined;

  constructor(
    private cfg: ApiConfig,
    private storage: Storage,
    private managers: ResourceManager[],
    private updaters: Map<string, TsdbUpdater>,
    private logger: Logger,
    private opts: UpdateCycleOptions = { skipDeleteOldUnits: false },
  ) {}

  #now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * Runs one catch-up of every cluster not waiting for a retry (or of `only`); concurrent calls share the run
   * in progress. Rejects if any cluster failed.
   */
  run(only?: string[]): Promise<void> {
    this.#running ??= this.#catchUpAll(only).finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Resolves once no update is in progress. */
  async idle(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  /**
   * Runs now and then every `intervalMs`, and retries failed clusters when their backoff ends, until
   * {@link stop}.
   */
  start(intervalMs: number): void {
    const signal = this.#stop.signal;
    this.#loop = (async () => {
      let nextTick = Date.now();
      let only: string[] | undefined;
      while (!signal.aborted) {
        if (Date.now() >= nextTick) {
          nextTick = Date.now() + intervalMs;
          only = undefined;
        }
        await this.run(only).catch(() => {}); // logged per cluster
        const retries = [...this.#backoff.entries()].filter(([, b]) => b.failures > 0);
        const wake = Math.min(nextTick, ...retries.map(([, b]) => b.retryAt - this.#now() + Date.now()));
        await this.#sleep(wake - Date.now());
        // Woken before the tick: only the clusters whose retry is due.
        only = Date.now() < nextTick ? retries.filter(([, b]) => b.retryAt <= this.#now()).map(([c]) => c) : undefined;
      }
    })();
  }

  /** Waits `ms`, or less when stopped (before or during the wait). */
  #sleep(ms: number): Promise<void> {
    const signal = this.#stop.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      signal.addEventListener("abort", done);
    });
  }

  /** Stops between windows: the window being fetched is abandoned (not applied), no new window starts. */
  async stop(graceMs = 4000): Promise<void> {
    this.#stop.abort();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([this.#loop, this.idle()]),
      new Promise((r) => (timer = setTimeout(r, graceMs))),
    ]);
    clearTimeout(timer);
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
          signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(30_000)]),
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

  async #catchUpAll(only?: string[]): Promise<void> {
    const now = this.#now();
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
    // Clusters catch up independently: one that fails keeps its last window and retries after its backoff,
    // so its units are fetched later instead of being lost.
    const due = this.managers.filter((m) =>
      (only ? only.includes(m.clusterId) : true) && (this.#backoff.get(m.clusterId)?.retryAt ?? 0) <= now
    );
    const results = await Promise.allSettled(due.map((m) => this.#catchUp(m, now)));
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    if (failed.length) throw new AggregateError(failed.map((f) => f.reason), `${failed.length} cluster(s) failed`);
  }

  async #catchUp(m: ResourceManager, now: number): Promise<void> {
    let start = (await this.storage.lastUpdateMs(m.clusterId)) ?? this.cfg.data.updateFromMs;
    while (start < now) {
      if (this.#stop.signal.aborted) return;
      const end = Math.min(start + this.cfg.data.maxUpdateIntervalMs, now);
      try {
        await this.updateWindow(m, start, end);
        this.#succeeded(m.clusterId);
      } catch (e) {
        if (e instanceof Stopped || this.#stop.signal.aborted) return;
        this.#failed(m.clusterId, start, end, e);
        throw e;
      }
      start = end;
      if (start < now && this.opts.chunkPauseMs) await this.#sleep(this.opts.chunkPauseMs);
    }
  }

  #succeeded(clusterId: string): void {
    const b = this.#backoff.get(clusterId);
    if (b) {
      this.logger.info("update recovered", { cluster_id: clusterId, failures: b.failures });
      this.#backoff.delete(clusterId);
    }
    this.opts.health?.update(clusterId);
  }

  /** Backs the cluster off; logs the error once (again only when it changes), not at every retry. */
  #failed(clusterId: string, start: number, end: number, e: unknown): void {
    const b = this.#backoff.get(clusterId) ?? { failures: 0, retryAt: 0, logged: "" };
    b.failures++;
    const base = this.opts.retryBaseMs ?? 60_000;
    const delay = Math.min(base * 2 ** (b.failures - 1), this.opts.maxRetryMs ?? 3_600_000);
    b.retryAt = this.#now() + delay;
    const msg = e instanceof Error ? e.message : String(e);
    const attrs = {
      cluster_id: clusterId,
      from: new Date(start).toISOString(),
      to: new Date(end).toISOString(),
      failures: b.failures,
      retry_in: `${Math.round(delay / 1000)}s`,
      err: e,
    };
    if (msg !== b.logged) this.logger.error("update failed, window kept and retried with backoff", attrs);
    else this.logger.debug("update failed again", attrs);
    b.logged = msg;
    this.#backoff.set(clusterId, b);
    this.opts.health?.update(clusterId, e);
  }

  /**
   * Fetches, enriches and stores one window [startMs, endMs] of one cluster. Where the manager gives its raw
   * output and the store can stage it, parsing and updaters run on the store's thread, not the event loop.
   */
  async updateWindow(m: ResourceManager, startMs: number, endMs: number): Promise<void> {
    const signal = this.#stop.signal;
    const updaterIds = this.cfg.clusters.find((c) => c.id === m.clusterId)?.updaters ?? [];
    const meta = (mem: Membership) => ({
      clusterId: m.clusterId,
      windowStartMs: startMs,
      windowEndMs: endMs,
      users: mem.users,
      projects: mem.projects,
      adminUsers: this.#adminUsers,
      retentionMs: this.opts.skipDeleteOldUnits ? 0 : this.cfg.data.retentionPeriodMs,
    });
    let count: number;
    if (m.fetchRaw && this.storage.stage && this.storage.applyStaged && this.storage.discardStaged) {
      const [raw, mem] = await Promise.all([m.fetchRaw(startMs, endMs, signal), m.fetchMembership(endMs)]);
      const st = await this.storage.stage(raw, { clusterId: m.clusterId, startMs, endMs, updaters: updaterIds });
      let applied = false;
      try {
        const verdict = judgeParse(st.units, st.skipped, st.firstSkipped);
        if (verdict.error) throw new SourceError(verdict.error);
        if (verdict.warning) this.logger.warn(verdict.warning, { cluster_id: m.clusterId });
        if (!st.units) await this.#checkEmpty(m, signal);
        if (signal.aborted) throw new Stopped("stopping");
        await this.storage.applyStaged(st.id, meta(mem));
        applied = true;
      } finally {
        if (!applied) await this.storage.discardStaged(st.id).catch(() => {});
      }
      count = st.units;
    } else {
      const [units, mem] = await Promise.all([m.fetchUnits(startMs, endMs, signal), m.fetchMembership(endMs)]);
      if (!units.length) await this.#checkEmpty(m, signal);
      for (const id of updaterIds) await this.updaters.get(id)?.update(units, startMs, endMs, signal);
      // Stopped while fetching: the window is dropped whole and fetched again at the next start.
      if (signal.aborted) throw new Stopped("stopping");
      await this.storage.applyUpdate({ ...meta(mem), units });
      count = units.length;
    }
    this.logger.info("units updated", {
      cluster_id: m.clusterId,
      from: new Date(startMs).toISOString(),
      to: new Date(endMs).toISOString(),
      units: count,
    });
  }

  /**
   * Units running at the window's start are in it (still running or ended during it): an empty window is
   * genuine only if the source still lists them by id.
   */
  async #checkEmpty(m: ResourceManager, signal: AbortSignal): Promise<void> {
    if (!m.knowsUnits) return;
    const running = await this.storage.runningUnits(m.clusterId, RUNNING_PROBE);
    if (running.length && !(await m.knowsUnits(running, signal))) {
      throw new SourceError(
        `no units for a window in which ${running.length} unit(s) were running, and the source does not list them by id either`,
      );
    }
  }
}
