// Tests of the perf sub-collector on the real kernel: software counters of a real cgroup2 unit (cgroup
// mode) and of processes (pid mode) match a known workload; absent hardware events log once.

import { FamilySink } from "../../../collectors/framework/metric_sink.ts";
import {
  createPerfCollector,
  PerfCollector,
  perfEvents,
  perfFlags,
  registerPerfFlags,
} from "../../../collectors/units/perf.ts";
import type { ComputeUnit } from "../../../collectors/units/subcollector.ts";
import { FlagSet } from "../../../common/flags.ts";
import { Logger } from "../../../common/log.ts";
import { InlineSecurityManager } from "../../../privilege/security.ts";
import { assert, assertEquals, assertThrows } from "../../helpers/assert.ts";
import { makeCgroup, moveInto, removeCgroup } from "../../helpers/cgroup.ts";
import { Workload } from "../../helpers/workload.ts";

const paths = { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" };

/** Touches MiB megabytes of fresh memory (page faults) and sleeps N times 1 ms (context switches). */
const script = `
$| = 1;
my ($mib, $sleeps) = @ARGV;
print "ready\\n";
<STDIN>;
my $x = "a" x ($mib * 1024 * 1024);
select(undef, undef, undef, 0.001) for 1 .. $sleeps;
print "done ", length($x), "\\n";
<STDIN>;
`;

function collector(args: string[], lines: string[] = [], env = false): PerfCollector {
  const flags = new FlagSet("test", "");
  registerPerfFlags(flags);
  registerPerfFlags(flags); // idempotent: several unit collectors call it
  flags.parse(args);
  const logger = new Logger("info", "logfmt", {}, (l) => lines.push(l));
  const c = createPerfCollector({ flags: perfFlags(flags), logger, paths, security: new InlineSecurityManager() });
  assert(c, "perf flags given, collector expected");
  if (env) assertEquals(c.activeEvents.length > 0, true);
  return c;
}

function value(sink: FamilySink, stem: string, uuid: string): number | undefined {
  const fam = sink.families.get(`ceems_perf_${stem}_total`);
  return fam?.samples.find((s) => s.labels.uuid === uuid)?.value;
}

async function scrape(c: PerfCollector, units: ComputeUnit[]): Promise<FamilySink> {
  const sink = new FamilySink();
  assertEquals(await c.update(units, sink, { manager: "slurm", hostname: "host1" }), true);
  return sink;
}

Deno.test("perf is off without flags and registers CEEMS's flags", () => {
  const flags = new FlagSet("test", "");
  registerPerfFlags(flags);
  flags.parse([]);
  assertEquals(
    createPerfCollector({
      flags: perfFlags(flags),
      logger: new Logger(),
      paths,
      security: new InlineSecurityManager(),
    }),
    undefined,
  );
  for (const f of ["hardware-events", "software-events", "hardware-cache-events", "env-var"]) {
    assert(flags.has(`collector.perf.${f}`), f);
  }
  for (const f of ["hardware-profilers", "software-profilers", "cache-profilers"]) {
    assert(flags.has(`collector.perf.${f}`), f);
  }
  assertEquals(perfEvents.length, 24);
});

Deno.test("--collector.perf.software-profilers selects events by CEEMS's profiler names; unknown names are refused", () => {
  const c = collector([
    "--collector.perf.software-events",
    "--collector.perf.software-profilers=PageFault",
    "--collector.perf.software-profilers=ContextSwitch",
  ]);
  assertEquals(c.activeEvents.map((e) => e.stem), ["page_faults", "context_switches"]);
  const flags = new FlagSet("test", "");
  registerPerfFlags(flags);
  assertThrows(() => flags.parse(["--collector.perf.cache-profilers=L1Nope"]), /unknown cache profiler "L1Nope"/);
});

Deno.test("perf cgroup mode: page faults and context switches of a real cgroup2 unit match the workload", async () => {
  const cg = makeCgroup("perf");
  const idleCg = makeCgroup("perf-idle");
  const lines: string[] = [];
  const c = collector(["--collector.perf.software-events", "--collector.perf.hardware-events"], lines);
  const w = new Workload(script, ["64", "200"]);
  try {
    await w.waitLine("ready");
    moveInto(cg, w.pid);
    // No pids given: in cgroup mode the kernel counts whatever runs in the cgroup.
    const units: ComputeUnit[] = [
      { uuid: "1001", cgroupPath: cg, pids: [] },
      { uuid: "1002", cgroupPath: idleCg, pids: [] },
    ];
    const before = await scrape(c, units);
    // This VM has no PMU: hardware events are dropped with one log line naming them.
    const warns = lines.filter((l) => l.includes("not supported"));
    assertEquals(warns.length, 1, lines.join("\n"));
    assert(warns[0].includes("cpucycles") && warns[0].includes("instructions"), warns[0]);
    assertEquals(value(before, "cpucycles", "1001"), undefined);
    await w.send("go");
    await w.waitLine("done");
    const after = await scrape(c, units);
    const faults = value(after, "page_faults", "1001")! - (value(before, "page_faults", "1001") ?? 0);
    const minor = value(after, "minor_faults", "1001")! - (value(before, "minor_faults", "1001") ?? 0);
    const switches = value(after, "context_switches", "1001")! - (value(before, "context_switches", "1001") ?? 0);
    const pages = (64 * 1024 * 1024) / 4096;
    // "a" x 64 MiB builds the string in a fresh 64 MiB buffer: at least one fault per 4 KiB page.
    assert(faults >= pages && faults < pages * 3, `page faults ${faults}, expected ~${pages}`);
    assert(minor >= pages && minor <= faults, `minor faults ${minor}`);
    assert(switches >= 200 && switches < 2000, `context switches ${switches}, expected >= 200`);
    // The empty unit counted nothing, so (as in CEEMS) it has no samples; hardware events stay absent
    // and no new warning was logged.
    assertEquals(value(after, "page_faults", "1002"), undefined);
    assertEquals(value(after, "instructions", "1001"), undefined);
    assertEquals(lines.filter((l) => l.includes("not supported")).length, 1);
    const fam = after.families.get("ceems_perf_page_faults_total")!;
    assertEquals(fam.type, "counter");
    assertEquals(Object.keys(fam.samples[0].labels).sort(), ["hostname", "manager", "uuid"]);
  } finally {
    c.stop();
    await w.stop();
    removeCgroup(cg);
    removeCgroup(idleCg);
  }
});

Deno.test("perf pid mode with --collector.perf.env-var counts only processes carrying the variable", async () => {
  const c = collector(["--collector.perf.software-events", "--collector.perf.env-var=CEEMS_PERF_TEST"]);
  const marked = new Workload(script, ["32", "50"], { CEEMS_PERF_TEST: "1" });
  const plain = new Workload(script, ["32", "50"]);
  try {
    await marked.waitLine("ready");
    await plain.waitLine("ready");
    // Units without a cgroup mount (here a path outside any cgroupfs) are counted per process.
    const units: ComputeUnit[] = [
      { uuid: "a", cgroupPath: "/nonexistent/a", pids: [marked.pid] },
      { uuid: "b", cgroupPath: "/nonexistent/b", pids: [plain.pid] },
    ];
    const before = await scrape(c, units);
    await marked.send("go");
    await plain.send("go");
    await marked.waitLine("done");
    await plain.waitLine("done");
    const after = await scrape(c, units);
    const faults = value(after, "page_faults", "a")! - (value(before, "page_faults", "a") ?? 0);
    const pages = (32 * 1024 * 1024) / 4096;
    assert(faults >= pages && faults < pages * 3, `page faults ${faults}, expected ~${pages}`);
    assertEquals(value(after, "page_faults", "b"), undefined);
    // A unit that ended is forgotten (its counters closed).
    const gone = await scrape(c, units.slice(1));
    assertEquals(value(gone, "page_faults", "a"), undefined);
  } finally {
    c.stop();
    await marked.stop();
    await plain.stop();
  }
});

Deno.test("a failing security context fails the perf scrape without throwing, with one error line", async () => {
  const flags = new FlagSet("test", "");
  registerPerfFlags(flags);
  flags.parse(["--collector.perf.software-events"]);
  const lines: string[] = [];
  const logger = new Logger("info", "logfmt", {}, (l) => lines.push(l));
  const security = {
    run: () => Promise.reject(new Error("capability raise refused")),
    exec: () => Promise.reject(new Error("no commands here")),
  };
  const c = createPerfCollector({ flags: perfFlags(flags), logger, paths, security })!;
  const sink = new FamilySink();
  assertEquals(await c.update([{ uuid: "x", cgroupPath: "/nonexistent", pids: [Deno.pid] }], sink, {}), false);
  assertEquals(sink.families.size, 0);
  assertEquals(lines.length, 1);
  assert(lines[0].includes("capability raise refused"), lines[0]);
  c.stop();
});
