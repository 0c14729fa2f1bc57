// Prints the load balancer's PromQL tree as the canonical query it forwards: tokens in source order,
// one space between them, no comments, ASCII only, every literal in one spelling both lexers read alike.

import type { Expr, LabelMatcher } from "./ast.ts";
import { formatDuration, formatLabelName, formatNumber, isPrintableMetricName, quoteString } from "./literals.ts";

function matcher(m: LabelMatcher): string {
  return `${formatLabelName(m.name)}${m.op}${quoteString(m.value)}`;
}

/** A selector: `name{…}` when the name can stand bare, else everything inside braces. */
export function printSelector(matchers: LabelMatcher[]): string {
  const [first, ...rest] = matchers;
  if (first && first.name === "__name__" && first.op === "=" && isPrintableMetricName(first.value)) {
    return rest.length ? `${first.value}{${rest.map(matcher).join(", ")}}` : first.value;
  }
  return `{${matchers.map(matcher).join(", ")}}`;
}

const labelList = (labels: string[]) => `(${labels.map(formatLabelName).join(", ")})`;

/** The canonical text of `e`. Parsing it again gives the same tree. */
export function printExpr(e: Expr): string {
  switch (e.kind) {
    case "number":
      return formatNumber(e.value);
    case "string":
      return quoteString(e.value);
    case "selector":
      return printSelector(e.matchers);
    case "matrix":
      return `${printExpr(e.expr)}[${formatDuration(e.rangeMs)}]`;
    case "subquery":
      return `${printExpr(e.expr)}[${formatDuration(e.rangeMs)}:${
        e.stepMs === undefined ? "" : formatDuration(e.stepMs)
      }]`;
    case "offset":
      return `${printExpr(e.expr)} offset ${formatDuration(e.offsetMs)}`;
    case "at":
      return `${printExpr(e.expr)} @ ${typeof e.at === "number" ? formatNumber(e.at) : `${e.at}()`}`;
    case "paren":
      return `(${printExpr(e.expr)})`;
    case "unary": {
      const inner = printExpr(e.expr);
      return /^[+-]/.test(inner) ? `${e.op} ${inner}` : `${e.op}${inner}`;
    }
    case "binary": {
      let mods = e.bool ? " bool" : "";
      if (e.matching) {
        mods += ` ${e.matching.card}${labelList(e.matching.labels)}`;
        if (e.matching.group) mods += ` ${e.matching.group.side}${labelList(e.matching.group.labels)}`;
      }
      return `${printExpr(e.lhs)} ${e.op}${mods} ${printExpr(e.rhs)}`;
    }
    case "aggregate": {
      const grouping = e.grouping ? ` ${e.grouping.without ? "without" : "by"} ${labelList(e.grouping.labels)} ` : "";
      return `${e.op}${grouping}(${e.args.map(printExpr).join(", ")})`;
    }
    case "call":
      return `${e.func}(${e.args.map(printExpr).join(", ")})`;
  }
}
