// Builds the cacct table from the API's units and usage: one column per selected field (a metric field
// gets one sub-column per key, e.g. per emissions provider), unit rows, and the selected users' usage rows.

import { ALL_FIELDS, FIELDS } from "./fields.ts";
import type { Column } from "./table.ts";

/** A unit or usage record as the API returns it (fields as requested). */
export type ApiRecord = Record<string, unknown>;

/** `HH:MM:SS` of a number of seconds (hours may exceed 24). */
export function hms(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
}

function metricKeys(records: ApiRecord[], tag: string): string[] {
  const keys = new Set<string>();
  for (const r of records) {
    const m = r[tag];
    if (m && typeof m === "object") { for (const k of Object.keys(m)) keys.add(k); }
  }
  return [...keys].sort();
}

function metricValue(r: ApiRecord, tag: string, key: string, kind: "avg" | "total"): string {
  const v = (r[tag] as Record<string, number> | undefined)?.[key];
  if (typeof v !== "number") return "";
  return kind === "avg" ? v.toFixed(2) : v.toFixed(6);
}

/** Footer text of a text field for one usage record. */
function usageText(f: string, u: ApiRecord): string {
  switch (f) {
    case "jobid":
      return String(u.num_units ?? "");
    case "account":
      return String(u.project ?? "");
    case "group":
      return String(u.groupname ?? "");
    case "user":
      return String(u.username ?? "");
    case "elapsed": {
      const w = (u.total_time_seconds as Record<string, number> | undefined)?.walltime ?? 0;
      return w > 0 ? hms(w) : "";
    }
    default:
      return "";
  }
}

/** The table's columns for the selected fields (in report order), units and usage rows. */
export function buildColumns(selected: string[], units: ApiRecord[], usages: ApiRecord[]): Column[] {
  const cols: Column[] = [];
  for (const f of ALL_FIELDS.filter((f) => selected.includes(f))) {
    const d = FIELDS[f];
    if (d.kind === "text") {
      cols.push({
        title: d.title,
        sub: "",
        minW: d.minW,
        maxW: d.maxW,
        values: units.map((u) => (u[d.tag] === undefined ? "" : String(u[d.tag]))),
        footers: usages.map((u) => usageText(f, u)),
      });
      continue;
    }
    const keys = metricKeys([...units, ...usages], d.tag);
    for (const k of keys) {
      cols.push({
        title: d.title,
        sub: keys.length > 1 ? k : "",
        minW: d.minW,
        maxW: d.maxW,
        values: units.map((u) => metricValue(u, d.tag, k, d.kind as "avg" | "total")),
        footers: usages.map((u) => metricValue(u, d.tag, k, d.kind as "avg" | "total")),
      });
    }
  }
  return cols;
}
