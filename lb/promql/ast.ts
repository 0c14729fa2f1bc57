// The PromQL syntax tree the load balancer checks and prints: one node type per construct, values
// decoded (strings unescaped, numbers and durations parsed), so what is checked is what is printed.

/** Label matcher operators. */
export type MatchOp = "=" | "!=" | "=~" | "!~";

/** One label matcher; a selector's metric name is the matcher `__name__="<name>"` placed first. */
export interface LabelMatcher {
  name: string;
  op: MatchOp;
  value: string;
}

/** Binary operators, as Prometheus spells them. */
export type BinaryOp =
  | "^"
  | "*"
  | "/"
  | "%"
  | "atan2"
  | "+"
  | "-"
  | "=="
  | "!="
  | "<="
  | "<"
  | ">="
  | ">"
  | "and"
  | "or"
  | "unless";

/** Vector matching of a binary expression: `on(...)`/`ignoring(...)` and `group_left/right(...)`. */
export interface VectorMatching {
  card: "on" | "ignoring";
  labels: string[];
  group?: { side: "group_left" | "group_right"; labels: string[] };
}

/** A syntax tree node. */
export type Expr =
  | { kind: "number"; value: number }
  | { kind: "string"; value: string }
  | { kind: "selector"; matchers: LabelMatcher[] }
  | { kind: "matrix"; expr: Expr; rangeMs: number }
  | { kind: "subquery"; expr: Expr; rangeMs: number; stepMs?: number }
  | { kind: "offset"; expr: Expr; offsetMs: number }
  | { kind: "at"; expr: Expr; at: number | "start" | "end" }
  | { kind: "paren"; expr: Expr }
  | { kind: "unary"; op: "-" | "+"; expr: Expr }
  | { kind: "binary"; op: BinaryOp; lhs: Expr; rhs: Expr; bool: boolean; matching?: VectorMatching }
  | { kind: "aggregate"; op: string; args: Expr[]; grouping?: { without: boolean; labels: string[] } }
  | { kind: "call"; func: string; args: Expr[] };

/** Calls `visit` on `expr` and every node below it, parents first. */
export function walk(expr: Expr, visit: (e: Expr) => void): void {
  const stack: Expr[] = [expr];
  while (stack.length) {
    const e = stack.pop()!;
    visit(e);
    switch (e.kind) {
      case "matrix":
      case "subquery":
      case "offset":
      case "at":
      case "paren":
      case "unary":
        stack.push(e.expr);
        break;
      case "binary":
        stack.push(e.rhs, e.lhs);
        break;
      case "aggregate":
      case "call":
        for (let i = e.args.length - 1; i >= 0; i--) stack.push(e.args[i]);
        break;
    }
  }
}
