// Tests of the PromQL access analysis: selectors everywhere in the tree must be pinned to unit ids,
// CEEMS's regex-bypass queries are refused, and 10,000 seeded random queries agree with an oracle.

import { assert, assertEquals } from "../helpers/assert.ts";
import { analyseAll, analyseQuery } from "../../lb/promql_access.ts";
import { QueryGenerator } from "./promql_gen.ts";

const ok = (q: string) => analyseQuery(q);
const units = (q: string) => {
  const a = analyseQuery(q);
  if (!a.ok) throw new Error(`refused ${q}: ${a.reason}`);
  return a.units.sort();
};
const refused = (q: string, status: 400 | 403 = 403) => {
  const a = analyseQuery(q);
  assert(!a.ok, `expected refusal of ${q}`);
  assertEquals(a.status, status, `${q}: ${a.reason}`);
  return a.reason;
};

Deno.test("analyseQuery collects the unit ids of every selector", () => {
  assertEquals(units('a{uuid="1001"}'), ["1001"]);
  assertEquals(units('rate(a{uuid=~"1001|1002"}[5m]) / on(uuid) b{uuid="1003"}'), ["1001", "1002", "1003"]);
  assertEquals(units("sum by (uuid) (a{uuid=`x-1`}) > 1"), ["x-1"]);
  assertEquals(units("max_over_time(a{uuid='7'}[1h:1m] offset 5m @ end())"), ["7"]);
  assertEquals(units('{__name__="a", uuid="9"}'), ["9"]);
  assertEquals(units('label_replace(a{uuid="1"}, "host", "$1", "hostname", "(.*)")'), ["1"]);
  assertEquals(units("vector(1) + time()"), []);
  assertEquals(units('a{uuid="1001", gpuuuid="x"} # comment uuid="2001"'), ["1001"]);
  // Escapes are decoded as Prometheus decodes them; the printed query carries the decoded value.
  assertEquals(units('a{uuid="\\x31001"}'), ["1001"]);
  assertEquals(units("a{uuid='\\u0032001'}"), ["2001"]);
});

Deno.test("analyseQuery refuses the queries CEEMS's regex lets through", () => {
  // CEEMS stops at the first uuid matcher of a line: both checks below passed its filter.
  assertEquals(units('a{uuid="mine"} + b{uuid="theirs"}'), ["mine", "theirs"]); // ownership then refuses
  assertEquals(ok('a{uuid="mine"} or b').ok, false);
  assertEquals(ok('a{uuid="mine"} or on() node_load1').ok, false);
  assertEquals(ok('a{uuid="mine"} unless b{hostname="x"}').ok, false);
});

Deno.test("analyseQuery refuses unpinned selectors and unit-label forgery with a reason", () => {
  assertEquals(refused("node_load1"), "selector node_load1 has no uuid matcher");
  refused('a{uuid=~".+"}');
  refused('a{uuid=~"100.*"}');
  refused('a{uuid!="x"}');
  refused('a{uuid!~"x"}');
  refused('a{uuid=""}');
  refused('a{uuid=~"1001|"}');
  refused('a{uuid=~"(1001)"}');
  refused('a{uuid="1001", uuid!="2"}');
  refused('{__name__=~".+"}');
  refused('a{gpuuuid="1001"}');
  refused('a{uuid="1"} + on() group_left sum(rate(b[5m]))');
  refused('max_over_time((a{uuid="1"} or b)[5m:1m])');
  refused('label_replace(a{uuid="1"}, "uuid", "2001", "", "")');
  refused("label_replace(a{uuid=\"1\"}, 'uuid', '2001', '', '')");
  refused('label_join(a{uuid="1"}, "uuid", ",", "hostname")');
  refused('count_values("uuid", a{uuid="1"})');
  refused('topk(scalar(b), a{uuid="1"})');
  refused('a{uuid="1"} @ start() offset 5m and absent(b)');
});

Deno.test("analyseQuery answers 400 to queries that do not parse", () => {
  refused('a{uuid="1"', 400);
  refused("foo(a)", 400);
  refused("sum(", 400);
  refused('a{uuid="1"} +', 400);
  refused("", 400);
  refused("   ", 400);
});

Deno.test("analyseAll merges match[] expressions and stops at the first refusal", () => {
  const a = analyseAll(['a{uuid="1"}', '{uuid=~"2|3"}']);
  assert(a.ok);
  assertEquals(a.units.sort(), ["1", "2", "3"]);
  assertEquals(analyseAll(['a{uuid="1"}', "b"]).ok, false);
  const p = analyseQuery('{service_name="1001", span_name="x"}', "service_name");
  assert(p.ok);
  assertEquals(p.units, ["1001"]);
  assertEquals(analyseQuery('{service_name=~".+"}', "service_name").ok, false);
});

Deno.test("10,000 seeded random queries: the analyser grants exactly what the generator's oracle calls safe", () => {
  const own = ["1001", "1002"];
  const foreign = ["2001", "2002", "3001"];
  const gen = new QueryGenerator(20261127, own, foreign);
  let granted = 0;
  let refusedCount = 0;
  let unparsable = 0;
  for (let i = 0; i < 10_000; i++) {
    const { query, safe } = gen.next();
    const a = analyseQuery(query);
    if (!a.ok && a.status === 400) {
      unparsable++; // refused as unparseable: safe whatever the oracle says
      continue;
    }
    const allowed = a.ok && a.units.every((u) => own.includes(u));
    if (allowed !== safe) {
      throw new Error(`query ${i}: analyser ${allowed ? "grants" : "refuses"} but oracle says ${safe}: ${query}
${a.ok ? `units ${a.units}` : a.reason}`);
    }
    if (allowed) granted++;
    else refusedCount++;
  }
  // Both outcomes must be well represented for the comparison to mean something.
  assert(granted > 1000, `only ${granted} granted`);
  assert(refusedCount > 1000, `only ${refusedCount} refused`);
  assert(unparsable < 100, `${unparsable} generated queries do not parse`);
  console.log(`random queries: ${granted} granted, ${refusedCount} refused, ${unparsable} unparseable`);
});
