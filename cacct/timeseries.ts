// `cacct --ts`: the time series of each unit for every configured TSDB query, as CSV files named after the
// series' Prometheus fingerprint, with a metadata.json mapping fingerprints to label sets (as CEEMS does).

import { join } from "node:path";
import type { CacctConfig } from "./config.ts";
import type { ApiRecord } from "./report.ts";

/** Prometheus's fingerprint of a label set (model.LabelSet.Fingerprint: FNV-1a 64 over sorted pairs), hex. */
export function fingerprint(labels: Record<string, string>): string {
  if (!Object.keys(labels).length) return "cbf29ce484222325";
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  const enc = new TextEncoder();
  const feed = (bytes: Uint8Array) => {
    for (const b of bytes) h = ((h ^ BigInt(b)) * prime) & mask;
  };
  for (const name of Object.keys(labels).sort()) {
    feed(enc.encode(name));
    feed(new Uint8Array([0xff]));
    feed(enc.encode(labels[name]));
    feed(new Uint8Array([0xff]));
  }
  return h.toString(16).padStart(16, "0");
}

/** Go's strconv.FormatFloat(v, 'f', -1, 64): shortest decimal, never an exponent. */
export function formatFloat(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  const s = String(v);
  if (!/e/i.test(s)) return s;
  const [mant, expS] = s.split(/e/i);
  const exp = Number(expS);
  const neg = mant.startsWith("-");
  const digits = mant.replace(/^-/, "").replace(".", "");
  const point = (mant.replace(/^-/, "").indexOf(".") + 1 || mant.replace(/^-/, "").length + 1) - 1 + exp;
  const out = point <= 0
    ? "0." + "0".repeat(-point) + digits
    : point >= digits.length
    ? digits + "0".repeat(point - digits.length)
    : digits.slice(0, point) + "." + digits.slice(point);
  return (neg ? "-" : "") + out;
}

interface RangeSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

/**
 * Fetches every query for every unit (range query over the unit's life, 10 s step) and writes the series
 * into `outDir`. Requests carry the user and cluster headers, so an LB in front of the TSDB checks ownership.
 * Returns the number of series written; failures are reported on stderr and skipped, as CEEMS does.
 */
export async function exportTimeSeries(
  cfg: CacctConfig,
  units: ApiRecord[],
  outDir: string,
  user: string,
): Promise<number> {
  if (!cfg.tsdb || !Object.keys(cfg.queries).length) {
    console.error("time series data not available");
    return 0;
  }
  Deno.mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const meta: { fingerprint: string; labels: Record<string, string> }[] = [];
  const now = Date.now() / 1000;
  for (const u of units) {
    const start = Number(u.started_at_ts ?? 0) / 1000;
    const ended = Number(u.ended_at_ts ?? 0) / 1000;
    const end = ended > 0 ? ended : now;
    for (const [name, tpl] of Object.entries(cfg.queries)) {
      const query = tpl.replaceAll("%s", String(u.uuid));
      const params = new URLSearchParams({ query, start: String(start), end: String(end), step: "10s" });
      try {
        const r = await fetch(`${cfg.tsdb.url}/api/v1/query_range`, {
          method: "POST",
          headers: {
            ...cfg.tsdb.http.headers,
            "Content-Type": "application/x-www-form-urlencoded",
            [cfg.userHeader]: user,
            ...(cfg.clusterId ? { "X-Ceems-Cluster-Id": cfg.clusterId } : {}),
          },
          body: params.toString(),
          client: cfg.tsdb.http.client,
          signal: AbortSignal.timeout(60_000),
        } as RequestInit);
        const body = await r.json();
        if (body.status !== "success") throw new Error(body.error ?? `HTTP ${r.status}`);
        for (const s of body.data.result as RangeSeries[]) {
          if (!("uuid" in s.metric)) continue;
          const fp = fingerprint(s.metric);
          meta.push({ fingerprint: fp, labels: Object.fromEntries(Object.entries(s.metric).sort()) });
          const rows = s.values.map(([t, v]) => `${formatFloat(t)},${formatFloat(Number(v))}`);
          Deno.writeTextFileSync(join(outDir, `${fp}.csv`), ["timestamp,value", ...rows].join("\n") + "\n", {
            mode: 0o600,
          });
        }
      } catch (e) {
        console.error(`failed to fetch time series for query ${name} of unit ${u.uuid}: ${(e as Error).message}`);
      }
    }
  }
  Deno.writeTextFileSync(join(outDir, "metadata.json"), JSON.stringify(meta, null, "\t") + "\n", { mode: 0o600 });
  console.error(`time series data saved to directory ${outDir}`);
  return meta.length;
}
