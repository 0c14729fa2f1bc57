// Tests of the emissions collector: provider selection and skipping without credentials, the CEEMS
// metric, and the exporter run end to end against a mock Electricity Maps API.

import { buildProviders, EmissionsCollector } from "../../collectors/emissions.ts";
import { NoDataError } from "../../collectors/framework/collector.ts";
import { FamilySink } from "../../collectors/framework/metric_sink.ts";
import { StaticProvider } from "../../collectors/emissions/provider.ts";
import { Logger } from "../../common/log.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { parseExposition, parseTypes, startCeems } from "../helpers/process.ts";
import { emapsMock } from "./emissions/mock_apis.ts";

Deno.test("buildProviders: all by default; emaps and wt skipped with one log line each without credentials", () => {
  const lines: string[] = [];
  const logger = new Logger("info", "logfmt", {}, (l) => lines.push(l));
  const ps = buildProviders([], { logger, env: () => undefined });
  assertEquals(ps.map((p) => p.id), ["owid", "rte", "global"]);
  assertEquals(lines.filter((l) => l.includes("emissions provider skipped")).length, 2);
  assert(lines.some((l) => l.includes("provider=emaps") && l.includes("EMAPS_API_TOKEN")));
  for (const p of ps) p.stop();
  assertEquals(buildProviders(["global", "global"], { logger, env: () => undefined }).map((p) => p.id), ["global"]);
});

Deno.test("emissions collector emits positive factors only, with CEEMS labels, and no data as NoDataError", async () => {
  const c = new EmissionsCollector([
    new StaticProvider("owid", "OWID", [
      { countryCode: "FR", country: "France", value: 44.2 },
      { countryCode: "XX", country: "Nowhere", value: 0 },
    ]),
  ]);
  const sink = new FamilySink();
  await c.update(sink);
  const fam = sink.families.get("ceems_emissions_gCo2_kWh")!;
  assertEquals(fam.type, "gauge");
  assertEquals(fam.samples.map((s) => [s.labels, s.value]), [
    [{ provider: "owid", provider_name: "OWID", country_code: "FR", country: "France" }, 44.2],
  ]);
  const empty = new EmissionsCollector([new StaticProvider("x", "X", [])]);
  let err: unknown;
  try {
    await empty.update(new FamilySink());
  } catch (e) {
    err = e;
  }
  assert(err instanceof NoDataError);
});

Deno.test("exporter serves emaps factors fetched in the background; missing wt credentials do not fail it", async () => {
  const api = emapsMock("tok", { DE: 302, FR: 31, "US-CAL-CISO": 211, "IN-NO": 650 });
  const ceems = await startCeems(
    [
      "exporter",
      "--collector.disable-defaults",
      "--collector.emissions",
      "--collector.emissions.provider=emaps",
      "--collector.emissions.provider",
      "wt",
      "--collector.emissions.provider=global",
    ],
    { env: { EMAPS_API_TOKEN: "tok", __EMAPS_BASE_URL: api.base } },
  );
  try {
    let text = "";
    for (let i = 0; i < 100; i++) {
      text = await (await fetch(`${ceems.base}/metrics`)).text();
      if (text.includes('provider="emaps"')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const m = parseExposition(text);
    assertEquals(
      m.get(
        'ceems_emissions_gCo2_kWh{country="Germany",country_code="DE",provider="emaps",provider_name="Electricity Maps"}',
      ),
      302,
    );
    assertEquals(
      m.get(
        'ceems_emissions_gCo2_kWh{country="World",country_code="ZZ",provider="global",provider_name="World Average"}',
      ),
      475,
    );
    assertEquals(parseTypes(text).get("ceems_emissions_gCo2_kWh"), "gauge");
    assertEquals(m.get('ceems_scrape_collector_success{collector="emissions"}'), 1);
    assert(![...m.keys()].some((k) => k.includes('provider="wt"')));
  } finally {
    const { stderr } = await ceems.stop();
    await api.close();
    assertEquals(stderr.split("\n").filter((l) => l.includes("emissions provider skipped")).length, 1, stderr);
  }
});

Deno.test("exporter rejects an unknown emissions provider at start-up naming the flag", async () => {
  const { runCeems } = await import("../helpers/process.ts");
  const r = await runCeems(["exporter", "--collector.emissions", "--collector.emissions.provider=nope"]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes("collector.emissions.provider"), r.stderr);
});
