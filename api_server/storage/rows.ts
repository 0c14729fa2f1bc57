// Row helpers shared by the store's writer and its readers: stored JSON decoding, metric-map merging
// (totals add, averages weight by time) and the conversion of rows into CEEMS's response objects.

import { addMaps, AVG_WEIGHTS, avgMaps, METRIC_COLUMNS, type MetricMap, UNIT_FIELDS, USAGE_FIELDS } from "../models.ts";
import { RawJson } from "../http/json.ts";

const JSON_UNIT_COLS = new Set<string>(["allocation", "tags", ...METRIC_COLUMNS]);
const METRIC_SET = new Set<string>(METRIC_COLUMNS);

/** Decodes stored JSON text, `def` when it is empty or malformed. */
export function parseJson(v: unknown, def: unknown): unknown {
  if (typeof v !== "string" || v === "") return def;
  try {
    return JSON.parse(v);
  } catch {
    return def;
  }
}

/** Merges an incoming window's metric maps into stored ones: totals add, averages weight by time. */
export function mergeMetrics(
  old: Record<string, MetricMap>,
  inc: Record<string, MetricMap | undefined>,
): Record<string, MetricMap> {
  const out: Record<string, MetricMap> = {};
  const oldT = old.total_time_seconds ?? {};
  const incT = inc.total_time_seconds ?? {};
  for (const c of METRIC_COLUMNS) {
    const w = AVG_WEIGHTS[c];
    out[c] = w ? avgMaps(old[c], inc[c], oldT[w] ?? 0, incT[w] ?? 0) : addMaps(old[c], inc[c]);
  }
  return out;
}

/** The metric columns of a stored row, decoded. */
export function metricMaps(r: Record<string, unknown>): Record<string, MetricMap> {
  const maps: Record<string, MetricMap> = {};
  for (const c of METRIC_COLUMNS) maps[c] = parseJson(r[c], {}) as MetricMap;
  return maps;
}

/** Turns a units row into a response object with Go's omitempty rules (uuid always present). */
export function unitRow(r: Record<string, unknown>, cols: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of UNIT_FIELDS) {
    if (!cols.has(c)) {
      // Go encodes the uuid (no omitempty) even when it was not selected.
      if (c === "uuid") out.uuid = "";
      continue;
    }
    let v = r[c];
    if (JSON_UNIT_COLS.has(c)) {
      // Stored in output encoding: empty maps are omitted, others spliced without re-encoding.
      if (typeof v !== "string" || v === "" || v === "{}" || v === "null") continue;
      v = new RawJson(v);
    } else if (c !== "uuid" && (v === "" || v === 0 || v === null)) continue;
    out[c] = v;
  }
  return out;
}

/** Turns a usage row into a response object; `parsed` when its metric columns are already decoded. */
export function usageRow(r: Record<string, unknown>, fields: string[], parsed = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of USAGE_FIELDS) {
    const metric = METRIC_SET.has(c);
    if (fields.length && !fields.includes(c)) {
      // Go encodes unselected non-omitempty fields with their zero value.
      if (!metric) out[c] = c === "num_units" ? 0 : "";
      continue;
    }
    let v = r[c];
    if (metric) {
      if (!parsed) v = parseJson(v, {});
      if (Object.keys(v as object).length === 0) continue;
    }
    out[c] = v ?? (c === "num_units" ? 0 : "");
  }
  return out;
}

/** Turns a users/projects/admin_users row into a response object (`listCol`: its member list column). */
export function memberRow(r: Record<string, unknown>, listCol: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.uid) out.uid = r.uid;
  out.cluster_id = r.cluster_id;
  if (r.resource_manager) out.resource_manager = r.resource_manager;
  out.name = r.name;
  const list = parseJson(r[listCol], []) as unknown[];
  if (list.length) out[listCol] = list;
  const tags = parseJson(r.tags, []) as unknown[];
  if (tags.length) out.tags = tags;
  return out;
}
