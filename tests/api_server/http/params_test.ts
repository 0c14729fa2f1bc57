// Query parameters: time windows (defaults, CEEMS's 15-minute rounding for /usage/current, maximum period)
// and the groupby columns of /usage/current.

import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { groupBy, timeWindow } from "../../../api_server/http/params.ts";

const Q = 900_000;

Deno.test("time window: defaults, rounding down to 15 minutes before the max-period check", () => {
  const q = (s: string) => new URLSearchParams(s);
  assertEquals(timeWindow(q("from=1000&to=2000"), 0), { fromMs: 1_000_000, toMs: 2_000_000 });
  assertEquals(timeWindow(q("from=1000&to=2000"), 0, Date.now(), Q), { fromMs: 900_000, toMs: 1_800_000 });
  const now = 1_700_000_500_000;
  const d = timeWindow(q(""), 0, now, Q);
  assertEquals([d.fromMs % Q, d.toMs % Q, d.toMs <= now, now - d.toMs < Q], [0, 0, true, true]);
  // 86,799 s asked: over a 1-day maximum as asked, within it once rounded — CEEMS checks the rounded window.
  assertEquals(timeWindow(q("from=1700000200&to=1700086999"), 86_400_000, now, Q), {
    fromMs: 1_700_000_100_000,
    toMs: 1_700_086_500_000,
  });
  assertThrows(() => timeWindow(q("from=1700000200&to=1700086999"), 86_400_000, now), /maximum query window/);
  assertThrows(() => timeWindow(q("from=x"), 0), /maximum query window|malformed|invalid groupby/);
});

Deno.test("groupby: username and project always, known columns added, others rejected", () => {
  assertEquals(groupBy(new URLSearchParams("")), []);
  assertEquals(groupBy(new URLSearchParams("groupby=cluster_id&groupby=username&groupby=cluster_id")), [
    "cluster_id",
  ]);
  assertThrows(
    () => groupBy(new URLSearchParams("groupby=uuid;DROP")),
    /maximum query window|malformed|invalid groupby/,
  );
});
