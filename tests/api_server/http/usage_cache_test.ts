// /usage/current result cache: 15-minute TTL, bounded size, keys that ignore parameter order and sub-15-minute
// differences of from/to but never share rows between users.

import { assert, assertEquals } from "../../helpers/assert.ts";
import { roundDown, UsageCache, usageCacheKey } from "../../../api_server/http/usage_cache.ts";

Deno.test("usage cache: entries live 15 minutes and the oldest go first when full", () => {
  const c = new UsageCache(undefined, 2);
  const t = 1_000_000;
  c.set("a", [{ x: 1 }], t);
  assertEquals(c.get("a", t + 15 * 60_000 - 1)?.rows, [{ x: 1 }]);
  assertEquals(c.get("a", t + 15 * 60_000 - 1)?.expiresAt, t + 15 * 60_000);
  assertEquals(c.get("a", t + 15 * 60_000), undefined, "expired at the TTL");
  c.set("a", [], t);
  c.set("b", [], t);
  c.set("c", [], t);
  assertEquals(c.size, 2);
  assertEquals(c.get("a", t), undefined, "the oldest entry was dropped");
  assert(c.get("c", t));
});

Deno.test("usage cache keys: canonical parameters, rounded window, per user scope", () => {
  const w = { fromMs: roundDown(1_700_000_123_000), toMs: roundDown(1_700_003_999_000) };
  assertEquals(w.fromMs % 900_000, 0);
  assert(w.fromMs <= 1_700_000_123_000 && 1_700_000_123_000 - w.fromMs < 900_000);
  const q1 = new URLSearchParams("cluster_id=a&field=num_units&from=1700000123&to=1700003999");
  const q2 = new URLSearchParams("to=1700003000&field=num_units&from=1700000001&cluster_id=a");
  assertEquals(usageCacheKey("/usage/current", q1, w, ["u1"]), usageCacheKey("/usage/current", q2, w, ["u1"]));
  assert(usageCacheKey("/usage/current", q1, w, ["u1"]) !== usageCacheKey("/usage/current", q1, w, ["u2"]));
  assert(usageCacheKey("/usage/current", q1, w, undefined) !== usageCacheKey("/usage/current", q1, w, ["u1"]));
  const q3 = new URLSearchParams("cluster_id=a&field=num_units&groupby=cluster_id");
  assert(usageCacheKey("/usage/current", q1, w, ["u1"]) !== usageCacheKey("/usage/current", q3, w, ["u1"]));
});
