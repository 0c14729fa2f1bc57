// Writes rule groups as a Prometheus rules file: one group per block, comments above each rule, long
// expressions as YAML block scalars so the file stays readable and `promtool check rules` accepts it.

import { promDuration, type RulesFile } from "./types.ts";

/** Collapses the whitespace of an expression written over several lines into one line. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").replace(/\( /g, "(").replace(/ \)/g, ")").trim();
}

function quote(v: string): string {
  return JSON.stringify(v);
}

/** Renders a rules file as YAML text. */
export function renderRulesFile(f: RulesFile): string {
  const lines = f.header.split("\n").map((l) => (l ? `# ${l}` : "#"));
  lines.push("groups:");
  for (const g of f.groups) {
    lines.push(`  - name: ${quote(g.name)}`, `    interval: ${promDuration(g.intervalMs)}`, "    rules:");
    for (const r of g.rules) {
      for (const c of (r.comment ?? "").split("\n").filter(Boolean)) lines.push(`      # ${c}`);
      lines.push(`      - record: ${r.record}`);
      if (r.labels && Object.keys(r.labels).length) {
        lines.push("        labels:");
        for (const [k, v] of Object.entries(r.labels)) lines.push(`          ${k}: ${quote(v)}`);
      }
      const expr = r.expr.trim();
      if (expr.includes("\n") || expr.includes('"')) {
        lines.push("        expr: |-", ...expr.split("\n").map((l) => `          ${l}`.trimEnd()));
      } else lines.push(`        expr: ${quote(expr)}`);
    }
  }
  return lines.join("\n") + "\n";
}
