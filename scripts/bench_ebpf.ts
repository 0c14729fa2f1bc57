// Benchmark: CPU overhead of the ebpf sub-collector's programs, as ratios of the workload's CPU time with the
// programs attached to the time without, in alternating blocks, plus bpf_stats and empty programs' attach floor.

import { createEbpfCollector, ebpfFlags, registerEbpfFlags } from "../collectors/units/ebpf.ts";
import { benchBpfObjectNames, buildBpfObjects, defaultBpfOutDir } from "../collectors/units/ebpf/build.ts";
import { FamilySink } from "../collectors/framework/metric_sink.ts";
import { FlagSet } from "../common/flags.ts";
import { Logger } from "../common/log.ts";
import { type BpfAttachGroup, bpfDetach, bpfLoadSync, bpfReattach, bpfUnload } from "../ffi/libbpf.ts";
import { InlineSecurityManager } from "../privilege/security.ts";
import { makeCgroup, moveInto, removeCgroup } from "../tests/helpers/cgroup.ts";
import { Workload } from "../tests/helpers/workload.ts";

/** Alternating off/on pairs per workload and attach configuration. */
const pairs = Number(Deno.env.get("BENCH_EBPF_PAIRS") ?? 30);
const paths = { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" };
const MIB = Number(Deno.env.get("BENCH_EBPF_MIB") ?? 64);
const FILES = 100;
const N_WRITE = 100000;
const N_GETPPID = 200000;
/** Syscall sizes of the file write+read sweep (same total bytes, MIB, at each size). */
const SWEEP_KIB = [4, 64, 256, 1024];

/**
 * One persistent process per workload: prints "ready", then runs the workload once per stdin line and prints
 * "done". `mixed`: the fixed IO and network workload (see the printed description); `write1`: 1-byte writes to
 * /dev/null (counted: the worst case per counted syscall); `getppid`: a syscall the collector does not count;
 * `file`: the mixed workload's file write + read back alone, in syscalls of $n bytes (the size sweep).
 */
const script = `
use Socket;
$| = 1;
my ($what, $dir, $mib, $files, $n) = @ARGV;
open(my $null, ">", "/dev/null") or die;
my $cs = $what eq "file" ? $n : 65536;
my $chunk = "x" x $cs;
my $small = "y" x 4096;
my ($a, $b);
if ($what eq "mixed") {
  socket(my $l, PF_INET, SOCK_STREAM, 0) or die; bind($l, sockaddr_in(0, inet_aton("127.0.0.1"))) or die;
  listen($l, 1) or die; my ($port) = sockaddr_in(getsockname($l));
  socket($a, PF_INET, SOCK_STREAM, 0) or die; connect($a, sockaddr_in($port, inet_aton("127.0.0.1"))) or die;
  accept($b, $l) or die;
}
print "ready\\n";
while (<STDIN>) {
  if ($what eq "write1") { syswrite($null, "x", 1) for 1 .. $n }
  elsif ($what eq "getppid") { getppid() for 1 .. $n }
  else {
    my $k = $mib * 1024 * 1024 / $cs;
    open(my $f, ">", "$dir/data") or die; syswrite($f, $chunk, $cs) == $cs or die for 1 .. $k; close($f);
    my $buf;
    open($f, "<", "$dir/data") or die; 1 while sysread($f, $buf, $cs); close($f);
    unlink("$dir/data") or die;
    if ($what eq "file") { print "done\\n"; next }
    for my $i (1 .. $files) {
      open(my $g, ">", "$dir/f$i") or die; syswrite($g, $small, 4096); close($g);
      open($g, "<", "$dir/f$i") or die; sysread($g, $buf, 4096); close($g);
      unlink("$dir/f$i") or die;
    }
    for (1 .. $k) {
      syswrite($a, $chunk, $cs) == $cs or die;
      my $got = 0; while ($got < $cs) { my $r = sysread($b, $buf, $cs - $got) or die; $got += $r }
    }
  }
  print "done\\n";
}
`;

function usageUsec(cg: string): number {
  const m = /usage_usec (\d+)/.exec(Deno.readTextFileSync(`${cg}/cpu.stat`));
  if (!m) throw new Error(`no usage_usec in ${cg}/cpu.stat`);
  return Number(m[1]);
}

/** A workload process in its own cgroup; run() measures one run's CPU time (µs) from the cgroup. */
class Bench {
  readonly cg = makeCgroup("bench-ebpf");
  readonly w: Workload;
  /** calls: syscalls per run (for ns/call); counts: whether the collector counts any of them. */
  constructor(
    readonly name: string,
    readonly title: string,
    args: string[],
    readonly calls?: number,
    readonly counts = true,
  ) {
    this.w = new Workload(script, args);
  }
  async start(): Promise<void> {
    await this.w.waitLine("ready");
    moveInto(this.cg, this.w.pid);
  }
  async run(): Promise<number> {
    const start = usageUsec(this.cg);
    await this.w.send("go");
    await this.w.waitLine("done", 120000);
    return usageUsec(this.cg) - start;
  }
  async stop(): Promise<void> {
    await this.w.stop();
    removeCgroup(this.cg);
  }
}

/** kernel.bpf_stats_enabled, as a sysctl file. */
const statsFile = "/proc/sys/kernel/bpf_stats_enabled";

/** The program id behind a link fd (from /proc/self/fdinfo). */
function progIdOfLink(fd: number): number {
  const m = /prog_id:\s*(\d+)/.exec(Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`));
  if (!m) throw new Error(`no prog_id for link fd ${fd}`);
  return Number(m[1]);
}

/** Whether bpftool runs here: without it the bpf_stats measure is skipped and the overhead ratios still print. */
const haveBpftool = (() => {
  try {
    return new Deno.Command("bpftool", { args: ["version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

/** run_time_ns and run_cnt summed over program ids (bpftool; needs kernel.bpf_stats_enabled=1 to grow). */
function progStats(ids: Set<number>): { ns: number; cnt: number } {
  const out = new Deno.Command("bpftool", { args: ["-j", "prog", "show"], stdout: "piped" }).outputSync();
  const progs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    id: number;
    run_time_ns?: number;
    run_cnt?: number;
  }[];
  let ns = 0, cnt = 0;
  for (const p of progs) {
    if (!ids.has(p.id)) continue;
    ns += p.run_time_ns ?? 0;
    cnt += p.run_cnt ?? 0;
  }
  return { ns, cnt };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.round(q * (xs.length - 1))];
/** Mean of the middle half (25 % trimmed off each end). */
const trimmedMean = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.floor(s.length / 4);
  const mid = s.slice(k, s.length - k);
  return mid.reduce((a, b) => a + b, 0) / mid.length;
};
const pct = (r: number) => `${r >= 1 ? "+" : ""}${((r - 1) * 100).toFixed(1)} %`;

interface Row {
  bench: string;
  config: string;
  mode: string;
  off: number[];
  on: number[];
  ratios: number[];
  statsNsPerRun: number;
  statsRunsPerRun: number;
}

/** Programs that a configuration attaches and detaches between runs (the collector's, or the empty floor). */
interface Subject {
  mode: string;
  set(on: boolean): void;
  /** Ids of the attached programs (while attached). */
  progIds(): Set<number>;
}

/** Name of the configuration with the collector's default attach groups; the floor mirrors its attach points. */
const REAL = "io+net";
const FLOOR = "empty (floor)";
/** Attach configurations: name, flags, attach modes skipped, whether the size sweep runs under it. */
const both = ["--collector.ebpf.io-metrics", "--collector.ebpf.network-metrics"];
const configs: [string, string[], string[], boolean][] = [
  [REAL, both, [], true],
  ["io+net, sys_exit", both, ["tracepoint"], false],
  ["net only", ["--collector.ebpf.network-metrics"], [], false],
];

/** Alternating off/on pairs (and the bpf_stats runs) of every bench under one subject. */
async function measure(name: string, subject: Subject, benches: Bench[]): Promise<Row[]> {
  let attached = true;
  const set = (on: boolean) => {
    if (on === attached) return;
    subject.set(on);
    attached = on;
  };
  const rows: Row[] = [];
  for (const b of benches) {
    const row: Row = {
      bench: b.name,
      config: name,
      mode: subject.mode,
      off: [],
      on: [],
      ratios: [],
      statsNsPerRun: 0,
      statsRunsPerRun: 0,
    };
    for (const on of [false, true]) {
      set(on);
      await b.run(); // warm-up
    }
    for (let i = 0; i < pairs; i++) {
      // ABBA: off first in even pairs, on first in odd ones, so a drift hits both alike.
      const order = i % 2 === 0 ? [false, true] : [true, false];
      const t: Record<string, number> = {};
      for (const on of order) {
        set(on);
        t[String(on)] = await b.run();
      }
      row.off.push(t["false"]);
      row.on.push(t["true"]);
      row.ratios.push(t["true"] / t["false"]);
    }
    // Second measure: the programs' own run time (kernel.bpf_stats_enabled), in separate runs since the
    // statistics cost time themselves.
    if (!haveBpftool) {
      rows.push(row);
      continue;
    }
    set(true);
    const ids = subject.progIds();
    const prev = Deno.readTextFileSync(statsFile).trim();
    Deno.writeTextFileSync(statsFile, "1");
    try {
      // Per run; the run with the fewest program runs is kept: the statistics are system-wide, so a neighbour's
      // counted syscalls only ever add runs, and the quietest run is the closest to the workload's own.
      let best = { ns: 0, cnt: Infinity };
      let s0 = progStats(ids);
      for (let i = 0; i < 5; i++) {
        await b.run();
        const s1 = progStats(ids);
        if (s1.cnt - s0.cnt < best.cnt) best = { ns: s1.ns - s0.ns, cnt: s1.cnt - s0.cnt };
        s0 = s1;
      }
      row.statsNsPerRun = best.ns;
      row.statsRunsPerRun = best.cnt;
    } finally {
      Deno.writeTextFileSync(statsFile, prev);
    }
    rows.push(row);
  }
  return rows;
}

/**
 * The floor's attach group, mirroring the collector's loaded groups program for program (io_tp_<name> →
 * floor_tp_<name> on the same tracepoint id, net_<x>_btf → floor_net_<x>_btf); throws unless the collector
 * attached io per-syscall and net tp_btf, the configuration the floor stands for.
 */
function floorGroupOf(groups: BpfAttachGroup[]): BpfAttachGroup {
  const modes = groups.map((g) => g.mode).join(" ");
  if (modes !== "tracepoint tp_btf") throw new Error(`the floor mirrors io:tracepoint net:tp_btf, not ${modes}`);
  const programs: string[] = [];
  const tracepointIds: Record<string, number> = {};
  for (const g of groups) {
    for (const p of g.programs) {
      const f = p.replace(/^io_tp_/, "floor_tp_").replace(/^net_/, "floor_net_");
      if (f === p) throw new Error(`no floor program for ${p}`);
      programs.push(f);
      if (g.tracepointIds?.[p] !== undefined) tracepointIds[f] = g.tracepointIds[p];
    }
  }
  return { mode: "tracepoint+tp_btf", programs, tracepointIds };
}
let floorGroup: BpfAttachGroup | undefined;

async function measureConfig(name: string, args: string[], skip: string[], benches: Bench[]): Promise<Row[]> {
  const flags = new FlagSet("bench", "");
  registerEbpfFlags(flags);
  flags.parse(args);
  const c = await createEbpfCollector({
    flags: ebpfFlags(flags),
    logger: new Logger("warn"),
    paths,
    security: new InlineSecurityManager(),
    skipModes: skip,
  });
  if (!c) throw new Error("ebpf collector not created");
  const unit = [{ uuid: "bench", cgroupPath: benches[0].cg, pids: [] }];
  try {
    await c.update(unit, new FamilySink(), {}); // loads and attaches, as at the first scrape
    const loaded = c.loaded;
    if (loaded.length !== args.length) {
      throw new Error(`eBPF programs did not attach: ${JSON.stringify(c.attachModes)}`);
    }
    if (name === REAL) floorGroup = floorGroupOf(loaded.map((l) => l.group));
    const rows = await measure(name, {
      mode: loaded.map((l) => `${l.name}:${l.result.mode}`).join(" "),
      set: (on) => {
        for (const l of loaded) on ? bpfReattach(l.result, l.group) : bpfDetach(l.result);
      },
      progIds: () => new Set(loaded.flatMap((l) => l.result.linkFds.map(progIdOfLink))),
    }, benches);
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      await c.update(unit, new FamilySink(), {});
      times.push(performance.now() - t0);
    }
    scrapeMs.set(name, median(times));
    return rows;
  } finally {
    c.stop();
  }
}

/**
 * The attach floor: collectors/units/ebpf/floor.bpf.o (benchmark only), empty programs attached exactly where the
 * collector's default configuration attached (same tracepoint ids through perf events, same tp_btf hooks).
 */
async function measureFloor(benches: Bench[]): Promise<Row[]> {
  if (!floorGroup) throw new Error(`the floor needs the "${REAL}" configuration's attach groups first`);
  const group = floorGroup;
  const { floor } = await buildBpfObjects(defaultBpfOutDir, undefined, benchBpfObjectNames);
  const r = bpfLoadSync(floor, [group], []);
  try {
    return await measure(FLOOR, {
      mode: `floor:${group.mode} (${group.programs.length} empty programs)`,
      set: (on) => on ? bpfReattach(r, group) : bpfDetach(r),
      progIds: () => new Set(r.linkFds.map(progIdOfLink)),
    }, benches);
  } finally {
    bpfUnload(r);
  }
}

/** Mounts tracefs for the per-syscall tracepoint group when it is not (the exporter never does); returns the undo. */
function ensureTracefs(): () => void {
  try {
    Deno.statSync("/sys/kernel/tracing/events/syscalls");
    return () => {};
  } catch {
    const r = new Deno.Command("mount", { args: ["-t", "tracefs", "tracefs", "/sys/kernel/tracing"] }).outputSync();
    if (!r.success) throw new Error(`mounting tracefs: ${new TextDecoder().decode(r.stderr)}`);
    console.log("(tracefs mounted at /sys/kernel/tracing for this run; unmounted at the end)");
    return () => {
      new Deno.Command("umount", { args: ["/sys/kernel/tracing"] }).outputSync();
    };
  }
}

const dir = Deno.makeTempDirSync({ prefix: "ceems-bench-ebpf-" });
const undoTracefs = ensureTracefs();
const benches = [
  new Bench(
    "mixed",
    `fixed IO+network workload: ${MIB} MiB file write + read back (64 KiB syscalls), ${FILES}× (create, write ` +
      `4 KiB, close, open, read, close, unlink), ${MIB} MiB over one loopback TCP connection (64 KiB send + recv)`,
    ["mixed", dir, String(MIB), String(FILES), "0"],
  ),
  new Bench("write1", `${N_WRITE} 1-byte writes to /dev/null (counted; worst case)`, [
    "write1",
    dir,
    "0",
    "0",
    String(N_WRITE),
  ], N_WRITE),
  new Bench(
    "getppid",
    `${N_GETPPID} getppid calls (not counted)`,
    ["getppid", dir, "0", "0", String(N_GETPPID)],
    N_GETPPID,
    false,
  ),
];
/** The size sweep: the mixed workload's file part alone, same bytes, per-syscall size varied. */
const sweep = SWEEP_KIB.map((kib) => {
  const calls = 2 * MIB * 1024 / kib; // writes + reads (plus one read at EOF)
  const size = kib >= 1024 ? `${kib / 1024} MiB` : `${kib} KiB`;
  return new Bench(
    `file ${size}`,
    `${MIB} MiB file write + read back in ${size} syscalls (${calls} counted syscalls), size sweep`,
    ["file", dir, String(MIB), "0", String(kib * 1024)],
    calls,
  );
});
const rows: Row[] = [];
/** Median time of one update() (map reads, per-CPU sums, ageing, samples) per configuration. */
const scrapeMs = new Map<string, number>();
const t0 = performance.now();
try {
  for (const b of [...benches, ...sweep]) await b.start();
  for (const [name, args, skip, withSweep] of configs) {
    rows.push(...await measureConfig(name, args, skip, withSweep ? [...benches, ...sweep] : benches));
  }
  rows.push(...await measureFloor([...benches, ...sweep]));
} finally {
  for (const b of [...benches, ...sweep]) await b.stop();
  Deno.removeSync(dir, { recursive: true });
  undoTracefs();
}

console.log(
  `\nCPU time of the workload's cgroup per run; ${pairs} off/on pairs per row (ABBA order, programs detached and` +
    `\nreattached between runs). overhead = median of the per-pair on/off ratios (p25..p75 of them),` +
    `\nratio of trimmed means (middle half) beside it; bpf_stats = the programs' own run time per run` +
    `\n(kernel.bpf_stats_enabled, 5 separate runs, the one with the fewest program runs kept: the statistics are` +
    `\nsystem-wide, so other processes' counted syscalls can add to it) as a share of the off median. Overhead figures are the workload's own CPU time only.` +
    `\n"${FLOOR}": the attach floor, empty programs (return 0; collectors/units/ebpf/floor.bpf.c, benchmark only) on` +
    `\nthe "${REAL}" row's attach points, attached the same way: what the kernel's hooks cost before any of our code.`,
);
const nsPerProgRun = (r: Row) => r.statsRunsPerRun ? r.statsNsPerRun / r.statsRunsPerRun : 0;
for (const b of [...benches, ...sweep]) {
  console.log(`\n${b.name}: ${b.title}`);
  for (const r of rows.filter((x) => x.bench === b.name)) {
    const offMed = median(r.off);
    let line = `  ${r.config.padEnd(17)} off ${(offMed / 1000).toFixed(1)} ms, on ${
      (median(r.on) / 1000).toFixed(1)
    } ms: overhead ${pct(median(r.ratios))} (p25..p75 ${pct(quantile(r.ratios, 0.25))}..${
      pct(quantile(r.ratios, 0.75))
    }), trimmed means ${pct(trimmedMean(r.on) / trimmedMean(r.off))}`;
    if (b.calls) line += `, ${((median(r.on) - offMed) * 1000 / b.calls).toFixed(0)} ns/call`;
    const stats = haveBpftool
      ? `${Math.round(r.statsRunsPerRun)} program runs/run × ${nsPerProgRun(r).toFixed(0)} ns = ${
        (r.statsNsPerRun / 1e6).toFixed(2)
      } ms/run = ${(r.statsNsPerRun / 1000 / offMed * 100).toFixed(1)} % of off`
      : "skipped (bpftool not found)";
    line += `\n  ${"".padEnd(17)} bpf_stats: ${stats}`;
    console.log(line);
  }
}

console.log(
  `\nAttributable to our program bodies = overhead of the "${REAL}" programs − overhead of the empty programs on` +
    `\nthe same attach points (each the median per-pair ratio of its own row; the p25..p75 ranges above show how` +
    `\nnoisy a difference is). Per counted event = (on − off median CPU time) / the workload's program runs (the fewer` +
    `\nof the two rows' bpf_stats counts: both hook the same points, neighbours only add).`,
);
for (const b of [...benches, ...sweep]) {
  const real = rows.find((r) => r.bench === b.name && r.config === REAL);
  const floor = rows.find((r) => r.bench === b.name && r.config === FLOOR);
  if (!real || !floor) continue;
  const ov = (r: Row) => (median(r.ratios) - 1) * 100;
  const events = Math.min(real.statsRunsPerRun, floor.statsRunsPerRun);
  const perEvent = (r: Row) => b.counts && events ? ((median(r.on) - median(r.off)) * 1000 / events).toFixed(0) : "-";
  const sign = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)} %`;
  console.log(
    `  ${b.name.padEnd(12)} real programs ${sign(ov(real))}, empty programs (attach floor) ${
      sign(ov(floor))
    }, our program bodies ${sign(ov(real) - ov(floor))}; per counted event ${perEvent(real)} ns real, ${
      perEvent(floor)
    } ns floor (bpf_stats run time ${nsPerProgRun(real).toFixed(0)} vs ${nsPerProgRun(floor).toFixed(0)} ns)`,
  );
}
console.log(
  `\nscrape (update: map reads, per-CPU sums, ageing) time, 1 unit, median of 9: ${
    [...scrapeMs].map(([n, ms]) => `${n} ${ms.toFixed(2)} ms`).join(", ")
  }`,
);
console.log(`attach modes: ${[...new Set(rows.map((r) => `${r.config} = ${r.mode}`))].join("; ")}`);
console.log(`benchmark wall time ${((performance.now() - t0) / 1000).toFixed(0)} s`);
