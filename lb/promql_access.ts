// PromQL access analysis for the load balancer: parses a query with the official PromQL grammar and
// requires every vector/matrix selector to be pinned by the unit label to literal values.

import { parser } from "@prometheus-io/lezer-promql";

/** Outcome of analysing one query: the unit ids it touches, or why it is refused. */
export type QueryAnalysis =
  | { ok: true; units: string[]; clusterIds?: string[] }
  | { ok: false; status: 400 | 403; reason: string };

/** Label that names the cluster of a query, overriding the X-Ceems-Cluster-Id header (as CEEMS). */
export const CLUSTER_LABEL = "ceems_id";

/** Characters allowed in one branch of a `=~` alternation: no regular-expression metacharacter. */
const LITERAL_BRANCH = /^[A-Za-z0-9_-]+$/;

/** Functions and aggregations whose string argument names a label they write, with its position. */
const LABEL_WRITERS: Record<string, number> = { label_replace: 1, label_join: 1, count_values: 0 };

class Refusal extends Error {
  constructor(readonly status: 400 | 403, reason: string) {
    super(reason);
  }
}

/** Removes the quotes of a PromQL string literal; escapes are refused since unit ids never need them. */
function unquote(raw: string, what: string): string {
  const q = raw[0];
  if (raw.length < 2 || raw[raw.length - 1] !== q || !"\"'`".includes(q)) {
    throw new Refusal(400, `malformed string literal in ${what}`);
  }
  const body = raw.slice(1, -1);
  if (q !== "`" && body.includes("\\")) {
    throw new Refusal(403, `escape sequences are not allowed in ${what}`);
  }
  return body;
}

/** Minimal view of the lezer syntax node API used here. */
interface SyntaxNode {
  name: string;
  from: number;
  to: number;
  type: { isError: boolean };
  firstChild: SyntaxNode | null;
  nextSibling: SyntaxNode | null;
  getChild(name: string): SyntaxNode | null;
  getChildren(name: string): SyntaxNode[];
}

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

/** Values a `uuid` matcher restricts the selector to, or a refusal when it does not restrict it. */
function matcherValues(op: string, value: string, label: string): string[] {
  if (op === "=") {
    if (value === "") throw new Refusal(403, `${label}="" matches series without a ${label} label`);
    return [value];
  }
  if (op === "=~") {
    const branches = value.split("|");
    for (const b of branches) {
      if (!LITERAL_BRANCH.test(b)) {
        throw new Refusal(403, `${label}=~"${value}" is not a plain alternation of literal ${label} values`);
      }
    }
    return branches;
  }
  throw new Refusal(403, `${label}${op}"${value}" does not restrict the query to given ${label} values`);
}

/** Checks one VectorSelector node; returns the unit ids its `label` matchers allow. */
function checkSelector(q: string, sel: SyntaxNode, label: string, clusters: Set<string>): string[] {
  const text = q.slice(sel.from, sel.to);
  const matchers = sel.getChild("LabelMatchers");
  const units: string[] = [];
  let pinned = false;
  for (const m of matchers ? children(matchers) : []) {
    if (m.name === "QuotedLabelName") continue; // metric name given as a string: not a label matcher
    if (m.name !== "UnquotedLabelMatcher" && m.name !== "QuotedLabelMatcher") {
      if (m.name === "," || m.name === "{" || m.name === "}") continue;
      throw new Refusal(400, `unexpected ${m.name} in selector ${text}`);
    }
    let name: string;
    if (m.name === "UnquotedLabelMatcher") {
      const ln = m.getChild("LabelName");
      if (!ln) throw new Refusal(400, `label matcher without a name in ${text}`);
      name = q.slice(ln.from, ln.to);
    } else {
      const qn = m.getChild("QuotedLabelName")?.getChild("StringLiteral");
      if (!qn) throw new Refusal(400, `label matcher without a name in ${text}`);
      name = unquote(q.slice(qn.from, qn.to), "label names");
    }
    if (name === CLUSTER_LABEL && label !== CLUSTER_LABEL) {
      const op = m.getChild("MatchOp");
      const v = m.getChild("StringLiteral");
      if (op && v && q.slice(op.from, op.to) === "=") clusters.add(unquote(q.slice(v.from, v.to), "ceems_id matchers"));
      continue;
    }
    if (name !== label) continue;
    const opNode = m.getChild("MatchOp");
    const valNode = m.getChild("StringLiteral");
    if (!opNode || !valNode) throw new Refusal(400, `incomplete ${label} matcher in ${text}`);
    const op = q.slice(opNode.from, opNode.to);
    const value = unquote(q.slice(valNode.from, valNode.to), `${label} matchers`);
    units.push(...matcherValues(op, value, label));
    pinned = true;
  }
  if (!pinned) throw new Refusal(403, `selector ${text} has no ${label} matcher`);
  return units;
}

