// Security tests of the TSDB load balancer against a real Prometheus holding two users' units: an
// adversarial corpus and a sample of random queries go through the real proxy; no foreign unit leaks.

import { assert, assertEquals } from "../helpers/assert.ts";
import { ADMIN, CLUSTER, type LbStack, leakedUnits, startLbStack, UNITS } from "./fixtures.ts";
import { QueryGenerator } from "./promql_gen.ts";
import { ALLOWED_QUERIES, DENIED_QUERIES, LEXER_TRICKS } from "./corpus.ts";

const OWN = UNITS.alice;
const Q = "/api/v1/query";
const QR = "/api/v1/query_range";

/** One adversarial request. */
interface Case {
  name: string;
  path: string;
  /** Pre-encoded query string (after `?`). */
  search?: string;
  method?: "GET" | "POST";
  body?: string;
  contentType?: string;
  user?: string | null;
  cluster?: string;
  headers?: Record<string, string>;
  /** "allow": 200; "pass": not refused by the LB (Prometheus may reject it, e.g. a string in a range query). */
  expect: "deny" | "allow" | "pass";
  /** For allowed queries: the answer must hold at least one series. */
  nonEmpty?: boolean;
}

const enc = encodeURIComponent;
const rangeParams = () => {
  const now = Math.floor(Date.now() / 1000);
  return `&start=${now - 600}&end=${now}&step=60`;
};

