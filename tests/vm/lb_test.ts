// The load balancer in front of a real VictoriaMetrics (Debian's victoria-metrics) holding two users'
// units: alice's allowed corpus answers with her own series only, the lexer tricks are harmless (the LB
// forwards the query printed from its tree, which MetricsQL reads as PromQL), match[] endpoints are
// scoped, foreign units are refused, and an admin passes through.

import { assert, assertEquals } from "../helpers/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { emptyWebConfig } from "../../common/web/web_config.ts";
import { serve } from "../../common/web/server.ts";
import { tsdbHandler } from "../../lb/frontend.ts";
import { CachedOwnership } from "../../lb/ownership.ts";
import { ServerPool } from "../../lb/pool.ts";
import { ALLOWED_QUERIES, DENIED_QUERIES, LEXER_TRICKS } from "../lb/corpus.ts";
import { ADMIN, CLUSTER, leakedUnits, ownershipOnRunningApi, UNITS, unitSeries } from "../lb/fixtures.ts";
import { startVictoriaMetrics, type VmSample } from "../helpers/victoria_metrics.ts";

const enc = encodeURIComponent;

/** A query answer with its series in a fixed order (topk/bottomk: ties may pick either series, so values only). */
function normalized(data: unknown, q: string): unknown {
  const d = data as { resultType: string; result: { metric?: Record<string, string> }[] | unknown };
  if (!Array.isArray(d.result)) return d;
  const ties = /\b(topk|bottomk)\b/.test(q);
  const result = d.result.map((r) => (ties ? { ...r, metric: {} } : r));
  return { ...d, result: result.map((r) => JSON.stringify(r)).sort() };
}

Deno.test({
  name: "LB with a VictoriaMetrics backend: own series only, foreign units refused, admin passes",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ceems-vm-lb-" });
    const now = Date.now();
    const samples: VmSample[] = [];
    for (const s of unitSeries()) {
      for (let t = now - 3600e3, i = 0; t <= now; t += 30e3, i++) {
        samples.push({ name: s.name, labels: s.labels, value: s.value!(i), timeMs: t });
      }
    }
    const vm = await startVictoriaMetrics({ samples });
    const pool = new ServerPool("round-robin", nullLogger);
    pool.add(CLUSTER, { url: vm.url, client: {}, filterLabels: [] });
    const ownership = new CachedOwnership(await ownershipOnRunningApi(dir), 30_000);
    const server = await serve({
      addresses: ["127.0.0.1:0"],
      webConfig: emptyWebConfig,
      logger: nullLogger,
      handler: tsdbHandler({ pool, ownership, logger: nullLogger }),
    });
    const lb = `http://${server.addresses[0]}`;
    const get = async (path: string, user = "alice", init: RequestInit = {}) => {
      const r = await fetch(`${lb}${path}`, {
        ...init,
        headers: { "X-Grafana-User": user, "X-Ceems-Cluster-Id": CLUSTER, ...init.headers },
      });
      const text = await r.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // error text
      }
      return { status: r.status, text, body: body as { status?: string; data?: { result?: unknown[] } | unknown[] } };
    };
    const range = `&start=${Math.floor(now / 1000) - 600}&end=${Math.floor(now / 1000)}&step=60`;
    try {
      // Each allowed query answers through the LB exactly as VictoriaMetrics answers it directly (MetricsQL
      // differs from PromQL in places, e.g. it drops NaN results, so the reference is VictoriaMetrics itself).
      let checked = 0, nonEmpty = 0;
      const at = `&time=${Math.floor(now / 1000) - 30}`;
      for (const [q] of ALLOWED_QUERIES) {
        for (const path of [`/api/v1/query?query=${enc(q)}${at}`, `/api/v1/query_range?query=${enc(q)}${range}`]) {
          const r = await get(path);
          const direct = await (await fetch(`${vm.url}${path}`)).json();
          if (direct.status !== "success") {
            // MetricsQL refuses some PromQL spellings (`09`) the LB prints in canonical form: no leak either way.
            assertEquals(leakedUnits(r.body, UNITS.alice), [], path);
            continue;
          }
          assertEquals(r.status, 200, `${path}: ${r.text.slice(0, 300)}`);
          assertEquals(leakedUnits(r.body, UNITS.alice), [], path);
          assertEquals(normalized(r.body.data, q), normalized(direct.data, q), path);
          checked++;
          if ((direct.data.result as unknown[]).length) nonEmpty++;
        }
      }
      assert(nonEmpty > ALLOWED_QUERIES.length, `most allowed queries have data (${nonEmpty})`);
      for (const q of LEXER_TRICKS) {
        const r = await get(`/api/v1/query?query=${enc(q)}`);
        assertEquals(r.status, 200, r.text);
        assertEquals(leakedUnits(r.body, UNITS.alice), [], q);
        assert((r.body.data as { result: unknown[] }).result.length > 0, q);
      }
      for (const q of DENIED_QUERIES.slice(0, 20)) {
        const r = await get(`/api/v1/query?query=${enc(q)}`);
        assert([400, 403].includes(r.status), `${q}: ${r.status}`);
      }
      // match[] endpoints, scoped to her units.
      const m = enc('{uuid=~"1001|1002"}');
      const t = `&start=${Math.floor(now / 1000) - 3600}&end=${Math.floor(now / 1000)}`;
      for (
        const path of [
          `/api/v1/series?match[]=${m}${t}`,
          `/api/v1/labels?match[]=${m}${t}`,
          `/api/v1/label/uuid/values?match[]=${m}${t}`,
        ]
      ) {
        const r = await get(path);
        assertEquals(r.status, 200, `${path}: ${r.text.slice(0, 300)}`);
        assertEquals(leakedUnits(r.body, UNITS.alice), [], path);
        assert((r.body.data as unknown[]).length > 0, `${path}: empty`);
      }
      const values = await get(`/api/v1/label/uuid/values?match[]=${m}${t}`);
      assertEquals((values.body.data as string[]).sort(), ["1001", "1002"]);
      assertEquals((await get(`/api/v1/query?query=${enc('ceems_cpu_usage{uuid="2001"}')}`)).status, 403);
      assertEquals((await get(`/api/v1/series?match[]=${enc("ceems_cpu_usage")}${t}`)).status, 403);
      // An admin sees every unit through the LB, as VictoriaMetrics answers directly.
      const all = await get(`/api/v1/query?query=${enc("count(ceems_cpu_usage)")}`, ADMIN);
      assertEquals(all.status, 200, all.text);
      const direct = await (await fetch(`${vm.url}/api/v1/query?query=${enc("count(ceems_cpu_usage)")}`)).json();
      assertEquals(
        (all.body.data as { result: { value: unknown[] }[] }).result[0].value[1],
        direct.data.result[0].value[1],
      );
      console.log(
        `figures: ${checked} allowed requests answered through the LB as VictoriaMetrics answers them (${nonEmpty} with data)`,
      );
    } finally {
      await server.close();
      pool.stop();
      ownership.close();
      await vm.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
