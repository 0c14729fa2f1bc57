// Reads off the event loop: the reader threads answer what the in-thread reader answers, stream large
// answers with backpressure, and a user's request is not held up by an admin's expensive query.

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { generateApiDb } from "../../helpers/api_db.ts";
import { nullLogger } from "../../../common/log.ts";
import { ReadPool } from "../../../api_server/http/read_pool.ts";
import { InlineReader } from "../../../api_server/http/reader.ts";
import type { ReadRequest } from "../../../api_server/http/routes.ts";
import { ReadQueries } from "../../../api_server/storage/read_queries.ts";

const DAY = 86_400_000;
const NOW = Date.parse("2026-03-01T00:00:00Z");

const req = (path: string, search: string, user = "admin", configAdmin = true): ReadRequest => ({
  path,
  search,
  user,
  configAdmin,
  maxQueryPeriodMs: 0,
  nowMs: NOW,
});

async function text(body: string | ReadableStream<Uint8Array>): Promise<string> {
  return typeof body === "string" ? body : await new Response(body).text();
}

Deno.test("reader threads: same answers as the in-thread reader; a user is not held up by an admin's query", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-readpool-" });
  const g = generateApiDb(join(dir, "data"), { units: 60_000, now: NOW });
  const conn = new DatabaseSync(g.dbPath, { readOnly: true });
  const inline = new InlineReader(new ReadQueries(conn));
  const pool = new ReadPool({ dbPath: g.dbPath, logger: nullLogger });
  const window = `from=${(NOW - 180 * DAY) / 1000}&to=${NOW / 1000}`;
  try {
    await t.step("answers match, small (whole) and large (streamed)", async () => {
      for (
        const [path, search, user] of [
          ["/units", `?${window}`, g.user],
          ["/units/admin", `?${window}&field=uuid&field=username`, "admin"],
          ["/usage/current/admin", `?from=${(NOW - 2 * DAY) / 1000}&to=${NOW / 1000}`, "admin"],
          ["/units/verify", `?uuid=${g.uuids.join(",")}`, g.user],
          ["/stats/global/admin", "", "admin"],
          ["/units", "?timezone=Mars", g.user],
        ]
      ) {
        const r = req(path, search, user);
        const a = await pool.read(r, path.endsWith("admin") ? "admin" : "user");
        const b = await inline.read(r);
        assertEquals(a.status, b.status, path);
        const body = await text(a.body);
        assertEquals(body, b.body, path);
        if (path === "/units/admin") assert(typeof a.body !== "string" && body.length > 1e6, "a large answer streams");
      }
    });

    await t.step("an admin's 180-day /units/admin in progress delays a user's /units by milliseconds", async () => {
      const admin = await pool.read(req("/units/admin", `?${window}`), "admin");
      assert(typeof admin.body !== "string");
      const reading = admin.body.getReader();
      // Read the admin answer slowly while users ask: the user's reader thread never waits for it.
      let adminBytes = 0;
      let slow = true;
      const drain = (async () => {
        for (;;) {
          const { done, value } = await reading.read();
          if (done) return;
          adminBytes += value.length;
          if (slow) await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const lat: number[] = [];
      for (let i = 0; i < 30; i++) {
        const t0 = performance.now();
        const u = await pool.read(req("/units", `?${window}`, g.user, false), "user");
        assertEquals(u.status, 200);
        await text(u.body);
        lat.push(performance.now() - t0);
      }
      slow = false;
      await drain;
      lat.sort((a, b) => a - b);
      assert(adminBytes > 30e6, `admin answer ${adminBytes} bytes`);
      // Generous bound (shared 2-core CI machines): the admin answer takes seconds to send.
      assert(lat[lat.length - 1] < 250, `user latencies while the admin query ran: ${lat.map(Math.round)}`);
    });

    await t.step("a client that goes away stops the reader thread's work", async () => {
      const admin = await pool.read(req("/units/admin", `?${window}`), "admin");
      assert(typeof admin.body !== "string");
      const reading = admin.body.getReader();
      await reading.read();
      await reading.cancel();
      const t0 = performance.now();
      const again = await pool.read(req("/clusters/admin", ""), "admin");
      assertEquals(again.status, 200);
      assert(performance.now() - t0 < 1000, "the admin reader is free again");
    });
  } finally {
    await pool.close();
    conn.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("read queries: one statement per query shape, whatever the list lengths", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-shapes-" });
  const g = generateApiDb(join(dir, "data"), { units: 2_000, now: NOW });
  const conn = new DatabaseSync(g.dbPath, { readOnly: true });
  try {
    const q = new ReadQueries(conn);
    for (let n = 1; n <= 300; n++) {
      const uuids = Array.from({ length: n }, (_, i) => String(10_000_000 + i));
      const rows = [...q.units({
        users: [g.user],
        clusterIds: [],
        uuids,
        projects: [],
        fromMs: 0,
        toMs: NOW,
        running: false,
        fields: ["uuid"],
      })];
      assert(rows.length <= n);
      q.verifyOwnership(g.user, uuids, ["slurm-0"]);
    }
    assert(q.statements <= 3, `${q.statements} statements for 600 lists of 300 lengths`);
    // The window queries read the window through an index, not the whole table.
    const plan = (sql: string) =>
      (conn.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join("; ");
    assert(/SEARCH units USING INDEX idx_units_last_updated_at/.test(plan(
      "SELECT * FROM units WHERE ignore = 0 AND last_updated_at BETWEEN '2026-02-28' AND '2026-03-01'",
    )));
    assert(/SEARCH units USING INDEX idx_units_ended_ts/.test(plan(
      "SELECT * FROM units WHERE ignore = 0 AND (ended_at_ts BETWEEN 1 AND 2 OR ended_at_ts = 0)",
    )));
  } finally {
    conn.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