function corpus(): Case[] {
  const cases: Case[] = [];
  for (const q of DENIED_QUERIES) {
    cases.push({ name: `GET ${q}`, path: Q, search: `query=${enc(q)}`, expect: "deny" });
    cases.push({
      name: `POST ${q}`,
      path: Q,
      method: "POST",
      body: `query=${enc(q)}`,
      contentType: "application/x-www-form-urlencoded",
      expect: "deny",
    });
    cases.push({ name: `range ${q}`, path: QR, search: `query=${enc(q)}${rangeParams()}`, expect: "deny" });
  }
  for (const [q, nonEmpty] of ALLOWED_QUERIES) {
    cases.push({ name: `allowed GET ${q}`, path: Q, search: `query=${enc(q)}`, expect: "allow", nonEmpty });
    cases.push({
      name: `allowed POST ${q}`,
      path: QR,
      method: "POST",
      body: `query=${enc(q)}${rangeParams()}`,
      contentType: "application/x-www-form-urlencoded",
      expect: "pass",
    });
  }
  for (const q of LEXER_TRICKS) {
    cases.push({ name: `lexer trick GET ${q}`, path: Q, search: `query=${enc(q)}`, expect: "allow", nonEmpty: true });
  }
  const own = enc('ceems_cpu_usage{uuid="1001"}');
  const evil = enc("ceems_cpu_usage");
  cases.push(
    // repeated parameters, URL and body mixed
    { name: "repeated query", path: Q, search: `query=${own}&query=${evil}`, expect: "deny" },
    { name: "repeated query, evil first", path: Q, search: `query=${evil}&query=${own}`, expect: "deny" },
    {
      name: "query in URL and body",
      path: Q,
      method: "POST",
      search: `query=${own}`,
      body: `query=${evil}`,
      contentType: "application/x-www-form-urlencoded",
      expect: "deny",
    },
    {
      name: "evil body, own URL",
      path: Q,
      method: "POST",
      search: `query=${evil}`,
      body: `query=${own}`,
      contentType: "application/x-www-form-urlencoded",
      expect: "deny",
    },
    { name: "repeated time", path: Q, search: `query=${own}&time=1&time=2`, expect: "deny" },
    // URL-encoding tricks
    { name: "encoded parameter name", path: Q, search: `%71uery=${evil}`, expect: "deny" },
    { name: "plus as space", path: Q, search: `query=ceems_cpu_usage{uuid="1001"}+or+node_load1`, expect: "deny" },
    { name: "double encoding", path: Q, search: `query=${enc(own)}`, expect: "deny" },
    { name: "semicolon separator", path: Q, search: `query=${own};query=${evil}`, expect: "deny" },
    { name: "raw braces and quotes", path: Q, search: 'query=ceems_cpu_usage{uuid="2001"}', expect: "deny" },
    { name: "encoded newline bypass", path: Q, search: `query=${own}%0Aor%20node_load1`, expect: "deny" },
    { name: "NUL in query", path: Q, search: `query=${own}%00or%20node_load1`, expect: "deny" },
    { name: "bad percent escape", path: Q, search: `query=${evil}%zz`, expect: "deny" },
    // POST bodies of other types
    {
      name: "JSON body",
      path: Q,
      method: "POST",
      body: JSON.stringify({ query: "ceems_cpu_usage" }),
      contentType: "application/json",
      expect: "deny",
    },
    {
      name: "form body sent as text/plain",
      path: Q,
      method: "POST",
      body: `query=${evil}`,
      contentType: "text/plain",
      expect: "deny",
    },
    { name: "no query", path: Q, search: "", expect: "deny" },
    // match[] endpoints
    { name: "series without match[]", path: "/api/v1/series", search: "", expect: "deny" },
    { name: "series unconstrained", path: "/api/v1/series", search: `match[]=${evil}`, expect: "deny" },
    {
      name: "series own + unconstrained",
      path: "/api/v1/series",
      search: `match[]=${own}&match[]=${enc('{__name__=~".+"}')}`,
      expect: "deny",
    },
    {
      name: "series POST own + foreign",
      path: "/api/v1/series",
      method: "POST",
      body: `match[]=${own}&match[]=${enc('{uuid="2001"}')}`,
      contentType: "application/x-www-form-urlencoded",
      expect: "deny",
    },
    { name: "series own", path: "/api/v1/series", search: `match[]=${own}`, expect: "allow", nonEmpty: true },
    { name: "labels without match[]", path: "/api/v1/labels", search: "", expect: "deny" },
    { name: "labels own", path: "/api/v1/labels", search: `match[]=${own}`, expect: "allow" },
    { name: "uuid values without match[]", path: "/api/v1/label/uuid/values", search: "", expect: "deny" },
    {
      name: "uuid values of any series",
      path: "/api/v1/label/uuid/values",
      search: `match[]=${enc('{uuid=~".+"}')}`,
      expect: "deny",
    },
    {
      name: "uuid values own",
      path: "/api/v1/label/uuid/values",
      search: `match[]=${enc('{uuid=~"1001|1002"}')}`,
      expect: "allow",
      nonEmpty: true,
    },
    {
      name: "hostname values own",
      path: "/api/v1/label/hostname/values",
      search: `match[]=${own}`,
      expect: "allow",
    },
    { name: "exemplars unconstrained", path: "/api/v1/query_exemplars", search: `query=${evil}`, expect: "deny" },
    // paths outside the allow-list
    { name: "status/config", path: "/api/v1/status/config", expect: "deny" },
    { name: "targets", path: "/api/v1/targets", expect: "deny" },
    { name: "metadata", path: "/api/v1/metadata", expect: "deny" },
    { name: "federate", path: "/federate", search: `match[]=${evil}`, expect: "deny" },
    { name: "admin delete", path: "/api/v1/admin/tsdb/delete_series", method: "POST", body: "", expect: "deny" },
    { name: "double slash", path: "/api/v1//query", search: `query=${evil}`, expect: "deny" },
    { name: "trailing slash", path: "/api/v1/query/", search: `query=${evil}`, expect: "deny" },
    { name: "encoded path", path: "/api/v1/%71uery", search: `query=${evil}`, expect: "deny" },
    { name: "label path trick", path: "/api/v1/label/uuid%2F..%2F..%2Fquery/values", search: "", expect: "deny" },
    { name: "POST with the query in the URL", path: Q, method: "POST", search: `query=${evil}`, expect: "deny" },
    // identity headers
    { name: "no user", path: Q, search: `query=${own}`, user: null, expect: "deny" },
    { name: "empty user", path: Q, search: `query=${own}`, user: " ", expect: "deny" },
    { name: "user list with admin", path: Q, search: `query=${evil}`, user: `alice, ${ADMIN}`, expect: "deny" },
    {
      name: "forged admin header",
      path: Q,
      search: `query=${evil}`,
      headers: { "X-Ceems-Admin-User": "alice", "X-Ceems-Logged-User": ADMIN },
      expect: "deny",
    },
    { name: "bob on alice's unit", path: Q, search: `query=${own}`, user: "bob", expect: "deny" },
    { name: "unknown cluster", path: Q, search: `query=${own}`, cluster: "slurm-1", expect: "deny" },
    { name: "no cluster", path: Q, search: `query=${own}`, cluster: "", expect: "deny" },
    { name: "carol by project", path: Q, search: `query=${own}`, user: "carol", expect: "allow", nonEmpty: true },
  );
  return cases;
}

async function send(stack: LbStack, c: Case): Promise<{ status: number; text: string }> {
  const headers = new Headers(c.headers);
  if (c.user !== null) headers.set("X-Grafana-User", c.user ?? "alice");
  headers.set("X-Ceems-Cluster-Id", c.cluster ?? CLUSTER);
  if (c.contentType) headers.set("content-type", c.contentType);
  const url = `${stack.lbUrl}${c.path}${c.search ? `?${c.search}` : ""}`;
  const r = await fetch(url, { method: c.method ?? "GET", headers, body: c.body });
  return { status: r.status, text: await r.text() };
}

