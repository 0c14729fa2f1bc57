// Tests of the process_* metrics: /proc/self/stat field positions, and a live snapshot of this
// test process that must agree with /proc/self/status.

import { emitProcessMetrics, parseSelfStat, processSnapshot } from "../../common/process_metrics.ts";
import { FamilySink } from "../../collectors/framework/metric_sink.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

Deno.test("parseSelfStat reads utime, stime, start time, vsize and rss after a command with spaces", () => {
  const text = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 " +
    "5000 1048576 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
  const s = parseSelfStat(text, 1_700_000_000);
  assertEquals(s.cpuUser, 2.5);
  assertEquals(s.cpuSystem, 0.5);
  assertEquals(s.startTime, 1_700_000_050);
  assertEquals(s.virtualBytes, 1048576);
  assertEquals(s.residentBytes, 300 * 4096);
});

Deno.test("processSnapshot of this process matches /proc/self/status", () => {
  const snap = processSnapshot();
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]);
  assert(Math.abs(snap.residentBytes / 1024 - rssKiB) / rssKiB < 0.2, `${snap.residentBytes} vs ${rssKiB} KiB`);
  assert(snap.openFds! > 2);
  assert(snap.maxFds! >= snap.openFds!);
  assert(Math.abs(snap.startTime - Date.now() / 1000) < 3600, "start time not recent");
});

Deno.test("emitProcessMetrics writes client_golang's process_* families from one snapshot", () => {
  const sink = new FamilySink();
  emitProcessMetrics(sink, {
    cpuUser: 1.5,
    cpuSystem: 0.25,
    residentBytes: 4096,
    virtualBytes: 8192,
    startTime: 1700000000.5,
  });
  const got = [...sink.families.values()].map((f) => [f.name, f.type, f.values[0]]);
  assertEquals(got, [
    ["process_cpu_seconds_total", "counter", 1.75],
    ["process_resident_memory_bytes", "gauge", 4096],
    ["process_virtual_memory_bytes", "gauge", 8192],
    ["process_start_time_seconds", "gauge", 1700000000.5],
  ]); // descriptor counts are left out when unknown (non-dumpable after the privilege drop)
  const live = new FamilySink();
  emitProcessMetrics(live);
  assertEquals(live.families.get("process_open_fds")!.values[0] > 2, true);
});
