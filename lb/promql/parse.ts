// Parses PromQL with the official grammar (@prometheus-io/lezer-promql) into the load balancer's own
// syntax tree; any construct it does not know, and any syntax error, is refused rather than passed on.

import { parser } from "@prometheus-io/lezer-promql";
import type { BinaryOp, Expr, LabelMatcher, MatchOp, VectorMatching } from "./ast.ts";
import { decodeStringLiteral, parseDurationLiteral, parseNumberLiteral, PromQLSyntaxError } from "./literals.ts";

/** Minimal view of the lezer syntax node API used here. */
interface SyntaxNode {
  name: string;
  from: number;
  to: number;
  type: { isError: boolean };
  firstChild: SyntaxNode | null;
  nextSibling: SyntaxNode | null;
}

/** A tree deeper than this is refused (it bounds the recursion of the converter, checker and printer). */
export const MAX_DEPTH = 500;

/** Longest query text analysed (Grafana's queries are far shorter; the grammar's cost grows with the text). */
export const MAX_QUERY_CHARS = 128 * 1024;

/** Deepest nesting of brackets before parsing: deep nesting costs the grammar's parser most. */
export const MAX_NESTING = 64;

/**
 * Cheap checks before the grammar's parser runs: the text's length and its bracket nesting (strings
 * skipped), so an adversarial query is refused in linear time instead of keeping the parser busy.
 */
function checkSize(text: string): void {
  if (text.length > MAX_QUERY_CHARS) fail(`query longer than ${MAX_QUERY_CHARS} characters`);
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === "\\" && c !== "`") i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "(" || c === "[" || c === "{") {
      if (++depth > MAX_NESTING) fail(`brackets nested deeper than ${MAX_NESTING} levels`);
    } else if (c === ")" || c === "]" || c === "}") {
      // A closing bracket with none open is a syntax error anyway; counting on would let later openings nest
      // deeper than the limit.
      if (--depth < 0) fail("unbalanced brackets");
    }
  }
}

const EXPR_NODES = new Set([
  "AggregateExpr",
  "BinaryExpr",
  "FunctionCall",
  "MatrixSelector",
  "NumberDurationLiteral",
  "OffsetExpr",
  "AnchoredExpr",
  "SmoothedExpr",
  "ParenExpr",
  "StringLiteral",
  "SubqueryExpr",
  "UnaryExpr",
  "VectorSelector",
  "StepInvariantExpr",
]);

const BINARY_OPS: Record<string, BinaryOp> = {
  Pow: "^",
  Mul: "*",
  Div: "/",
  Mod: "%",
  Atan2: "atan2",
  Add: "+",
  Sub: "-",
  Eql: "==",
  Neq: "!=",
  Lte: "<=",
  Lss: "<",
  Gte: ">=",
  Gtr: ">",
  And: "and",
  Or: "or",
  Unless: "unless",
};

const MATCH_OPS: Record<string, MatchOp> = { EqlSingle: "=", Neq: "!=", EqlRegex: "=~", NeqRegex: "!~" };

const fail = (msg: string): never => {
  throw new PromQLSyntaxError(msg);
};

/** Converts lezer's tree of `text` into {@link Expr}. */
class Converter {
  constructor(readonly text: string) {}

  src(n: SyntaxNode): string {
    return this.text.slice(n.from, n.to);
  }

  /** Children without comments. */
  kids(n: SyntaxNode): SyntaxNode[] {
    const out: SyntaxNode[] = [];
    for (let c = n.firstChild; c; c = c.nextSibling) if (c.name !== "LineComment") out.push(c);
    return out;
  }

  /** Source text of a token-level node with its comments cut out. */
  tokenText(n: SyntaxNode): string {
    let out = "";
    let pos = n.from;
    for (let c = n.firstChild; c; c = c.nextSibling) {
      if (c.name !== "LineComment") continue;
      out += this.text.slice(pos, c.from);
      pos = c.to;
    }
    return out + this.text.slice(pos, n.to);
  }

  exprKids(n: SyntaxNode): SyntaxNode[] {
    return this.kids(n).filter((c) => EXPR_NODES.has(c.name));
  }

