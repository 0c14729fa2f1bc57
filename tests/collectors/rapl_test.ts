// Tests of the rapl collector: zone naming and indexes, longest-window power limits, the zone-label
// mode, the cap_dac_read_search fallback for root-only energy_uj, and truncated files.

import { join } from "node:path";
import { readEnergyFiles } from "../../collectors/rapl.ts";
import { closeRaw } from "../../ffi/libc.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { makeCollector, RecordingSecurityManager, samples, scrape } from "../helpers/collector_harness.ts";
import { withTempDir, writeTree } from "../helpers/tree.ts";

function powercap(sys: string) {
  const pc = "class/powercap";
  writeTree(sys, {
    [`${pc}/enabled`]: "1\n",
    [`${pc}/intel-rapl:0/name`]: "package-0\n",
    [`${pc}/intel-rapl:0/energy_uj`]: "1500000\n",
    [`${pc}/intel-rapl:0/constraint_0_time_window_us`]: "1000\n",
    [`${pc}/intel-rapl:0/constraint_0_power_limit_uw`]: "50000000\n",
    [`${pc}/intel-rapl:0/constraint_1_time_window_us`]: "99999\n",
    [`${pc}/intel-rapl:0/constraint_1_power_limit_uw`]: "70000000\n",
    [`${pc}/intel-rapl:0:0/name`]: "dram\n",
    [`${pc}/intel-rapl:0:0/energy_uj`]: "2500000\n",
    [`${pc}/intel-rapl:0:0/constraint_0_time_window_us`]: "10\n",
    [`${pc}/intel-rapl:0:0/constraint_0_power_limit_uw`]: "0\n",
    [`${pc}/intel-rapl:1/name`]: "package-1\n",
    [`${pc}/intel-rapl:1/energy_uj`]: "3000000\n",
    [`${pc}/intel-rapl:1:0/name`]: "dram\n",
    [`${pc}/intel-rapl:1:0/energy_uj`]: "4000000\n",
  });
}

Deno.test("rapl: per-zone counters with CEEMS names, index and path labels; limit of the longest window", async () => {
  await withTempDir(async (sys) => {
    powercap(sys);
    const c = await makeCollector("rapl", [], { paths: { sysfs: sys } });
    const { sink, success } = await scrape({ rapl: c });
    assertEquals(success.rapl, 1);
    const p = (z: string) => join(sys, "class/powercap", z);
    assertEquals(
      samples(sink, "ceems_rapl_package_joules_total"),
      new Map([
        [`{hostname="host1",index="0",path="${p("intel-rapl:0")}"}`, 1.5],
        [`{hostname="host1",index="1",path="${p("intel-rapl:1")}"}`, 3],
      ]),
    );
    assertEquals(
      samples(sink, "ceems_rapl_dram_joules_total"),
      new Map([
        [`{hostname="host1",index="0",path="${p("intel-rapl:0:0")}"}`, 2.5],
        [`{hostname="host1",index="1",path="${p("intel-rapl:1:0")}"}`, 4],
      ]),
    );
    assertEquals(sink.families.get("ceems_rapl_package_joules_total")!.type, "counter");
    // Package 0: constraint 1 has the longest window (70 W); dram 0 has a 0 W limit; zone 1 has no constraints.
    assertEquals(
      samples(sink, "ceems_rapl_package_power_limit_watts_total"),
      new Map([[`{hostname="host1",index="0",path="${p("intel-rapl:0")}"}`, 70]]),
    );
    assertEquals([...samples(sink, "ceems_rapl_dram_power_limit_watts_total").values()], [0]);
  });
});

Deno.test("rapl: --collector.rapl.enable-zone-label gives one family with a rapl_zone label", async () => {
  await withTempDir(async (sys) => {
    powercap(sys);
    const c = await makeCollector("rapl", ["--collector.rapl.enable-zone-label"], { paths: { sysfs: sys } });
    const { sink } = await scrape({ rapl: c });
    const zones = [...sink.families.get("ceems_rapl_joules_total")!.samples].map((s) => s.labels.rapl_zone).sort();
    assertEquals(zones, ["dram", "dram", "package", "package"]);
    assertEquals(sink.families.has("ceems_rapl_package_joules_total"), false);
    assertEquals(sink.families.get("ceems_rapl_power_limit_watts_total")!.samples.length, 2);
  });
});

Deno.test("rapl: energy_uj refused to a plain read is opened once in the cap_dac_read_search context", async () => {
  await withTempDir(async (dir) => {
    const open = join(dir, "open_uj");
    const closed = join(dir, "closed_uj");
    Deno.writeTextFileSync(open, "11\n");
    Deno.writeTextFileSync(closed, "22\n");
    const sec = new RecordingSecurityManager();
    const plainRead = (p: string) => {
      if (p === closed) throw new Deno.errors.PermissionDenied(`open '${p}': Permission denied (os error 13)`);
      return Deno.readTextFileSync(p);
    };
    const held = new Map<string, number>();
    const got = await readEnergyFiles([open, closed], sec, plainRead, held);
    assertEquals(got, new Map([[open, "11\n"], [closed, "22\n"]]));
    assertEquals(sec.calls.length, 1);
    assertEquals([sec.calls[0].context.name, sec.calls[0].context.caps], ["rapl", ["cap_dac_read_search"]]);
    assertEquals(sec.calls[0].ops, [{ kind: "openFd", path: closed }]);
    // Later scrapes read the held descriptor from this thread: new values, no privileged call.
    Deno.writeTextFileSync(closed, "33\n");
    const again = await readEnergyFiles([open, closed], sec, plainRead, held);
    assertEquals(again.get(closed), "33\n");
    assertEquals(sec.calls.length, 1);
    for (const fd of held.values()) closeRaw(fd);
    // Nothing refused: no privileged call at all.
    const sec2 = new RecordingSecurityManager();
    await readEnergyFiles([open], sec2);
    assertEquals(sec2.calls.length, 0);
  });
});

Deno.test("rapl: a truncated energy_uj fails rapl for the scrape with one log line; other zones and collectors stay", async () => {
  await withTempDir(async (sys) => {
    powercap(sys);
    Deno.writeTextFileSync(join(sys, "class/powercap/intel-rapl:1/energy_uj"), "");
    writeTree(sys, { "cray/pm_counters/power": "300 W 1 us\n" });
    const rapl = await makeCollector("rapl", [], { paths: { sysfs: sys } });
    const cray = await makeCollector("cray_pm_counters", [], { paths: { sysfs: sys } });
    const log: string[] = [];
    const { sink, success } = await scrape({ rapl, cray_pm_counters: cray }, log);
    assertEquals(success, { rapl: 0, cray_pm_counters: 1 });
    const errors = log.filter((l) => l.includes("level=error"));
    assertEquals(errors.length, 1);
    assertMatch(errors[0], /intel-rapl:1\/energy_uj: not an unsigned integer/);
    assertEquals(samples(sink, "ceems_rapl_package_joules_total").size, 1);
    assert(samples(sink, "ceems_cray_pm_counters_power_watts").size === 1);
  });
});

Deno.test("rapl: a node without powercap reports no data (success 0, debug log only)", async () => {
  await withTempDir(async (sys) => {
    const c = await makeCollector("rapl", [], { paths: { sysfs: sys } });
    const log: string[] = [];
    const { success } = await scrape({ rapl: c }, log);
    assertEquals(success.rapl, 0);
    assertEquals(log.filter((l) => l.includes("level=error")).length, 0);
  });
});