/** True when the answer is a refusal by the LB itself (not an error Prometheus returned). */
function isLbRefusal(status: number, text: string): boolean {
  if ([401, 403, 405, 415].includes(status)) return true;
  return status === 400 &&
    /"error":"(invalid query: |parameter \S+ given more than once|missing query parameter|POST bodies must be|invalid cluster ID)/
      .test(text);
}

function checkAnswer(c: Case, status: number, text: string, owned: string[]): void {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain-text answers (errors) carry no series
  }
  const leaks = status === 200 ? leakedUnits(body, owned) : [];
  assertEquals(leaks, [], `${c.name}: leaked ${leaks.join(", ")}`);
  if (c.expect === "deny") {
    assert(isLbRefusal(status, text), `${c.name}: expected the LB to refuse, got ${status} ${text.slice(0, 200)}`);
  } else if (c.expect === "pass") {
    assert(!isLbRefusal(status, text), `${c.name}: refused by the LB: ${status} ${text.slice(0, 200)}`);
    assert(status === 200 || status === 400 || status === 422, `${c.name}: ${status} ${text.slice(0, 200)}`);
  } else {
    assertEquals(status, 200, `${c.name}: expected success, got ${status} ${text.slice(0, 300)}`);
    if (c.nonEmpty) {
      const data = (body as { data: unknown }).data;
      const list = Array.isArray(data) ? data : (data as { result: unknown[] }).result;
      assert(list.length > 0, `${c.name}: empty answer ${text.slice(0, 200)}`);
    }
  }
}

Deno.test({
  name: "lb security: adversarial corpus and random queries through the proxy to a real Prometheus",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const stack = await startLbStack();
    try {
      await t.step("an admin sees every unit (the data is there to leak)", async () => {
        const r = await fetch(`${stack.lbUrl}${Q}?query=${enc('{__name__=~"ceems_.+|node_load1"}')}`, {
          headers: { "X-Grafana-User": ADMIN, "X-Ceems-Cluster-Id": CLUSTER },
        });
        const body = await r.json();
        assertEquals(r.status, 200);
        assert(leakedUnits(body, OWN).length >= 4, "admin answer should contain foreign units");
      });

      await t.step("the CEEMS-bypassing queries are refused with 403 and a reason", async () => {
        for (const q of ['a{uuid="1001"} + b{uuid="2001"}', 'ceems_cpu_usage{uuid="1001"} or ceems_mem_usage']) {
          const r = await send(stack, { name: q, path: Q, search: `query=${enc(q)}`, expect: "deny" });
          assertEquals(r.status, 403, r.text);
          assertMatchJson(r.text);
        }
      });

      await t.step("corpus", async () => {
        const cases = corpus();
        assert(cases.length >= 200, `corpus has only ${cases.length} cases`);
        let denied = 0;
        let allowed = 0;
        for (const c of cases) {
          const { status, text } = await send(stack, c);
          checkAnswer(c, status, text, c.user === "carol" ? UNITS.carol : OWN);
          if (c.expect === "deny") denied++;
          else allowed++;
        }
        console.log(`corpus: ${cases.length} requests (${denied} refused, ${allowed} allowed), no leak`);
      });

      await t.step("500 random queries through the proxy leak nothing", async () => {
        const gen = new QueryGenerator(4242, OWN, ["2001", "2002", "3001"]);
        const tally = { ok: 0, refused: 0, promError: 0 };
        for (let i = 0; i < 500; i++) {
          const { query, safe } = gen.next();
          const c: Case = {
            name: `random ${i}: ${query}`,
            path: i % 2 ? Q : QR,
            search: `query=${enc(query)}${i % 2 ? "" : rangeParams()}`,
            expect: safe ? "allow" : "deny",
          };
          const { status, text } = await send(stack, c);
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch { /* not JSON */ }
          const lbRefusal = isLbRefusal(status, text);
          if (!safe) {
            assert(lbRefusal, `${c.name}: unsafe query not refused by the LB: ${status} ${text.slice(0, 200)}`);
            tally.refused++;
          } else if (status === 200) {
            const leaks = leakedUnits(body, OWN);
            assertEquals(leaks, [], `${c.name}: leaked ${leaks.join(", ")}`);
            tally.ok++;
          } else {
            // Prometheus itself rejects some generated queries (type or execution errors): no series.
            assert(!lbRefusal && (status === 400 || status === 422), `${c.name}: ${status} ${text}`);
            tally.promError++;
          }
        }
        assert(tally.ok > 50 && tally.refused > 200, JSON.stringify(tally));
        console.log(`random through proxy: ${JSON.stringify(tally)}`);
      });
    } finally {
      await stack.close();
    }
  },
});

function assertMatchJson(text: string): void {
  const body = JSON.parse(text);
  assertEquals(body.status, "error");
  assertEquals(body.errorType, "forbidden");
  assert(typeof body.error === "string" && body.error.length > 10);
}