  expr(n: SyntaxNode, depth: number): Expr {
    if (depth > MAX_DEPTH) fail(`expression nested deeper than ${MAX_DEPTH} levels`);
    const d = depth + 1;
    switch (n.name) {
      case "NumberDurationLiteral":
        return this.signedNumber(n);
      case "StringLiteral":
        return { kind: "string", value: decodeStringLiteral(this.src(n)) };
      case "VectorSelector":
        return { kind: "selector", matchers: this.selector(n) };
      case "ParenExpr":
        return { kind: "paren", expr: this.expr(this.one(n), d) };
      case "MatrixSelector": {
        const [inner, range] = this.parts(n, ["expr", "DurationExpr"]);
        return { kind: "matrix", expr: this.expr(inner, d), rangeMs: this.duration(range) };
      }
      case "SubqueryExpr": {
        const ks = this.kids(n);
        const inner = ks[0];
        const durations = ks.filter((k) => k.name === "DurationExpr");
        if (!EXPR_NODES.has(inner?.name) || durations.length < 1 || durations.length > 2) {
          fail(`malformed subquery ${this.src(n)}`);
        }
        const step = durations.length === 2 ? this.duration(durations[1]) : undefined;
        return {
          kind: "subquery",
          expr: this.expr(inner, d),
          rangeMs: this.duration(durations[0]),
          ...(step === undefined ? {} : { stepMs: step }),
        };
      }
      case "OffsetExpr": {
        const [inner, , off] = this.parts(n, ["expr", "Offset", "OffsetDurationExpr"]);
        return { kind: "offset", expr: this.expr(inner, d), offsetMs: this.offsetDuration(off) };
      }
      case "StepInvariantExpr": {
        const ks = this.kids(n);
        if (ks.length < 3 || !EXPR_NODES.has(ks[0].name) || ks[1].name !== "At") fail(`malformed @ ${this.src(n)}`);
        const mod = ks[2];
        let at: number | "start" | "end";
        if (mod.name === "NumberDurationLiteral") {
          const { sign, value } = this.signedParts(mod);
          at = sign === "-" ? -value : value;
        } else if (mod.name === "AtModifierPreprocessors" && mod.firstChild?.name === "AtStart") at = "start";
        else if (mod.name === "AtModifierPreprocessors" && mod.firstChild?.name === "AtEnd") at = "end";
        else return fail(`unknown @ modifier ${this.src(mod)}`);
        return { kind: "at", expr: this.expr(ks[0], d), at };
      }
      case "UnaryExpr": {
        const [op, inner] = this.parts(n, ["UnaryOp", "expr"]);
        return { kind: "unary", op: this.src(op) === "-" ? "-" : "+", expr: this.expr(inner, d) };
      }
      case "BinaryExpr":
        return this.binary(n, d);
      case "AggregateExpr":
        return this.aggregate(n, d);
      case "FunctionCall": {
        const [id, body] = this.parts(n, ["FunctionIdentifier", "FunctionCallBody"]);
        return { kind: "call", func: this.src(id), args: this.args(body, d) };
      }
      default:
        return fail(`unsupported PromQL construct ${n.name} in ${JSON.stringify(this.src(n))}`);
    }
  }

  /** The children of `n`, which must be exactly the given node names ("expr" = any expression). */
  parts(n: SyntaxNode, names: string[]): SyntaxNode[] {
    const ks = this.kids(n);
    const ok = ks.length === names.length &&
      ks.every((k, i) => names[i] === "expr" ? EXPR_NODES.has(k.name) : k.name === names[i]);
    if (!ok) fail(`malformed ${n.name} ${JSON.stringify(this.src(n))}`);
    return ks;
  }

  one(n: SyntaxNode): SyntaxNode {
    const es = this.exprKids(n);
    if (es.length !== 1) fail(`malformed ${n.name} ${JSON.stringify(this.src(n))}`);
    return es[0];
  }

  /** Sign and value of a number literal (lezer skips whitespace and comments between the two). */
  signedParts(n: SyntaxNode): { sign: "" | "-" | "+"; value: number } {
    const text = this.tokenText(n);
    const sign = text[0] === "-" || text[0] === "+" ? text[0] : "";
    // The number token itself starts at a digit, '.' or a letter (Inf, NaN).
    const token = /[0-9.A-Za-z].*$/s.exec(text.slice(sign.length))?.[0] ?? "";
    return { sign, value: parseNumberLiteral(token) };
  }

