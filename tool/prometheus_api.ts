// Minimal client of the Prometheus HTTP API for `ceems tool`: series, label values, queries, targets, config,
// with credentials and CA from a Prometheus-style HTTP client config file (--http.config.file).

import { parse as parseYaml } from "yaml";
import type { HttpClientConfig } from "../common/http_client_config.ts";

export { type HttpClientConfig, loadHttpClientConfig } from "../common/http_client_config.ts";

/** A Prometheus server reached over its HTTP API. */
export class PrometheusApi {
  constructor(private base: string, private http: HttpClientConfig = { headers: {} }) {
    this.base = base.replace(/\/+$/, "");
  }

  async #get(path: string, params: [string, string][] = []): Promise<unknown> {
    const u = new URL(this.base + path);
    for (const [k, v] of params) u.searchParams.append(k, v);
    const r = await fetch(u, { headers: this.http.headers, client: this.http.client } as RequestInit);
    const text = await r.text();
    let body: { status?: string; data?: unknown; error?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`GET ${path}: HTTP ${r.status}: ${text.slice(0, 200)}`);
    }
    if (!r.ok || body.status !== "success") throw new Error(`GET ${path}: HTTP ${r.status}: ${body.error ?? text}`);
    return body.data;
  }

  /** Label sets of the series matching any of `matchers` between start and end (seconds). */
  async series(matchers: string[], start: number, end: number): Promise<Record<string, string>[]> {
    const params: [string, string][] = matchers.map((m) => ["match[]", m]);
    params.push(["start", String(start)], ["end", String(end)]);
    return await this.#get("/api/v1/series", params) as Record<string, string>[];
  }

  /** Values of `label` on series matching `matcher` between start and end (seconds). */
  async labelValues(label: string, matcher: string, start: number, end: number): Promise<string[]> {
    return await this.#get(`/api/v1/label/${encodeURIComponent(label)}/values`, [
      ["match[]", matcher],
      ["start", String(start)],
      ["end", String(end)],
    ]) as string[];
  }

  /** Instant query at `time` (seconds): the vector's samples. */
  async query(q: string, time: number): Promise<{ metric: Record<string, string>; value: number }[]> {
    const data = await this.#get("/api/v1/query", [["query", q], ["time", String(time)]]) as {
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[] | [number, string];
    };
    if (data.resultType === "scalar") {
      return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
    }
    if (data.resultType !== "vector") return [];
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({
      metric: r.metric,
      value: Number(r.value[1]),
    }));
  }

  /** The first value of an instant query, or undefined when it returns nothing. */
  async queryScalar(q: string, time: number): Promise<number | undefined> {
    return (await this.query(q, time))[0]?.value;
  }

  /** Scrape interval (ms) per scrape job, from the active targets' discovered labels. */
  async scrapeIntervals(): Promise<Map<string, number>> {
    const data = await this.#get("/api/v1/targets", [["state", "active"]]) as {
      activeTargets?: { discoveredLabels?: Record<string, string>; scrapePool?: string }[];
    };
    const out = new Map<string, number>();
    for (const t of data.activeTargets ?? []) {
      const job = t.discoveredLabels?.job ?? t.scrapePool;
      const si = t.discoveredLabels?.__scrape_interval__;
      if (job && si) out.set(job, parsePromDuration(si));
    }
    return out;
  }

  /** The server's global scrape and evaluation intervals (ms). */
  async globalIntervals(): Promise<{ scrapeMs: number; evalMs: number }> {
    const data = await this.#get("/api/v1/status/config") as { yaml: string };
    const cfg = (parseYaml(data.yaml) ?? {}) as { global?: Record<string, string> };
    return {
      scrapeMs: parsePromDuration(cfg.global?.scrape_interval ?? "1m"),
      evalMs: parsePromDuration(cfg.global?.evaluation_interval ?? "1m"),
    };
  }
}

/** Parses a Prometheus duration ("1m30s", "500ms", "2h") into ms. */
export function parsePromDuration(s: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  let total = 0;
  let rest = s.trim();
  if (!rest) throw new Error(`empty duration`);
  while (rest) {
    const m = /^(\d+)(ms|s|m|h|d|w|y)/.exec(rest);
    if (!m) throw new Error(`invalid duration ${JSON.stringify(s)}`);
    total += Number(m[1]) * (m[2] === "y" ? 365 * 86_400_000 : units[m[2]]);
    rest = rest.slice(m[0].length);
  }
  return total;
}
