// The printer against the real Prometheus 2.42: every allowed corpus query and a sample of generated
// ones answer the same printed as written, and our literal decoding gives the values Prometheus computes.

import { assert, assertEquals } from "../../helpers/assert.ts";
import { startPrometheus, toOpenMetrics } from "../../helpers/prometheus_server.ts";
import { decodeStringLiteral, parseNumberLiteral, PromQLSyntaxError } from "../../../lb/promql/literals.ts";
import { parsePromQL } from "../../../lb/promql/parse.ts";
import { printExpr } from "../../../lb/promql/print.ts";
import { ALLOWED_QUERIES } from "../corpus.ts";
import { unitSeries } from "../fixtures.ts";
import { QueryGenerator } from "../promql_gen.ts";

interface Answer {
  status: number;
  /** The data with result lists sorted, or the error type. */
  body: unknown;
}

/** Prometheus's answer with what may legitimately differ between spellings removed (order, error texts). */
async function ask(url: string, query: string, timeS: number): Promise<Answer> {
  const r = await fetch(`${url}/api/v1/query`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ query, time: String(timeS) }),
  });
  const json = await r.json();
  if (json.status !== "success") return { status: r.status, body: json.errorType };
  const data = json.data;
  if (Array.isArray(data.result)) {
    data.result.sort((a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  return { status: r.status, body: data };
}

/** Prometheus's value of a literal query, or undefined when it refuses the query. */
async function promValue(url: string, query: string, timeS: number): Promise<string | undefined> {
  const r = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query, time: String(timeS) })}`);
  const json = await r.json();
  return json.status === "success" ? json.data.result[1] : undefined;
}

Deno.test({
  name: "printed queries: Prometheus answers each allowed query exactly as written; literals decode as it does",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const now = Date.now();
    const prom = await startPrometheus({ openMetrics: toOpenMetrics(unitSeries(), now - 3600e3, now + 600e3, 30e3) });
    const timeS = Math.floor(now / 1000) - 60;
    try {
      await t.step("allowed corpus and 300 generated safe queries", async () => {
        const queries = ALLOWED_QUERIES.map(([q]) => q);
        const gen = new QueryGenerator(4711, ["1001", "1002"], ["2001", "2002", "3001"]);
        for (let n = 0; n < 300;) {
          const g = gen.next();
          if (g.safe) {
            queries.push(g.query);
            n++;
          }
        }
        let same = 0;
        let errors = 0;
        for (const q of queries) {
          const printed = printExpr(parsePromQL(q));
          const [a, b] = [await ask(prom.url, q, timeS), await ask(prom.url, printed, timeS)];
          assertEquals(b, a, `${JSON.stringify(q)} printed as ${JSON.stringify(printed)}`);
          if (a.status === 200) same++;
          else errors++;
        }
        assert(same > queries.length * 0.7, `only ${same} of ${queries.length} answered`);
        console.log(`${queries.length} queries: ${same} identical answers, ${errors} identical errors`);
      });

      await t.step("number literals", async () => {
        const numbers = [
          "0",
          "7",
          "010",
          "0777",
          "09",
          "0x1F",
          "0XAB",
          "1e3",
          "1E-7",
          ".5",
          "5.25",
          "123456789012345678901234567890",
          "9223372036854775807",
          "0x7FFFFFFFFFFFFFFF",
          "Inf",
          "inf",
          "INF",
          "NaN",
          "nan",
          "1e400",
          "0x8000000000000000",
          "1_000",
          "5m",
        ];
        let agreed = 0;
        for (const n of numbers) {
          const prometheus = await promValue(prom.url, n, timeS);
          let ours: number | undefined;
          try {
            ours = parseNumberLiteral(n);
          } catch (e) {
            if (!(e instanceof PromQLSyntaxError)) throw e;
          }
          if (ours === undefined) continue; // we refuse: nothing is forwarded, whatever Prometheus would say
          assert(prometheus !== undefined, `${n}: we read ${ours}, Prometheus refuses it`);
          const theirs = prometheus === "+Inf" ? Infinity : prometheus === "-Inf" ? -Infinity : Number(prometheus);
          assert(Object.is(theirs, ours), `${n}: Prometheus ${prometheus}, ours ${ours}`);
          agreed++;
        }
        assert(agreed >= 17, `only ${agreed} numbers compared`);
      });

      await t.step("string literals", async () => {
        const strings = [
          '"plain"',
          "'single'",
          "`raw \\n`",
          '"\\a\\b\\f\\n\\r\\t\\v\\\\\\""',
          "'\\''",
          '"\\x41\\101\\u00e9\\U0001F600"',
          '"\\xc3\\xa9"',
          '"tab\there"',
          '"é😀\u2028"',
          '"\\xff"',
          '"\\uD800"',
          "'\\\"'",
          '"\\q"',
        ];
        let agreed = 0;
        for (const s of strings) {
          const prometheus = await promValue(prom.url, s, timeS);
          let ours: string | undefined;
          try {
            ours = decodeStringLiteral(s);
          } catch (e) {
            if (!(e instanceof PromQLSyntaxError)) throw e;
          }
          if (ours === undefined) continue;
          assertEquals(prometheus, ours, s);
          agreed++;
        }
        assert(agreed >= 9, `only ${agreed} strings compared`);
      });
    } finally {
      await prom.stop();
    }
  },
});
