// Tests of the perf FFI helpers that need no kernel: multiplex scaling of readings and CPU list parsing.

import { parseCpuList, scaledCount } from "../../ffi/perf.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("scaledCount scales by time_enabled/time_running and is 0 for an event that never ran", () => {
  assertEquals(scaledCount({ value: 1000n, timeEnabled: 10n, timeRunning: 10n }), 1000);
  assertEquals(scaledCount({ value: 1000n, timeEnabled: 40n, timeRunning: 10n }), 4000);
  assertEquals(scaledCount({ value: 0n, timeEnabled: 40n, timeRunning: 0n }), 0);
});

Deno.test("parseCpuList expands ranges and single CPUs", () => {
  assertEquals(parseCpuList("0-3,6,8-9\n"), [0, 1, 2, 3, 6, 8, 9]);
  assertEquals(parseCpuList("0\n"), [0]);
  assertEquals(parseCpuList(""), []);
});