/** Refuses label_replace/label_join/count_values that write the unit label (forging unit ids). */
function checkLabelWriter(q: string, node: SyntaxNode, label: string): void {
  let fname: string | undefined;
  if (node.name === "FunctionCall") {
    const id = node.getChild("FunctionIdentifier");
    if (id) fname = q.slice(id.from, id.to);
  } else if (node.name === "AggregateExpr") {
    const op = node.getChild("AggregateOp");
    if (op) fname = q.slice(op.from, op.to);
  }
  if (fname === undefined || !(fname in LABEL_WRITERS)) return;
  const body = node.getChild("FunctionCallBody");
  const args = body ? children(body).filter((c) => c.name !== "(" && c.name !== ")" && c.name !== ",") : [];
  const arg = args[LABEL_WRITERS[fname]];
  if (!arg) throw new Refusal(400, `${fname} is missing arguments`);
  if (arg.name !== "StringLiteral") throw new Refusal(403, `${fname} label argument must be a string literal`);
  const dst = unquote(q.slice(arg.from, arg.to), `${fname} arguments`);
  if (dst === label) throw new Refusal(403, `${fname} must not write the ${label} label`);
}

/**
 * Analyses `query`: every vector and matrix selector anywhere in the syntax tree must carry a
 * matcher on `label` (`=` a value, or `=~` a plain alternation of literals). Returns all values.
 */
export function analyseQuery(query: string, label = "uuid"): QueryAnalysis {
  if (query.trim() === "") return { ok: false, status: 400, reason: "empty query" };
  const tree = parser.parse(query);
  const units = new Set<string>();
  const clusters = new Set<string>();
  let selectors = 0;
  try {
    const stack: SyntaxNode[] = [tree.topNode as unknown as SyntaxNode];
    while (stack.length) {
      const node = stack.pop()!;
      if (node.type.isError) {
        throw new Refusal(400, `parse error at position ${node.from}: unexpected input in query`);
      }
      if (node.name === "VectorSelector") {
        selectors++;
        for (const u of checkSelector(query, node, label, clusters)) units.add(u);
      } else if (node.name === "MatrixSelector" && !node.getChild("VectorSelector")) {
        throw new Refusal(400, "matrix selector without a vector selector");
      }
      checkLabelWriter(query, node, label);
      for (let c = node.firstChild; c; c = c.nextSibling) stack.push(c);
    }
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, status: e.status, reason: e.message };
    throw e;
  }
  if (tree.topNode.name !== "PromQL" || !tree.topNode.firstChild) {
    return { ok: false, status: 400, reason: "query does not parse as PromQL" };
  }
  if (selectors === 0) return { ok: true, units: [] };
  return clusters.size ? { ok: true, units: [...units], clusterIds: [...clusters] } : { ok: true, units: [...units] };
}

/** Analyses every expression of a list (e.g. `match[]` values) and merges their unit ids. */
export function analyseAll(queries: string[], label = "uuid"): QueryAnalysis {
  const units = new Set<string>();
  const clusters = new Set<string>();
  for (const q of queries) {
    const a = analyseQuery(q, label);
    if (!a.ok) return a;
    for (const u of a.units) units.add(u);
    for (const c of a.clusterIds ?? []) clusters.add(c);
  }
  return clusters.size ? { ok: true, units: [...units], clusterIds: [...clusters] } : { ok: true, units: [...units] };
}
