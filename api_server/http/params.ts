// Query-parameter parsing for the API endpoints: time windows in Unix seconds with CEEMS's defaults and
// maximum period, repeatable list parameters and the `field` selection.

/** A request problem that becomes a 400 bad_data answer. */
export class BadRequest extends Error {}

const DAY_MS = 86_400_000;

/** Most values one list parameter may carry (a request naming more is a 400, not a huge query). */
export const MAX_LIST_VALUES = 10_000;

/** Latest instant a JavaScript Date (and so an ISO time string) can hold, in ms. */
const MAX_TIME_MS = 8.64e15;

/** Distinct non-empty values of a repeatable, comma-separated parameter; BadRequest beyond MAX_LIST_VALUES. */
export function list(q: URLSearchParams, name: string): string[] {
  const raw = q.getAll(name);
  // Counted before anything is split, so an overlong list costs no more than reading it once.
  let n = 0;
  for (const v of raw) {
    for (let i = v.indexOf(","); i >= 0; i = v.indexOf(",", i + 1)) n++;
    n++;
  }
  if (n > MAX_LIST_VALUES) throw new BadRequest(`too many values of ${name} (at most ${MAX_LIST_VALUES})`);
  const out = new Set<string>();
  for (const v of raw) {
    for (const part of v.split(",")) {
      const t = part.trim();
      if (t !== "") out.add(t);
    }
  }
  return [...out];
}

/** True when a boolean-ish parameter is present and not false. */
export function flag(q: URLSearchParams, name: string): boolean {
  if (!q.has(name)) return false;
  const v = (q.get(name) ?? "").toLowerCase();
  return v !== "false" && v !== "0";
}

function seconds(v: string): number {
  if (!/^-?\d+(\.\d+)?$/.test(v)) throw new BadRequest("malformed timestamp");
  const ms = Math.round(parseFloat(v) * 1000);
  if (!(Math.abs(ms) <= MAX_TIME_MS)) throw new BadRequest("timestamp out of range");
  return ms;
}

/**
 * The [from, to] window in ms: default last 24 h, or 24 h next to a single bound; both bounds rounded down to a
 * multiple of `roundMs` when given (before the checks, as CEEMS); checks the max period.
 */
export function timeWindow(
  q: URLSearchParams,
  maxPeriodMs: number,
  now = Date.now(),
  roundMs = 0,
): { fromMs: number; toMs: number } {
  const f = q.get("from");
  const t = q.get("to");
  let fromMs: number;
  let toMs: number;
  if (f && t) {
    fromMs = seconds(f);
    toMs = seconds(t);
  } else if (f) {
    fromMs = seconds(f);
    toMs = Math.min(fromMs + DAY_MS, now);
    if (toMs < fromMs) toMs = fromMs + DAY_MS;
  } else if (t) {
    toMs = seconds(t);
    fromMs = toMs - DAY_MS;
  } else {
    toMs = now;
    fromMs = now - DAY_MS;
  }
  if (roundMs > 0) {
    fromMs = Math.floor(fromMs / roundMs) * roundMs;
    toMs = Math.floor(toMs / roundMs) * roundMs;
  }
  if (!(Math.abs(fromMs) <= MAX_TIME_MS && Math.abs(toMs) <= MAX_TIME_MS)) {
    throw new BadRequest("timestamp out of range");
  }
  if (toMs < fromMs) throw new BadRequest("from must not be after to");
  if (maxPeriodMs > 0 && toMs - fromMs > maxPeriodMs) throw new BadRequest("maximum query window exceeded");
  return { fromMs, toMs };
}

/** Requested fields restricted to `allowed`; undefined when none were asked; BadRequest when none is valid. */
export function fields(q: URLSearchParams, allowed: readonly string[]): string[] | undefined {
  const asked = list(q, "field");
  if (!asked.length) return undefined;
  const ok = asked.filter((f) => allowed.includes(f));
  if (!ok.length) throw new BadRequest("invalid query fields");
  return [...new Set(ok)];
}

/** Columns `/usage/current` may group by in addition to username and project (CEEMS's GROUP BY). */
export const USAGE_GROUP_COLUMNS = ["cluster_id", "resource_manager", "groupname", "username", "project"];

/** The extra `groupby` columns of a usage request; BadRequest for a column that cannot be grouped by. */
export function groupBy(q: URLSearchParams): string[] {
  const cols = list(q, "groupby");
  for (const c of cols) {
    if (!USAGE_GROUP_COLUMNS.includes(c)) throw new BadRequest(`invalid groupby column "${c}"`);
  }
  return [...new Set(cols)].filter((c) => c !== "username" && c !== "project");
}
