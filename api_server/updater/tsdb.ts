// TSDB updater: fills each unit's aggregates (average CPU/GPU usage and memory, energy in kWh, emissions
// in grams per provider, IO and network totals) from PromQL templates run against Prometheus in batches.

import YAML from "yaml";
import { parseDuration } from "../../common/flags.ts";
import type { Logger } from "../../common/log.ts";
import type { UpdaterConfig } from "../config.ts";
import type { MetricMap, Unit } from "../models.ts";
import { clientHeaders } from "../http_client.ts";

/** Prometheus settings that size queries. */
export interface TsdbSettings {
  scrapeIntervalMs: number;
  evaluationIntervalMs: number;
  maxSamples: number;
  timeoutMs: number;
}

/** Go-style compact duration for PromQL ("15s", "1m", "3600s" all parse; we emit whole seconds). */
function promDuration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  return `${s}s`;
}

/** Renders a CEEMS query template: {{.UUIDs}}, {{.Range}}, {{.ScrapeInterval}}, ... */
export function renderQuery(tpl: string, vars: Record<string, string>): string {
  return tpl.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (m, name) => {
    if (!(name in vars)) throw new Error(`unknown template variable ${m}`);
    return vars[name];
  });
}

/** Number of units per query so that no query exceeds Prometheus's sample limit (CEEMS's formula). */
export function batchSize(n: number, windowMs: number, s: TsdbSettings, maxSeries: number, minSamples: number) {
  const samplesPerSeries = Math.max(windowMs / s.scrapeIntervalMs, 1);
  const maxLabels = s.maxSamples / (maxSeries * samplesPerSeries);
  return Math.max(1, Math.min(Math.max(Math.floor(minSamples * maxLabels), 10), n));
}

/** The updater for one `updaters:` entry. */
export class TsdbUpdater {
  readonly id: string;
  #settings?: TsdbSettings;
  #base: string;
  #headers: Record<string, string>;

  /**
   * @param fetchTimeoutMs bound of one request to Prometheus
   * @param deadlineMs bound of one window's whole update: queries still running then are abandoned
   */
  constructor(
    private cfg: UpdaterConfig,
    private logger: Logger,
    private fetchTimeoutMs = 30_000,
    private deadlineMs = 2 * fetchTimeoutMs,
  ) {
    this.id = cfg.id;
    this.#base = cfg.url.replace(/\/$/, "");
    this.#headers = clientHeaders(cfg.web, `updaters ${cfg.id}: web`);
  }

