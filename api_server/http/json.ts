// JSON encoding identical to CEEMS's Go encoder: struct fields in declared order, map keys sorted,
// metric-map floats as integers when integral else with 8 decimals, HTML characters escaped, trailing newline.

import { METRIC_COLUMNS } from "../models.ts";

const metricFields = new Set<string>(METRIC_COLUMNS);

// Control characters must be escaped in JSON strings: matching them is the point.
// deno-lint-ignore no-control-regex
const needsEscape = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;

function encodeString(s: string): string {
  if (!needsEscape.test(s)) return `"${s}"`;
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

function encodeMetricNumber(n: number): string {
  if (!Number.isFinite(n)) return "0";
  return Number.isInteger(n) ? String(n) : n.toFixed(8);
}

/** JSON text already in Go's encoding, spliced into responses as is. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Encodes a value as Go encodes map[string]any (keys sorted); `metric` formats floats as CEEMS's MetricMap. */
export function encodeGo(v: unknown, metric = false): string {
  return encodeMap(v, metric);
}

/** Encoded map keys: keys repeat across rows (allocation, tags, metric maps), so each is escaped once. */
const keyCache = new Map<string, string>();

function encodeKey(k: string): string {
  let e = keyCache.get(k);
  if (e === undefined) {
    e = encodeString(k) + ":";
    if (keyCache.size < 4096) keyCache.set(k, e);
  }
  return e;
}

/** Encodes a nested map value (keys sorted, as Go encodes map[string]any). */
function encodeMap(v: unknown, metric: boolean): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return encodeString(v);
  if (typeof v === "number") return metric ? encodeMetricNumber(v) : Number.isFinite(v) ? JSON.stringify(v) : "0";
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) {
    let out = "[";
    for (let i = 0; i < v.length; i++) out += (i ? "," : "") + encodeMap(v[i], metric);
    return out + "]";
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  // Producers build maps in sorted key order; sort only when they did not.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      keys.sort();
      break;
    }
  }
  let out = "{";
  for (let i = 0; i < keys.length; i++) out += (i ? "," : "") + encodeKey(keys[i]) + encodeMap(o[keys[i]], metric);
  return out + "}";
}

/** Encodes a response row: top-level keys keep their order, nested objects are maps. */
export function encodeRow(row: Record<string, unknown>): string {
  let out = "";
  for (const k in row) {
    const v = row[k];
    if (v === undefined) continue;
    out += (out ? "," : "{") + encodeString(k) + ":";
    if (v instanceof RawJson) out += v.text;
    else if (typeof v === "number" && Number.isFinite(v)) out += String(v);
    else if (typeof v === "string") out += encodeString(v);
    else out += encodeMap(v, metricFields.has(k));
  }
  return out ? out + "}" : "{}";
}

/** Encodes CEEMS's success envelope around rows (or null). */
export function encodeSuccess(data: Record<string, unknown>[] | null, warnings?: string[]): string {
  const body = data === null ? "null" : "[" + data.map(encodeRow).join(",") + "]";
  const w = warnings?.length ? `,"warnings":${encodeMap(warnings, false)}` : "";
  return `{"status":"success","data":${body}${w}}\n`;
}

/** Encodes CEEMS's error envelope. */
export function encodeError(errorType: string, error: string): string {
  return `{"status":"error","data":null,"errorType":${encodeString(errorType)},"error":${encodeString(error)}}\n`;
}
