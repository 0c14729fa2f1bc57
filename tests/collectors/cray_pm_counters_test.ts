// Tests of the cray_pm_counters collector: domain discovery from file names, value parsing, zero values
// left out, power caps, and garbage files.

import { join } from "node:path";
import { parsePmValue, pmDomains } from "../../collectors/cray_pm_counters.ts";
import { assertEquals, assertMatch, assertThrows } from "../helpers/assert.ts";
import { makeCollector, samples, scrape } from "../helpers/collector_harness.ts";
import { withTempDir, writeTree } from "../helpers/tree.ts";

Deno.test("cray_pm_counters: domains come from file names; node has no prefix", () => {
  const d = pmDomains([
    "energy",
    "power",
    "power_cap",
    "cpu_energy",
    "cpu0_temp",
    "accel2_power",
    "freshness",
    "version",
  ]);
  assertEquals(Object.fromEntries(d), { node: "", cpu: "cpu_", cpu0: "cpu0_", accel2: "accel2_" });
  assertEquals(parsePmValue("873 W 1734094386309238 us\n", "f"), 873);
  assertThrows(() => parsePmValue("W 12", "f"), /no leading integer/);
});

Deno.test("cray_pm_counters: energy, power, power cap and temperature gauges per domain", async () => {
  await withTempDir(async (sys) => {
    const pm = "cray/pm_counters";
    writeTree(sys, {
      [`${pm}/energy`]: "5000 J 1 us\n",
      [`${pm}/power`]: "420 W 1 us\n",
      [`${pm}/power_cap`]: "900 W\n",
      [`${pm}/memory_power`]: "60 W 1 us\n",
      [`${pm}/accel1_energy`]: "77 J 1 us\n",
      [`${pm}/accel1_power_cap`]: "0 W\n",
      [`${pm}/cpu0_temp`]: "51 C 1 us\n",
      [`${pm}/freshness`]: "123\n",
    });
    const c = await makeCollector("cray_pm_counters", [], { paths: { sysfs: sys } });
    const { sink, success } = await scrape({ cray_pm_counters: c });
    assertEquals(success.cray_pm_counters, 1);
    const l = (d: string) => `{domain="${d}",hostname="host1"}`;
    assertEquals(
      samples(sink, "ceems_cray_pm_counters_energy_joules"),
      new Map([[l("accel1"), 77], [l("node"), 5000]]),
    );
    assertEquals(samples(sink, "ceems_cray_pm_counters_power_watts"), new Map([[l("memory"), 60], [l("node"), 420]]));
    assertEquals(samples(sink, "ceems_cray_pm_counters_power_limit_watts"), new Map([[l("node"), 900]]));
    assertEquals(samples(sink, "ceems_cray_pm_counters_temp_celsius"), new Map([[l("cpu0"), 51]]));
    assertEquals(sink.families.get("ceems_cray_pm_counters_energy_joules")!.type, "gauge");
  });
});

Deno.test("cray_pm_counters: a garbage file fails the collector for the scrape with one log line", async () => {
  await withTempDir(async (sys) => {
    writeTree(sys, { "cray/pm_counters/power": "lots of watts\n", "cray/pm_counters/energy": "10 J 1 us\n" });
    const c = await makeCollector("cray_pm_counters", [], { paths: { sysfs: sys } });
    const log: string[] = [];
    const { sink, success } = await scrape({ cray_pm_counters: c }, log);
    assertEquals(success.cray_pm_counters, 0);
    const errors = log.filter((l) => l.includes("level=error"));
    assertEquals(errors.length, 1);
    assertMatch(errors[0], new RegExp(`${join(sys, "cray/pm_counters/power").replaceAll("/", "\\/")}`));
    assertEquals(samples(sink, "ceems_cray_pm_counters_energy_joules").size, 1);
  });
});
