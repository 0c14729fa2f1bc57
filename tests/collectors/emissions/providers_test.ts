// Tests of the emissions providers against local mock APIs in each provider's documented format
// (tests/collectors/emissions/mock_apis.ts): parsing, credentials, caching, failures and recovery.

import { EmapsProvider, parseEmapsZones } from "../../../collectors/emissions/emaps.ts";
import { parisDate, parseRteRecords, RteProvider } from "../../../collectors/emissions/rte.ts";
import { globalProvider, owidProvider } from "../../../collectors/emissions/static.ts";
import { lbPerMWhToGPerKWh, WattTimeProvider } from "../../../collectors/emissions/watttime.ts";
import { Logger } from "../../../common/log.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../../helpers/assert.ts";
import { emapsMock, json, rteMock, serveMock, wattTimeMock } from "./mock_apis.ts";

function capture() {
  const lines: string[] = [];
  return { lines, logger: new Logger("debug", "logfmt", {}, (l) => lines.push(l)) };
}
const fast = { intervalMs: 60_000, retryMs: 60_000, maxAgeMs: 3_600_000 };

Deno.test("owid provider ships the latest OWID year per ISO-2 country; global is 475 for ZZ", () => {
  const f = new Map(owidProvider().factors().map((x) => [x.countryCode, x]));
  assert(f.size > 200, `only ${f.size} countries`);
  // From carbon-intensity-owid.csv: France,FRA,2024,44.179085 and Germany,DEU,2024,344.14...
  assertEquals(f.get("FR"), { countryCode: "FR", country: "France", value: 44.179 });
  assertAlmostEquals(f.get("DE")!.value, 344.14, 0.01);
  assert(!f.has("OWID_WRL") && !f.has("ZZ"), "aggregates must not appear");
  assertEquals(globalProvider().factors(), [{ countryCode: "ZZ", country: "World", value: 475 }]);
});

Deno.test("emaps: zones then latest per zone with auth-token; denied zones skipped; labels as CEEMS", async () => {
  const api = emapsMock("secret", { DE: 302, FR: 31, "US-CAL-CISO": 211.5, "IN-NO": null }, ["FR"]);
  const { logger } = capture();
  const p = new EmapsProvider(
    { logger, env: (k) => ({ EMAPS_API_TOKEN: "secret", __EMAPS_BASE_URL: api.base })[k] },
    fast,
  );
  try {
    assertEquals(p.factors(), []);
    assert(await p.refresh(), "refresh should succeed");
    assertEquals(p.factors(), [
      { countryCode: "DE", country: "Germany", value: 302 },
      { countryCode: "US-CAL-CISO", country: "USA California Independent System Operator", value: 211.5 },
    ]);
    const latest = api.requests.filter((r) => new URL(r.url).pathname.endsWith("/latest"));
    assertEquals(latest.length, 4);
    assert(latest.every((r) => r.headers.get("auth-token") === "secret"));
    // The zone list is fetched once, not per refresh.
    await p.refresh();
    assertEquals(api.requests.filter((r) => new URL(r.url).pathname === "/v3/zones").length, 1);
  } finally {
    p.stop();
    await api.close();
  }
});

Deno.test("emaps: a wrong token reads nothing and reports the failure, keeping no factors", async () => {
  const api = emapsMock("secret", { DE: 302 });
  const { logger, lines } = capture();
  const p = new EmapsProvider(
    { logger, env: (k) => ({ EMAPS_API_TOKEN: "wrong", __EMAPS_BASE_URL: api.base })[k] },
    fast,
  );
  try {
    assertEquals(await p.refresh(), false);
    assertEquals(p.factors(), []);
    assert(lines.some((l) => l.includes("level=warn") && l.includes("provider=emaps")), lines.join("\n"));
  } finally {
    p.stop();
    await api.close();
  }
});

Deno.test("emaps and wt refuse to start without credentials", () => {
  const { logger } = capture();
  assertThrows(() => new EmapsProvider({ logger, env: () => undefined }), /EMAPS_API_TOKEN is not set/);
  assertThrows(
    () => new WattTimeProvider({ logger, env: (k) => (k === "WT_USERNAME" ? "u" : undefined) }),
    /WT_PASSWORD, WT_REGION not set/,
  );
  assertThrows(() => parseEmapsZones([]), /not an object/);
});

