// PromQL access control for the load balancer: parses a query into our tree, requires every selector
// to be pinned by the unit label to literal values, and returns the query printed from that tree.

import { type Expr, type LabelMatcher, walk } from "./promql/ast.ts";
import { PromQLSyntaxError } from "./promql/literals.ts";
import { parsePromQL } from "./promql/parse.ts";
import { printExpr, printSelector } from "./promql/print.ts";

/** Outcome of analysing queries: the unit ids they touch and the text to forward, or why they are refused. */
export type QueryAnalysis =
  | { ok: true; units: string[]; clusterIds?: string[]; printed: string[] }
  | { ok: false; status: 400 | 403; reason: string };

/** Label that names the cluster of a query, overriding the X-Ceems-Cluster-Id header (as CEEMS). */
export const CLUSTER_LABEL = "ceems_id";

/**
 * What a unit id may look like (SLURM job ids, OpenStack and Kubernetes UUIDs; CEEMS's own LB allows the
 * same alphabet): in `=` values and in each branch of a `=~` alternation (no regular-expression metacharacter,
 * no separator an ownership API might split on).
 */
const UNIT_ID = /^[A-Za-z0-9_-]+$/;

/** Most unit ids one request may name (each must be checked for ownership). */
export const MAX_UNITS_PER_REQUEST = 10_000;

/** Functions and aggregations whose string argument names a label they write, with its position. */
const LABEL_WRITERS: Record<string, number> = { label_replace: 1, label_join: 1, count_values: 0 };

/** What a query may contain: any expression, or (for `match[]` and Pyroscope) one series selector. */
export type QueryShape = "expression" | "selector";

class Refusal extends Error {}

/** Values a unit-label matcher restricts the selector to, or a refusal when it does not restrict it. */
function matcherValues(m: LabelMatcher): string[] {
  const shown = `${m.name}${m.op}${JSON.stringify(m.value)}`;
  if (m.op === "=") {
    if (m.value === "") throw new Refusal(`${shown} matches series without a ${m.name} label`);
    if (!UNIT_ID.test(m.value)) throw new Refusal(`${shown} is not a ${m.name} value (letters, digits, _ and -)`);
    return [m.value];
  }
  if (m.op === "=~") {
    const branches = m.value.split("|");
    if (!branches.every((b) => UNIT_ID.test(b))) {
      throw new Refusal(`${shown} is not a plain alternation of literal ${m.name} values`);
    }
    return branches;
  }
  throw new Refusal(`${shown} does not restrict the query to given ${m.name} values`);
}

/** The unit ids one selector's `label` matchers allow; `clusters` collects `ceems_id="…"` values. */
function selectorUnits(matchers: LabelMatcher[], label: string, clusters: Set<string>): string[] {
  const units: string[] = [];
  let pinned = false;
  for (const m of matchers) {
    if (m.name === CLUSTER_LABEL && label !== CLUSTER_LABEL) {
      if (m.op === "=") clusters.add(m.value);
      continue;
    }
    if (m.name !== label) continue;
    for (const v of matcherValues(m)) units.push(v);
    pinned = true;
  }
  if (!pinned) throw new Refusal(`selector ${printSelector(matchers)} has no ${label} matcher`);
  return units;
}

/** Refuses label_replace/label_join/count_values that write the unit label (forging unit ids). */
function checkLabelWriter(e: Expr, label: string): void {
  const name = e.kind === "call" ? e.func : e.kind === "aggregate" ? e.op : undefined;
  if (name === undefined || !(name in LABEL_WRITERS)) return;
  const arg = (e as { args: Expr[] }).args[LABEL_WRITERS[name]];
  if (!arg || arg.kind !== "string") throw new Refusal(`${name} label argument must be a string literal`);
  if (arg.value === label) throw new Refusal(`${name} must not write the ${label} label`);
}

/** Every selector in `e` must be pinned to `label` values; returns them and the `ceems_id` values. */
export function checkAccess(e: Expr, label: string): { units: string[]; clusterIds: string[] } {
  const units = new Set<string>();
  const clusters = new Set<string>();
  walk(e, (n) => {
    if (n.kind === "selector") { for (const u of selectorUnits(n.matchers, label, clusters)) units.add(u); }
    checkLabelWriter(n, label);
  });
  return { units: [...units], clusterIds: [...clusters] };
}

/**
 * Analyses each query: parses it (400 when it does not parse or uses what we do not print), checks
 * every selector (403 with a reason), and prints the checked tree. Unit and cluster ids are merged.
 */
export function analyseAll(queries: string[], label = "uuid", shape: QueryShape = "expression"): QueryAnalysis {
  const units = new Set<string>();
  const clusters = new Set<string>();
  const printed: string[] = [];
  for (const q of queries) {
    let tree: Expr;
    try {
      tree = parsePromQL(q);
      if (shape === "selector" && tree.kind !== "selector") throw new PromQLSyntaxError("not a series selector");
    } catch (e) {
      if (e instanceof PromQLSyntaxError) return { ok: false, status: 400, reason: e.message };
      throw e;
    }
    try {
      const a = checkAccess(tree, label);
      for (const u of a.units) units.add(u);
      for (const c of a.clusterIds) clusters.add(c);
      if (units.size > MAX_UNITS_PER_REQUEST) {
        throw new PromQLSyntaxError(`more than ${MAX_UNITS_PER_REQUEST} ${label} values in one request`);
      }
      printed.push(printExpr(tree));
    } catch (e) {
      if (e instanceof Refusal) return { ok: false, status: 403, reason: e.message };
      if (e instanceof PromQLSyntaxError) return { ok: false, status: 400, reason: e.message };
      throw e;
    }
  }
  const out = { ok: true as const, units: [...units], printed };
  return clusters.size ? { ...out, clusterIds: [...clusters] } : out;
}

/** Analyses one query (see {@link analyseAll}). */
export function analyseQuery(query: string, label = "uuid", shape: QueryShape = "expression"): QueryAnalysis {
  return analyseAll([query], label, shape);
}
