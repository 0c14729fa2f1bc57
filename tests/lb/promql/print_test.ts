// Tests of the PromQL printer: parse(print(tree)) equals tree for the corpus and 10,000 generated
// queries, printed text is canonical ASCII without comments, and constructs print as Prometheus reads them.

import { assert, assertEquals, assertThrows } from "../../helpers/assert.ts";
import { parsePromQL, parseSelector } from "../../../lb/promql/parse.ts";
import { printExpr } from "../../../lb/promql/print.ts";
import { ALLOWED_QUERIES, DENIED_QUERIES, LEXER_TRICKS } from "../corpus.ts";
import { QueryGenerator } from "../promql_gen.ts";

/** Printable ASCII only: no comment, no line break, no Unicode space, nothing either lexer might read apart. */
const CANONICAL = /^[\x20-\x22\x24-\x7e]*$/;

/** Round-trips one query; returns false when it does not parse (nothing to round-trip). */
function roundTrip(q: string): boolean {
  let tree;
  try {
    tree = parsePromQL(q);
  } catch {
    return false;
  }
  const printed = printExpr(tree);
  assert(CANONICAL.test(printed), `${JSON.stringify(q)} printed as non-canonical ${JSON.stringify(printed)}`);
  assertEquals(parsePromQL(printed), tree, `${JSON.stringify(q)} printed as ${JSON.stringify(printed)}`);
  assertEquals(printExpr(parsePromQL(printed)), printed);
  return true;
}

Deno.test("printer round trip: parse(print(tree)) equals tree for every corpus query that parses", () => {
  const corpus = [...DENIED_QUERIES, ...ALLOWED_QUERIES.map(([q]) => q), ...LEXER_TRICKS];
  let parsed = 0;
  for (const q of corpus) if (roundTrip(q)) parsed++;
  assert(parsed >= corpus.length - 10, `only ${parsed} of ${corpus.length} corpus queries parse`);
  console.log(`corpus round trip: ${parsed} of ${corpus.length} queries parse and round-trip`);
});

Deno.test("printer round trip: 10,000 generated queries", () => {
  const gen = new QueryGenerator(20261204, ["1001", "1002"], ["2001", "2002", "3001"]);
  let parsed = 0;
  for (let i = 0; i < 10_000; i++) if (roundTrip(gen.next().query)) parsed++;
  assert(parsed > 9_900, `only ${parsed} generated queries parse`);
  console.log(`generated round trip: ${parsed} of 10000 queries parse and round-trip`);
});

const print = (q: string) => printExpr(parsePromQL(q));

Deno.test("printer: comments, whitespace and literal spellings become one canonical form", () => {
  const cases: [string, string][] = [
    ['a{uuid="1"} # x\r or b', 'a{uuid="1"}'],
    ["# c\na{uuid = '1' , }\t+\n\n1", 'a{uuid="1"} + 1'],
    ['a{uuid="\\x31\\u0030\\U00000030\\061"}', 'a{uuid="1001"}'],
    ["a{x=`\\d+\n`}", 'a{x="\\\\d+\\x0a"}'],
    ['a{x="é\u2028😀\\a\\v\\""}', 'a{x="\\u00e9\\u2028\\U0001f600\\x07\\x0b\\""}'],
    ["sum{uuid='1'}", '{__name__="sum", uuid="1"}'],
    ["Sum", '{__name__="Sum"}'],
    ["by", '{__name__="by"}'],
    ["rate", "rate"],
    ['{"a.b", "c d"="e"}', '{__name__="a.b", "c d"="e"}'],
    ['{__name__="up", job="x"}', 'up{job="x"}'],
    ["0x1F + 010 + 09 + 1e3 + .5 + 1E-7", "31 + 8 + 9 + 1000 + 0.5 + 1e-7"],
    ["INF - -inf + nan + +NaN", "Inf - -Inf + NaN + +NaN"],
    ["- - 1", "- -1"],
    ["a[1m30s] offset -90s @ end()", "a[1m30s] offset -1m30s @ end()"],
    ["a[7d] offset 1y", "a[1w] offset 1y"],
    ["a[300000ms:1000ms]", "a[5m:1s]"],
    ["a[5m:] @ -1.5", "a[5m:] @ -1.5"],
    ["sum(a) BY (x,y)", "sum by (x, y) (a)"],
    ["count_values without() ('v', a)", 'count_values without () ("v", a)'],
    ["a / ON(x) Group_Left b", "a / on(x) group_left() b"],
    ["a > BOOL ignoring (y) group_right (z) b", "a > bool ignoring(y) group_right(z) b"],
    ["a AND b OR c UNLESS d", "a and b or c unless d"],
    ["a atan2 b", "a atan2 b"],
    ["(a + b) * -c ^ 2", "(a + b) * -c ^ 2"],
  ];
  for (const [q, want] of cases) assertEquals(print(q), want, JSON.stringify(q));
});

Deno.test("parser refuses what it cannot print faithfully, with a reason", () => {
  const bad: [string, RegExp][] = [
    ['a{x="\\q"}', /unknown escape/],
    ["a{x='\\\"'}", /unknown escape/],
    ['a{x="\\uD800"}', /invalid Unicode/],
    ['a{x="\\xff"}', /not valid UTF-8/],
    ['a{x="\\400"}', /out of range/],
    ['a{x="abc', /parse error|unterminated/],
    ["1_000", /invalid number/],
    ["0xFFFFFFFFFFFFFFFF", /out of range/],
    ["1e400", /out of range/],
    ["a > 5m", /duration 5m where a number/],
    ["a[300]", /not a duration with units/],
    ["a[1m+1m]", /plain duration/],
    ["a offset (5m)", /plain duration/],
    ["a[5m] anchored", /unsupported PromQL construct AnchoredExpr/],
    ["a + fill(0) b", /unsupported binary modifier/],
    ["a </ b", /parse error|unsupported binary/],
    ["(".repeat(600) + "a" + ")".repeat(600), /nested deeper/],
    ["", /empty query/],
  ];
  for (const [q, re] of bad) assertThrows(() => parsePromQL(q), re);
  assertEquals(parseSelector('{a="b"}'), [{ name: "a", op: "=", value: "b" }]);
  assertThrows(() => parseSelector('sum({a="b"})'), /not a series selector/);
});