Deno.test("rte: queries today's latest taux_co2 in Europe/Paris and reports FR", async () => {
  const api = rteMock(23);
  const { logger } = capture();
  const p = new RteProvider({ logger, env: (k) => (k === "__RTE_BASE_URL" ? api.base : undefined) }, fast);
  try {
    assert(await p.refresh());
    assertEquals(p.factors(), [{ countryCode: "FR", country: "France", value: 23 }]);
    const q = new URL(api.requests[0].url).searchParams;
    assertEquals(q.get("order_by"), "date_heure desc");
    assertEquals(q.get("limit"), "1");
    assertEquals(q.get("where"), `date_heure in [date'${parisDate(new Date())}' TO now()] and taux_co2 is not null`);
  } finally {
    p.stop();
    await api.close();
  }
  // 23:30 UTC on 31 Dec is already 1 January in Paris.
  assertEquals(parisDate(new Date("2026-12-31T23:30:00Z")), "2027-01-01");
  assertThrows(() => parseRteRecords({ total_count: 0, results: [] }), /no carbon-intensity record/);
  assertThrows(() => parseRteRecords({ error_code: "x" }), /no results array/);
});

Deno.test("rte: a failed refresh keeps the last good value, a provider down longer than maxAge reports none", async () => {
  let status = 200;
  const api = serveMock(() =>
    status === 200 ? json({ total_count: 1, results: [{ taux_co2: 40, date_heure: "x" }] }) : json({}, status)
  );
  const { logger, lines } = capture();
  const env = (k: string) => (k === "__RTE_BASE_URL" ? api.base : undefined);
  const p = new RteProvider({ logger, env }, { ...fast, maxAgeMs: 200 });
  try {
    assert(await p.refresh());
    status = 503;
    assertEquals(await p.refresh(), false);
    assertEquals(p.factors()[0].value, 40); // still fresh
    await new Promise((r) => setTimeout(r, 250));
    assertEquals(p.factors(), []); // too old now
    assertEquals(await p.refresh(), false);
    // The same error twice: one warn line, the repeat at debug.
    assertEquals(lines.filter((l) => l.includes("level=warn")).length, 1);
    status = 200;
    assert(await p.refresh());
    assertEquals(p.factors()[0].value, 40);
    assert(lines.some((l) => l.includes("recovered")));
  } finally {
    p.stop();
    await api.close();
  }
});

Deno.test("wt: logs in with Basic auth, reads co2_moer with Bearer, converts lb/MWh to g/kWh, re-logs on 401", async () => {
  const api = wattTimeMock("alice", "pw", [["2026-11-27T00:00:00+00:00", 800], ["2026-11-27T00:05:00+00:00", 870]]);
  const { logger } = capture();
  const env = (k: string) =>
    ({ WT_USERNAME: "alice", WT_PASSWORD: "pw", WT_REGION: "CAISO_NORTH", __WT_BASE_URL: api.base })[k];
  const p = new WattTimeProvider({ logger, env }, fast);
  try {
    assert(await p.refresh());
    const [f] = p.factors();
    assertEquals(f.countryCode, "CAISO_NORTH");
    assertAlmostEquals(f.value, 870 * lbPerMWhToGPerKWh, 1e-9);
    const hist = new URL(api.requests.find((r) => r.url.includes("/v3/historical"))!.url).searchParams;
    assertEquals(hist.get("signal_type"), "co2_moer");
    assertAlmostEquals(Date.parse(hist.get("end")!) - Date.parse(hist.get("start")!), 15 * 60_000, 1);
    // The token is reused; after the server expires it, the provider logs in again once.
    assert(await p.refresh());
    assertEquals(api.state.logins, 1);
    api.state.expireNext = true;
    assert(await p.refresh());
    assertEquals(api.state.logins, 2);
  } finally {
    p.stop();
    await api.close();
  }
});

Deno.test("wt: wrong password fails the refresh without factors", async () => {
  const api = wattTimeMock("alice", "pw", [["2026-11-27T00:00:00+00:00", 800]]);
  const { logger } = capture();
  const env = (k: string) =>
    ({ WT_USERNAME: "alice", WT_PASSWORD: "bad", WT_REGION: "CAISO_NORTH", __WT_BASE_URL: api.base })[k];
  const p = new WattTimeProvider({ logger, env }, fast);
  try {
    assertEquals(await p.refresh(), false);
    assertEquals(p.factors(), []);
  } finally {
    p.stop();
    await api.close();
  }
});