  async #api(path: string, params?: URLSearchParams, signal?: AbortSignal): Promise<unknown> {
    const url = `${this.#base}${path}`;
    const timeout = AbortSignal.timeout(this.#settings?.timeoutMs ?? this.fetchTimeoutMs);
    const r = await fetch(url, {
      method: params ? "POST" : "GET",
      headers: params ? { ...this.#headers, "Content-Type": "application/x-www-form-urlencoded" } : this.#headers,
      body: params?.toString(),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text = await r.text();
    let body: { status?: string; data?: unknown; error?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`${path}: HTTP ${r.status}: ${text.slice(0, 200)}`);
    }
    if (body.status !== "success") throw new Error(`${path}: ${body.error ?? `HTTP ${r.status}`}`);
    return body.data;
  }

  /** Reads scrape/evaluation interval and query limits from Prometheus (cached after success). */
  async settings(signal?: AbortSignal): Promise<TsdbSettings> {
    if (this.#settings) return this.#settings;
    const s: TsdbSettings = { scrapeIntervalMs: 60_000, evaluationIntervalMs: 60_000, maxSamples: 50e6, timeoutMs: 0 };
    const cfg = await this.#api("/api/v1/status/config", undefined, signal) as { yaml: string };
    const g = (YAML.parse(cfg.yaml)?.global ?? {}) as Record<string, string>;
    if (g.scrape_interval) s.scrapeIntervalMs = parseDuration(g.scrape_interval);
    if (g.evaluation_interval) s.evaluationIntervalMs = parseDuration(g.evaluation_interval);
    try {
      const flags = await this.#api("/api/v1/status/flags", undefined, signal) as Record<string, string>;
      const ms = Number(flags["query.max-samples"]);
      if (ms > 0) s.maxSamples = ms;
      if (flags["query.timeout"]) s.timeoutMs = parseDuration(flags["query.timeout"]);
    } catch (e) {
      this.logger.debug("cannot read Prometheus flags", { updater: this.id, err: e });
    }
    s.timeoutMs = Math.min(s.timeoutMs || this.fetchTimeoutMs, this.fetchTimeoutMs);
    this.#settings = s;
    return s;
  }

  /** Runs an instant query at `timeMs`; returns value per `uuid` label. */
  async query(q: string, timeMs: number, signal?: AbortSignal): Promise<Map<string, number>> {
    const data = await this.#api(
      "/api/v1/query",
      new URLSearchParams({ query: q, time: String(timeMs / 1000) }),
      signal,
    ) as { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    const out = new Map<string, number>();
    if (data.resultType !== "vector") return out;
    for (const r of data.result) {
      const v = Number(r.value[1]);
      if (r.metric.uuid !== undefined && Number.isFinite(v)) out.set(r.metric.uuid, v);
    }
    return out;
  }

  /** Deletes the series of ignored units through the TSDB admin API (needs --web.enable-admin-api). */
  async #deleteSeries(units: Unit[], startMs: number, endMs: number): Promise<void> {
    const re = units.map((u) => u.uuid.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
    const params = new URLSearchParams({ start: String(startMs / 1000), end: String(endMs / 1000) });
    params.append("match[]", `{uuid=~"${re}"}`);
    for (const l of this.cfg.extraConfig.labelsToDrop) params.append("match[]", `{${l}=~"${re}"}`);
    try {
      const r = await fetch(`${this.#base}/api/v1/admin/tsdb/delete_series`, {
        method: "POST",
        headers: { ...this.#headers, "Content-Type": "application/x-www-form-urlencoded" },
        body: params.toString(),
        signal: AbortSignal.timeout(this.fetchTimeoutMs),
      });
      await r.body?.cancel();
      if (r.status !== 204 && !r.ok) throw new Error(`HTTP ${r.status}`);
      this.logger.debug("deleted series of ignored units", { updater: this.id, units: units.length });
    } catch (e) {
      this.logger.warn("cannot delete series of ignored units", { updater: this.id, err: e });
    }
  }

  /**
   * Marks units shorter than the cutoff as ignored and fills the others' aggregates for [startMs, endMs].
   * A failing Prometheus leaves aggregates empty (logged); the units are still stored. A batch's queries run
   * concurrently (as CEEMS's); the whole update ends by the deadline (or `signal`), what is filled then is kept.
   */
  async update(units: Unit[], startMs: number, endMs: number, signal?: AbortSignal): Promise<void> {
    const ex = this.cfg.extraConfig;
    const active: Unit[] = [];
    const ignored: Unit[] = [];
    for (const u of units) {
      if (ex.cutoffMs > 0 && u.ended_at_ts > 0 && u.ended_at_ts - u.started_at_ts < ex.cutoffMs) {
        u.ignore = true;
        ignored.push(u);
        continue;
      }
      active.push(u);
    }
    if (ex.deleteIgnored && ignored.length) await this.#deleteSeries(ignored, startMs - ex.cutoffMs, endMs);
    if (!active.length || !Object.keys(ex.queries).length) return;
    const deadline = AbortSignal.timeout(this.deadlineMs);
    const stop = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let s: TsdbSettings;
    try {
      s = await this.settings(stop);
    } catch (e) {
      this.logger.error("TSDB unreachable, units stored without aggregates", { updater: this.id, err: e });
      return;
    }
    const windowMs = endMs - startMs;
    if (windowMs < 4 * s.scrapeIntervalMs) {
      this.logger.debug("window shorter than rate interval, skipping TSDB update", { updater: this.id });
      return;
    }
    // A configured query_batch_size fixes the units per query; otherwise sized to stay under the sample limit.
    const size = ex.queryBatchSize > 0
      ? Math.min(ex.queryBatchSize, active.length)
      : batchSize(active.length, windowMs, s, ex.queryMaxSeries, ex.queryMinSamples);
    const vars = {
      ScrapeInterval: promDuration(s.scrapeIntervalMs),
      ScrapeIntervalMilli: String(s.scrapeIntervalMs),
      EvaluationInterval: promDuration(s.evaluationIntervalMs),
      EvaluationIntervalMilli: String(s.evaluationIntervalMs),
      RateInterval: promDuration(4 * s.scrapeIntervalMs),
      // Prometheus 2.x range selectors are closed at both ends: one millisecond less keeps the window's
      // samples from being counted twice by consecutive updates (and matches 3.x's left-open ranges).
      Range: `${Math.max(1, windowMs - 1)}ms`,
    };
    const jobs = Object.entries(ex.queries).flatMap(([metric, subs]) =>
      Object.entries(subs).map(([sub, tpl]) => ({ metric, sub, tpl }))
    );
    for (let i = 0; i < active.length && !stop.aborted; i += size) {
      const batch = active.slice(i, i + size);
      const byUuid = new Map(batch.map((u) => [u.uuid, u]));
      const uuids = batch.map((u) => u.uuid.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
      await Promise.all(jobs.map(async ({ metric, sub, tpl }) => {
        let res: Map<string, number>;
        try {
          res = await this.query(renderQuery(tpl, { ...vars, UUIDs: uuids }), endMs, stop);
        } catch (e) {
          if (!stop.aborted) this.logger.error("TSDB query failed", { updater: this.id, metric, sub, err: e });
          return;
        }
        for (const [uuid, v] of res) {
          const u = byUuid.get(uuid) as unknown as Record<string, MetricMap | undefined>;
          if (!u) continue;
          u[metric] = { ...u[metric], [sub]: v };
        }
      }));
    }
    if (deadline.aborted) {
      this.logger.error("TSDB update deadline reached: the rest of the window's units stored without aggregates", {
        updater: this.id,
        deadline: `${Math.round(this.deadlineMs / 1000)}s`,
      });
    }
  }
}
