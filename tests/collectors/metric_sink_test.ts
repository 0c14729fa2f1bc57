// Tests of the exposition writer: its output must equal prom-client's rendering of the same families
// (escaping, missing labels, duplicate label sets, special values), which it replaces on the scrape path.

import { FamilySink, renderFamilies } from "../../collectors/metric_sink.ts";
import { renderFamiliesWithPromClient } from "../helpers/prom_client_render.ts";
import { assertEquals } from "../helpers/assert.ts";

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
