// Tests of the exposition writer: its output must equal prom-client's rendering of the same families
// (escaping, missing labels, duplicate label sets, special values), which it replaces on the scrape path.

import { FamilySink, labelHash, renderFamilies } from "../../../collectors/framework/metric_sink.ts";
import { renderFamiliesWithPromClient } from "../../helpers/prom_client_render.ts";
import { assertEquals } from "../../helpers/assert.ts";

Deno.test("renderFamilies writes exactly what prom-client writes", async () => {
  const s = new FamilySink();
  s.gauge("g_one", "Help with \\ backslash\nand newline", { a: "x", b: 'q"uo\\te\nnl' }, 1.5);
  s.gauge("g_one", "Help with \\ backslash\nand newline", { a: "y" }, 4098592768);
  s.gauge("g_one", "Help with \\ backslash\nand newline", { a: "y" }, 7); // same label set: last wins
  s.gauge("g_special", "special", {}, Infinity);
  s.gauge("g_special2", "special", { k: "v" }, -Infinity);
  s.gauge("g_small", "small", { k: "v" }, 0.000001);
  s.counter("c_total", "counter", { k: "v" }, 3);
  s.counter("c_total", "counter", { k: "v" }, 4); // same label set: added
  s.counter("c_total", "counter", { k: "w" }, -2); // never negative
  s.gauge("g_big", "big", { k: "v" }, 9223372036854771712);
  const ours = await renderFamilies(s.families.values());
  const ref = await renderFamiliesWithPromClient(s.families.values());
  assertEquals(ours, ref);
});

Deno.test("renderFamilies folds equal label sets apart from hash collisions, as prom-client does", async () => {
  // Two different uuids with the same 30-bit label hash (found by search), interleaved with true duplicates.
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair; i++) {
    const u = `job${i}`;
    const h = labelHash({ uuid: u }, ["uuid"]);
    const other = seen.get(h);
    if (other !== undefined) pair = [other, u];
    else seen.set(h, u);
  }
  const [a, b] = pair;
  assertEquals(labelHash({ uuid: a }, ["uuid"]), labelHash({ uuid: b }, ["uuid"]));
  const s = new FamilySink();
  for (const [u, v] of [[a, 1], [b, 2], [a, 3], [b, 4], ["other", 5], [b, 6]] as const) {
    s.gauge("g", "gauge", { uuid: u }, v);
    s.counter("c_total", "counter", { uuid: u }, v);
  }
  const ours = await renderFamilies(s.families.values());
  assertEquals(ours, await renderFamiliesWithPromClient(s.families.values()));
  assertEquals(ours.includes(`g{uuid="${a}"} 3\n`) && ours.includes(`g{uuid="${b}"} 6\n`), true);
  assertEquals(ours.includes(`c_total{uuid="${b}"} 12\n`), true);
});
