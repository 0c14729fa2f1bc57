// cacct's pieces without servers: Prometheus fingerprints (CEEMS's metadata.json), Go float formatting,
// field selection, local time parsing, and the box table's layout of merged titles and wrapped cells.

import { assertEquals, assertMatch, assertThrows } from "../helpers/assert.ts";
import { fingerprint, formatFloat } from "../../cacct/timeseries.ts";
import { DEFAULT_FIELDS, selectFields } from "../../cacct/fields.ts";
import { parseLocalTime } from "../../cacct/cli.ts";
import { buildColumns } from "../../cacct/report.ts";
import { hardWrap, renderBox, renderCsv } from "../../cacct/table.ts";

Deno.test("cacct: fingerprints as Prometheus computes them, floats as Go prints them", () => {
  // CEEMS's e2e output names this series' CSV file 554b56cadf9dea4b.csv.
  assertEquals(fingerprint({ instance: "localhost:9090", uuid: "147973" }), "554b56cadf9dea4b");
  assertEquals(fingerprint({}), "cbf29ce484222325");
  assertEquals([formatFloat(29.38529014), formatFloat(12345), formatFloat(1e-7), formatFloat(2.5e21)], [
    "29.38529014",
    "12345",
    "0.0000001",
    "2500000000000000000000",
  ]);
});

Deno.test("cacct: field selection, times, wrapping", () => {
  assertEquals(selectFields("", false), DEFAULT_FIELDS);
  assertEquals(selectFields("JobID, hostEnergy", false), ["jobid", "hostenergy"]);
  assertThrows(() => selectFields("jobid,nope", false), /unknown field "nope"/);
  assertEquals(new Date(parseLocalTime("2026-11-03T08:30") * 1000).getHours(), 8);
  assertThrows(() => parseLocalTime("2026-02-30"), /invalid date/);
  assertThrows(() => parseLocalTime("yesterday"), /YYYY-MM-DD/);
  assertEquals(hardWrap("CANCELLED by 1001", 5), ["CANCE", "LLED ", "by 10", "01"]);
});

Deno.test("cacct: table with a merged title over provider sub-columns, unit rows, Summary and usage rows", () => {
  const units = [{
    uuid: "1479763",
    project: "acc1",
    elapsed: "00:49:22",
    total_cpu_emissions_gms: { rte_total: 21.221494, emaps_total: 21.221494 },
  }];
  const usages = [{
    num_units: 1,
    project: "acc1",
    username: "usr1",
    total_time_seconds: { walltime: 2962 },
    total_cpu_emissions_gms: { rte_total: 21.221494, emaps_total: 21.221494 },
  }];
  const cols = buildColumns(["jobid", "account", "elapsed", "hostemissions"], units, usages);
  const box = renderBox(cols);
  assertEquals(
    box.split("\n").slice(0, 6).join("\n"),
    [
      "┌─────────┬─────────┬──────────┬─────────────────────────┐",
      "│ JOB ID  │ ACCOUNT │ ELAPSED  │       HOST EMISSIO      │",
      "│         │         │          │         NS(GMS)         │",
      "├─────────┼─────────┼──────────┼─────────────┬───────────┤",
      "│         │         │          │ EMAPS_TOTAL │ RTE_TOTAL │",
      "├─────────┼─────────┼──────────┼─────────────┼───────────┤",
    ].join("\n"),
  );
  const lines = box.split("\n");
  assertEquals(lines[6], "│ 1479763 │ acc1    │ 00:49:22 │ 21.221494   │ 21.221494 │");
  assertMatch(box, /│ Summary │ +│\n/);
  assertEquals(lines.at(-3), "│ 1       │ acc1    │ 00:49:22 │ 21.221494   │ 21.221494 │");
  assertEquals(
    renderCsv(cols).split("\n")[0],
    "JOB ID,ACCOUNT,ELAPSED,HOST EMISSIONS(GMS) EMAPS_TOTAL,HOST EMISSIONS(GMS) RTE_TOTAL",
  );
});
