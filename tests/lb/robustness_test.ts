// Robustness of the load balancer against any user with a user header: huge alternations, deep nesting,
// oversized bodies, long user names and cache growth get a 4xx and a bounded cost, never a 5xx or a stall.

import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { CachedOwnership, type OwnershipChecker } from "../../lb/ownership.ts";
import { analyseQuery } from "../../lb/promql_access.ts";
import { QueryAnalyser } from "../../lb/query_analyser.ts";
import { CLUSTER, type LbStack, startLbStack } from "./fixtures.ts";

const Q = "/api/v1/query";

async function post(stack: LbStack, body: string | ReadableStream<Uint8Array>, user = "alice") {
  const r = await fetch(stack.lbUrl + Q, {
    method: "POST",
    headers: {
      "X-Grafana-User": user,
      "X-Ceems-Cluster-Id": CLUSTER,
      "content-type": "application/x-www-form-urlencoded",
    },
    body,
  });
  return { status: r.status, text: await r.text() };
}

const form = (query: string) => `query=${encodeURIComponent(query)}`;

Deno.test({
  name: "lb robustness: big alternations, deep nesting, large queries, large bodies, long user names",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const stack = await startLbStack();
    try {
      await t.step("an alternation of 130,000 branches is a 400, not a 500", async () => {
        const r = await post(stack, form(`ceems_cpu_usage{uuid=~"${Array(130_000).fill("1001").join("|")}"}`));
        assertEquals(r.status, 400, r.text);
        const many = Array.from({ length: 10_001 }, (_, i) => `u${i}`).join("|");
        const r2 = await post(stack, form(`ceems_cpu_usage{uuid=~"${many}"}`));
        assertEquals(r2.status, 400, r2.text);
        assert(r2.text.includes("more than 10000 uuid values"), r2.text);
      });

      await t.step("values an ownership API might split (commas, spaces) are refused", async () => {
        for (const v of ["1001,1002", " 1001", "1001,", "1001 1002"]) {
          const r = await post(stack, form(`ceems_cpu_usage{uuid="${v}"}`));
          assertEquals(r.status, 403, `${v}: ${r.text}`);
          // Refused by the value check itself, not merely found unowned.
          assertMatch(r.text, /is not a uuid value/);
        }
      });

      await t.step("deep nesting is refused before the grammar's parser runs", async () => {
        // Balanced and under the length limit, so only the nesting check can refuse them; one leads with
        // closing brackets, which must not buy extra depth.
        const cases: [string, RegExp][] = [
          ["abs(".repeat(5_000) + 'a{uuid="1001"}' + ")".repeat(5_000), /nested deeper than 64 levels/],
          ["(".repeat(70) + "1" + ")".repeat(70), /nested deeper than 64 levels/],
          [")".repeat(450) + "(".repeat(510) + "1", /unbalanced brackets/],
          [")".repeat(30_000) + "abs(".repeat(15_000) + 'a{uuid="1001"}' + ")".repeat(15_000), /unbalanced brackets/],
        ];
        for (const [q, reason] of cases) {
          const t0 = performance.now();
          const r = await post(stack, form(q));
          assertEquals(r.status, 400, r.text.slice(0, 200));
          assertMatch(r.text, reason);
          assert(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
        }
      });

      await t.step("large queries are analysed off the event loop", async () => {
        // 7,000 matchers (about 100 KB): the grammar's parser takes tens of ms on such text.
        const big = `ceems_cpu_usage{uuid="1001", ${Array(7_000).fill('hostname!="x"').join(", ")}}`;
        const statuses = await Promise.all(Array.from({ length: 4 }, () => post(stack, form(big))));
        assertEquals(statuses.map((r) => r.status), [200, 200, 200, 200]);
        // The event loop's share of one analysis: handing the query to the worker, against doing it inline.
        const analyser = new QueryAnalyser();
        try {
          await analyser.analyse([big], "uuid"); // the worker is up
          const t0 = performance.now();
          const pending = analyser.analyse([big], "uuid");
          const handOff = performance.now() - t0;
          assert((await pending).ok);
          const t1 = performance.now();
          assert(analyseQuery(big).ok);
          const inline = performance.now() - t1;
          assert(handOff < inline / 4, `hand-off ${handOff.toFixed(2)} ms vs ${inline.toFixed(1)} ms inline`);
          console.log(`large query: ${handOff.toFixed(2)} ms on the event loop, ${inline.toFixed(1)} ms if inline`);
        } finally {
          analyser.close();
        }
      });

      await t.step("a body over 4 MiB is a 413 without being read whole", async () => {
        const declared = await fetch(stack.lbUrl + Q, {
          method: "POST",
          headers: {
            "X-Grafana-User": "alice",
            "X-Ceems-Cluster-Id": CLUSTER,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: "query=" + "x".repeat(5 << 20),
        });
        assertEquals(declared.status, 413);
        await declared.body?.cancel();
        // Streamed without a length: the LB stops reading at the limit, long before the 64 MiB are sent.
        let sent = 0;
        const chunk = new Uint8Array(1 << 20).fill(0x61);
        const stream = new ReadableStream<Uint8Array>({
          pull(ctrl) {
            if (sent >= 64 << 20) return ctrl.close();
            sent += chunk.length;
            ctrl.enqueue(chunk);
          },
        });
        const r = await post(stack, stream).catch((e) => ({ status: 0, text: String(e) }));
        assert(r.status === 413 || r.status === 0, `${r.status} ${r.text.slice(0, 100)}`);
        assert(sent < 64 << 20, `the whole body was read (${sent} bytes)`);
        const ok = await post(stack, form('ceems_cpu_usage{uuid="1001"}'));
        assertEquals(ok.status, 200);
      });

      await t.step("user names are bounded; the service account is no user", async () => {
        let r = await post(stack, form('ceems_cpu_usage{uuid="1001"}'), "a".repeat(300));
        assertEquals(r.status, 400);
        r = await post(stack, form("up"), "ceems-int-svc");
        assertEquals(r.status, 403);
        assert(r.text.includes("reserved"), r.text);
      });
    } finally {
      await stack.close();
    }
  },
});

Deno.test("CachedOwnership stays bounded: expired entries are swept and each map is capped", async () => {
  const inner: OwnershipChecker = {
    owns: (user) => Promise.resolve(user.startsWith("ok")),
    isAdmin: (user) => Promise.resolve(user === "admin"),
    clusterIds: () => Promise.resolve([]),
    close: () => {},
  };
  let now = 0;
  const cache = new CachedOwnership(inner, 1_000, () => now);
  for (let i = 0; i < 120_000; i++) await cache.isAdmin(`user-${i}`);
  assert(cache.size <= 50_000, `${cache.size} entries after 120,000 distinct users`);
  // Large refused sets are not cached (their keys would be as large as the set).
  const big = Array.from({ length: 1_000 }, (_, i) => `u${i}`);
  const before = cache.size;
  assert(!(await cache.owns("nobody-owns", CLUSTER, big)));
  assertEquals(cache.size, before);
  // Once expired, entries go at the next sweep (every 1,024 insertions).
  now = 5_000;
  for (let i = 0; i < 1_024; i++) await cache.owns(`ok-${i}`, CLUSTER, ["1"]);
  assertEquals(cache.size, 1_024);
});
