// Tests of the cpu collector: /proc/stat and /proc/cpuinfo parsing, CEEMS's metric names, and
// the monotonic guard against counters that jump backwards.

import { parsePerCoreCount, parseProcStat } from "../../collectors/cpu.ts";
import { registeredCollectors } from "../../collectors/framework/registry.ts";
import { FamilySink } from "../../collectors/framework/metric_sink.ts";
import { FlagSet } from "../../common/flags.ts";
import { nullLogger } from "../../common/log.ts";
import { InlineSecurityManager } from "../../privilege/security.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

const stat = `cpu  301854 612 111922 8979004 3552 2 3944 0 0 0
cpu0 44490 19 21045 1087069 220 1 3410 0 0 0
cpu1 47869 23 16474 1110787 591 0 46 0 0 0
intr 1 2 3
`;

Deno.test("parseProcStat converts USER_HZ ticks to seconds and counts CPUs", () => {
  const s = parseProcStat(stat);
  assertEquals(s.cpus, 2);
  assertEquals(s.times.user, 3018.54);
  assertEquals(s.times.idle, 89790.04);
  assertEquals(s.times.steal, 0);
});

Deno.test("parseProcStat rejects a stat without the aggregate line or with garbage", () => {
  assertThrows(() => parseProcStat("cpu0 1 2 3 4\n"), /no aggregate cpu line/);
  assertThrows(() => parseProcStat("cpu  a b c d\n"), /malformed/);
});

Deno.test("parsePerCoreCount divides logical CPUs by physical cores over sockets", () => {
  const socket = (id: number, n: number) =>
    Array.from({ length: n }, (_, i) => `processor\t: ${i}\nphysical id\t: ${id}\ncpu cores\t: 2\n`).join("\n");
  assertEquals(parsePerCoreCount(socket(0, 4) + "\n" + socket(1, 4)), 2);
  assertEquals(parsePerCoreCount("processor : 0\n"), 1);
});

Deno.test("cpu collector emits CEEMS names and never lets a counter go backwards", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/cpuinfo`, "processor : 0\nphysical id : 0\ncpu cores : 1\n");
  Deno.writeTextFileSync(`${dir}/stat`, "cpu  1000 0 500 100000 0 0 0 0\ncpu0 1 1 1 1\n");
  const def = registeredCollectors().find((d) => d.name === "cpu")!;
  const c = await def.create({
    logger: nullLogger,
    paths: { procfs: dir, sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" },
    hostname: "h1",
    security: new InlineSecurityManager(),
  }, def.options?.(new FlagSet("t", "t")));
  const first = new FamilySink();
  await c.update(first);
  const user = () => first.families.get("ceems_cpu_seconds_total")!.samples.find((s) => s.labels.mode === "user")!;
  assertEquals(user().value, 10);
  assertEquals(user().labels.hostname, "h1");
  assertEquals(first.families.get("ceems_cpu_seconds_total")!.type, "counter");
  assertEquals(first.families.get("ceems_cpu_count")!.samples[0].value, 1);
  // user goes back by 1 tick (a per-CPU rounding glitch): the previous value is kept.
  Deno.writeTextFileSync(`${dir}/stat`, "cpu  999 0 500 100001 0 0 0 0\ncpu0 1 1 1 1\n");
  const second = new FamilySink();
  await c.update(second);
  const user2 = second.families.get("ceems_cpu_seconds_total")!.samples.find((s) => s.labels.mode === "user")!;
  assertEquals(user2.value, 10);
  Deno.removeSync(dir, { recursive: true });
});