  /** A number literal; `-5` becomes unary minus on 5, as Prometheus evaluates it. */
  signedNumber(n: SyntaxNode): Expr {
    const { sign, value } = this.signedParts(n);
    const num: Expr = { kind: "number", value };
    return sign ? { kind: "unary", op: sign, expr: num } : num;
  }

  duration(n: SyntaxNode): number {
    const ks = this.kids(n);
    if (ks.length !== 1 || ks[0].name !== "NumberDurationLiteralInDurationContext") {
      fail(`only a plain duration is supported in ${JSON.stringify(this.src(n))}`);
    }
    return parseDurationLiteral(this.src(ks[0]));
  }

  offsetDuration(n: SyntaxNode): number {
    let sign = 1;
    let cur = n;
    for (let i = 0; i < MAX_DEPTH; i++) {
      const ks = this.kids(cur);
      if (ks.length === 1 && ks[0].name === "NumberDurationLiteralInDurationContext") {
        return sign * parseDurationLiteral(this.src(ks[0]));
      }
      if (ks.length === 2 && ks[0].name === "UnaryOp" && ks[1].name === "OffsetDurationExpr") {
        if (this.src(ks[0]) === "-") sign = -sign;
        cur = ks[1];
        continue;
      }
      break;
    }
    return fail(`only a plain duration is supported in offset ${JSON.stringify(this.src(n))}`);
  }

  selector(n: SyntaxNode): LabelMatcher[] {
    const matchers: LabelMatcher[] = [];
    for (const k of this.kids(n)) {
      if (k.name === "Identifier") {
        matchers.unshift({ name: "__name__", op: "=", value: this.src(k) });
      } else if (k.name === "LabelMatchers") {
        for (const m of this.kids(k)) {
          if (m.name === "{" || m.name === "}" || m.name === ",") continue;
          if (m.name === "QuotedLabelName") {
            matchers.push({ name: "__name__", op: "=", value: this.quotedName(m) });
            continue;
          }
          if (m.name !== "UnquotedLabelMatcher" && m.name !== "QuotedLabelMatcher") {
            fail(`unexpected ${m.name} in selector ${JSON.stringify(this.src(n))}`);
          }
          const [name, op, value] = this.parts(m, [
            m.name === "UnquotedLabelMatcher" ? "LabelName" : "QuotedLabelName",
            "MatchOp",
            "StringLiteral",
          ]);
          const opName = op.firstChild?.name ?? "";
          if (!(opName in MATCH_OPS)) fail(`unknown match operator ${this.src(op)}`);
          matchers.push({
            name: name.name === "LabelName" ? this.src(name) : this.quotedName(name),
            op: MATCH_OPS[opName],
            value: decodeStringLiteral(this.src(value)),
          });
        }
      } else fail(`unexpected ${k.name} in selector ${JSON.stringify(this.src(n))}`);
    }
    return matchers;
  }

  quotedName(n: SyntaxNode): string {
    const [s] = this.parts(n, ["StringLiteral"]);
    return decodeStringLiteral(this.src(s));
  }

  labels(n: SyntaxNode): string[] {
    const out: string[] = [];
    for (const k of this.kids(n)) {
      if (k.name === "LabelName") out.push(this.src(k));
      else if (k.name === "QuotedLabelName") out.push(this.quotedName(k));
      else if (k.name !== "(" && k.name !== ")" && k.name !== ",") fail(`unexpected ${k.name} in label list`);
    }
    return out;
  }

  args(body: SyntaxNode, depth: number): Expr[] {
    const out: Expr[] = [];
    for (const k of this.kids(body)) {
      if (EXPR_NODES.has(k.name)) out.push(this.expr(k, depth));
      else if (k.name !== "(" && k.name !== ")" && k.name !== ",") fail(`unexpected ${k.name} in arguments`);
    }
    return out;
  }

