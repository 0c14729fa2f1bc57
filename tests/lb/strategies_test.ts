// Tests of backend selection (round-robin, least-connection, resource-based), retention parsing
// and the pool's TCP health checks against a listening and a closed port.

import { assertEquals } from "../helpers/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { Backend, parseRetention } from "../../lb/backend.ts";
import { ServerPool } from "../../lb/pool.ts";
import { leastConnection, resourceBased, roundRobin } from "../../lb/strategies.ts";
import { freePort } from "../helpers/process.ts";

const mk = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => new Backend({ url: `http://127.0.0.1:${10000 + i}`, client: {}, filterLabels: [] }),
  );

Deno.test("round-robin rotates over live backends and skips dead and excluded ones", () => {
  const bs = mk(3);
  const rr = roundRobin();
  assertEquals([0, 1, 2, 3].map(() => bs.indexOf(rr(bs, {})!)), [0, 1, 2, 0]);
  bs[2].alive = false;
  assertEquals([0, 1, 2].map(() => bs.indexOf(rr(bs, {})!)), [1, 0, 1]);
  assertEquals(bs.indexOf(rr(bs, { exclude: new Set([bs[0]]) })!), 1);
  for (const b of bs) b.alive = false;
  assertEquals(rr(bs, {}), undefined);
});

Deno.test("least-connection picks the live backend with the fewest requests in flight", () => {
  const bs = mk(3);
  const lc = leastConnection();
  bs[0].active = 4;
  bs[1].active = 2;
  bs[2].active = 1;
  assertEquals(lc(bs, {}), bs[2]);
  bs[2].alive = false;
  assertEquals(lc(bs, {}), bs[1]);
  assertEquals(lc(bs, { exclude: new Set([bs[1]]) }), bs[0]);
});

Deno.test("resource-based picks a backend whose retention covers the query start", () => {
  const now = 1_000_000_000_000;
  const bs = mk(3);
  bs[0].retentionMs = 3600e3; // 1 h
  bs[1].retentionMs = 30 * 86400e3; // 30 d
  bs[2].retentionMs = 7 * 86400e3; // 7 d
  const rb = resourceBased(() => now);
  bs[1].active = 5;
  assertEquals(rb(bs, { queryStartMs: now - 1800e3 }), bs[0]); // all cover it: least connections
  assertEquals(rb(bs, { queryStartMs: now - 3 * 86400e3 }), bs[2]);
  assertEquals(rb(bs, { queryStartMs: now - 10 * 86400e3 }), bs[1]);
  assertEquals(rb(bs, { queryStartMs: now - 100 * 86400e3 }), bs[1]); // none covers: longest retention
  assertEquals(rb(bs, {}), bs[0]);
});

Deno.test("parseRetention reads Prometheus retention texts", () => {
  assertEquals(parseRetention("15d"), 15 * 86400e3);
  assertEquals(parseRetention("1y2w"), 365 * 86400e3 + 14 * 86400e3);
  assertEquals(parseRetention("10d or 5GiB"), 10 * 86400e3);
  assertEquals(parseRetention("5GiB"), undefined);
});

Deno.test("health checks mark a closed port down and a listening one up", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const c of listener) c.close();
  })();
  const pool = new ServerPool("round-robin", nullLogger);
  const up = pool.add("c", {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    client: {},
    filterLabels: [],
  });
  const down = pool.add("c", { url: `http://127.0.0.1:${freePort()}`, client: {}, filterLabels: [] });
  try {
    up.alive = false;
    await pool.checkHealth(2000);
    assertEquals([up.alive, down.alive], [true, false]);
    assertEquals(pool.pick("c"), up);
    assertEquals(pool.pick("c"), up);
    assertEquals(pool.pick("other"), undefined);
  } finally {
    pool.stop();
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("probeRetention reads storageRetention from a real Prometheus", async () => {
  const { startPrometheus } = await import("../helpers/prometheus_server.ts");
  const prom = await startPrometheus({ args: ["--storage.tsdb.retention.time=21d"] });
  const b = new Backend({ url: prom.url, client: {}, filterLabels: [] });
  try {
    await b.probeRetention();
    assertEquals(b.retentionMs, 21 * 86400e3);
  } finally {
    b.client.close();
    await prom.stop();
  }
});
