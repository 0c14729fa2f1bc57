// Tests of the hwmon collector: power/energy sensor discovery (monitor and device/ directories), chip
// naming from the device link or the name file, unit conversion, and truncated sensor files.

import { join } from "node:path";
import { cleanName, parseSensorFilename } from "../../collectors/hwmon.ts";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { makeCollector, samples, scrape } from "../helpers/collector_harness.ts";
import { withTempDir, writeTree } from "../helpers/tree.ts";

function hwmonTree(sys: string) {
  writeTree(sys, {
    "devices/platform/acpi-power.0/hwmon/hwmon0/name": "power_meter\n",
    "devices/platform/acpi-power.0/hwmon/hwmon0/power1_average": "250000000\n",
    "devices/platform/acpi-power.0/hwmon/hwmon0/power1_input": "260500000\n",
    "devices/platform/acpi-power.0/hwmon/hwmon0/temp1_input": "45000\n",
    "devices/platform/acpi-power.0/hwmon/hwmon0/device": { link: "../../../acpi-power.0" },
    "devices/platform/acpi-power.0/power2_input_highest": "90000000\n",
    "class/hwmon/hwmon0": { link: "../../devices/platform/acpi-power.0/hwmon/hwmon0" },
    "class/hwmon/hwmon1/name": "Socket\n",
    "class/hwmon/hwmon1/energy1_input": "1234000000\n",
    "class/hwmon/hwmon1/power1_input_lowest": "0\n",
    "class/hwmon/hwmon2/name": "coretemp\n",
    "class/hwmon/hwmon2/temp1_input": "40000\n",
    "class/hwmon/hwmon3": { link: "../../devices/platform/gone.0/hwmon/hwmon3" },
  });
}

Deno.test("hwmon: file names and chip names are parsed as CEEMS does", () => {
  assertEquals(parseSensorFilename("power1_input_highest"), { type: "power", num: 1, property: "input_highest" });
  assertEquals(parseSensorFilename("energy12_input"), { type: "energy", num: 12, property: "input" });
  assertEquals(cleanName("ACPI-Power.0 \n"), "acpi_power_0");
});

Deno.test("hwmon: power and energy sensors in watts and joules with sensor, chip and chip_name labels", async () => {
  await withTempDir(async (sys) => {
    hwmonTree(sys);
    const c = await makeCollector("hwmon", [], { paths: { sysfs: sys } });
    const { sink, success } = await scrape({ hwmon: c });
    assertEquals(success.hwmon, 1);
    const l = (sensor: string, chip: string, name: string) =>
      `{chip="${chip}",chip_name="${name}",hostname="host1",sensor="${sensor}"}`;
    assertEquals(
      samples(sink, "ceems_hwmon_power_current_watts"),
      new Map([[l("power1", "platform_acpi_power_0", "power_meter"), 260.5]]),
    );
    assertEquals(
      samples(sink, "ceems_hwmon_power_avg_watts"),
      new Map([[l("power1", "platform_acpi_power_0", "power_meter"), 250]]),
    );
    // A sensor in the device/ directory belongs to the same monitor.
    assertEquals(
      samples(sink, "ceems_hwmon_power_max_watts"),
      new Map([[l("power2", "platform_acpi_power_0", "power_meter"), 90]]),
    );
    assertEquals(
      samples(sink, "ceems_hwmon_energy_current_joules"),
      new Map([[l("energy1", "socket", "socket"), 1234]]),
    );
    // Zero readings are not emitted; temperature-only monitors are ignored.
    assertEquals(sink.families.has("ceems_hwmon_power_min_watts"), false);
  });
});

Deno.test("hwmon: a truncated sensor file fails hwmon with one log line; other sensors and collectors stay", async () => {
  await withTempDir(async (sys) => {
    hwmonTree(sys);
    Deno.writeTextFileSync(join(sys, "class/hwmon/hwmon1/energy1_input"), "12ab");
    writeTree(sys, { "cray/pm_counters/energy": "9 J 1 us\n" });
    const hwmon = await makeCollector("hwmon", [], { paths: { sysfs: sys } });
    const cray = await makeCollector("cray_pm_counters", [], { paths: { sysfs: sys } });
    const log: string[] = [];
    const { sink, success } = await scrape({ hwmon, cray_pm_counters: cray }, log);
    assertEquals(success, { hwmon: 0, cray_pm_counters: 1 });
    const errors = log.filter((l) => l.includes("level=error"));
    assertEquals(errors.length, 1);
    assertMatch(errors[0], /energy1_input: not a number/);
    assertEquals(samples(sink, "ceems_hwmon_power_current_watts").size, 1);
    assertEquals(samples(sink, "ceems_cray_pm_counters_energy_joules").size, 1);
  });
});