  binary(n: SyntaxNode, depth: number): Expr {
    const ks = this.kids(n);
    const lhs = ks[0];
    const rhs = ks[ks.length - 1];
    const op = BINARY_OPS[ks[1]?.name];
    if (ks.length < 3 || !EXPR_NODES.has(lhs.name) || !EXPR_NODES.has(rhs.name) || !op) {
      fail(`unsupported binary expression ${JSON.stringify(this.src(n))}`);
    }
    let bool = false;
    let matching: VectorMatching | undefined;
    for (const m of ks.slice(2, -1)) {
      if (m.name === "BoolModifier" && !bool && !matching) bool = true;
      else if (m.name === "MatchingModifierClause" && !matching) matching = this.matching(m);
      else fail(`unsupported binary modifier ${JSON.stringify(this.src(m))}`);
    }
    return {
      kind: "binary",
      op,
      lhs: this.expr(lhs, depth),
      rhs: this.expr(rhs, depth),
      bool,
      ...(matching ? { matching } : {}),
    };
  }

  matching(n: SyntaxNode): VectorMatching {
    const ks = this.kids(n);
    const card = ks[0]?.name === "On" ? "on" : ks[0]?.name === "Ignoring" ? "ignoring" : undefined;
    if (!card || ks[1]?.name !== "GroupingLabels" || ks.length > 4) fail(`malformed ${this.src(n)}`);
    const m: VectorMatching = { card: card!, labels: this.labels(ks[1]) };
    if (ks.length > 2) {
      const side = ks[2].name === "GroupLeft" ? "group_left" : ks[2].name === "GroupRight" ? "group_right" : undefined;
      if (!side || (ks[3] && ks[3].name !== "GroupingLabels")) fail(`malformed ${this.src(n)}`);
      m.group = { side: side!, labels: ks[3] ? this.labels(ks[3]) : [] };
    }
    return m;
  }

  aggregate(n: SyntaxNode, depth: number): Expr {
    let op = "";
    let args: Expr[] | undefined;
    let grouping: { without: boolean; labels: string[] } | undefined;
    for (const k of this.kids(n)) {
      if (k.name === "AggregateOp" && !op) op = this.src(k).toLowerCase();
      else if (k.name === "FunctionCallBody" && !args) args = this.args(k, depth);
      else if (k.name === "AggregateModifier" && !grouping) {
        const [kw, labels] = this.parts(k, [k.firstChild?.name === "Without" ? "Without" : "By", "GroupingLabels"]);
        grouping = { without: kw.name === "Without", labels: this.labels(labels) };
      } else fail(`malformed aggregation ${JSON.stringify(this.src(n))}`);
    }
    if (!op || !args) return fail(`malformed aggregation ${JSON.stringify(this.src(n))}`);
    return { kind: "aggregate", op, args, ...(grouping ? { grouping } : {}) };
  }
}

/** First error node of the parse, if any. */
function firstError(top: SyntaxNode): SyntaxNode | undefined {
  const stack = [top];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.type.isError) return n;
    for (let c = n.firstChild; c; c = c.nextSibling) stack.push(c);
  }
  return undefined;
}

/** Parses a PromQL expression into the load balancer's tree; throws PromQLSyntaxError (a 400) otherwise. */
export function parsePromQL(text: string): Expr {
  if (text.trim() === "") fail("empty query");
  if (!text.isWellFormed()) fail("query holds a lone surrogate");
  checkSize(text);
  const top = parser.parse(text).topNode as unknown as SyntaxNode;
  const err = firstError(top);
  if (err) fail(`parse error at position ${err.from}: unexpected input in query`);
  const conv = new Converter(text);
  if (top.name !== "PromQL") fail("query does not parse as PromQL");
  const ks = conv.kids(top);
  if (ks.length !== 1 || !EXPR_NODES.has(ks[0].name)) fail("query does not parse as one PromQL expression");
  return conv.expr(ks[0], 0);
}

/** Parses a series selector (a `match[]` value, a Pyroscope label selector): one vector selector, nothing else. */
export function parseSelector(text: string): LabelMatcher[] {
  const e = parsePromQL(text);
  if (e.kind !== "selector") fail(`${JSON.stringify(text)} is not a series selector`);
  return (e as { matchers: LabelMatcher[] }).matchers;
}
