// Benchmark: CPU overhead of the ebpf sub-collector's programs, as ratios of the workload's CPU time with the
// programs attached to the time without, in many short alternating blocks on one loaded collector, plus bpf_stats.

import { createEbpfCollector, registerEbpfFlags } from "../collectors/ebpf.ts";
import { FamilySink } from "../collectors/metric_sink.ts";
import { FlagSet } from "../common/flags.ts";
import { Logger } from "../common/log.ts";
import { bpfDetach, bpfReattach } from "../ffi/libbpf.ts";
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

/**
 * One persistent process per workload: prints "ready", then runs the workload once per stdin line and prints
 * "done". `mixed`: the fixed IO and network workload (see the printed description); `write1`: 1-byte writes to
 * /dev/null (counted: the worst case per counted syscall); `getppid`: a syscall the collector does not count.
 */
const script = `
use Socket;
$| = 1;
my ($what, $dir, $mib, $files, $n) = @ARGV;
open(my $null, ">", "/dev/null") or die;
my $cs = 65536;
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
  constructor(readonly name: string, readonly title: string, args: string[], readonly calls?: number) {
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

/** Attach configurations: name, flags, attach modes skipped. */
const both = ["--collector.ebpf.io-metrics", "--collector.ebpf.network-metrics"];
const configs: [string, string[], string[]][] = [
  ["io+net", both, []],
  ["io+net, sys_exit", both, ["tracepoint"]],
  ["net only", ["--collector.ebpf.network-metrics"], []],
];

async function measureConfig(name: string, args: string[], skip: string[], benches: Bench[]): Promise<Row[]> {
  const flags = new FlagSet("bench", "");
  registerEbpfFlags(flags);
  flags.parse(args);
  const c = await createEbpfCollector({
    flags,
    logger: new Logger("warn"),
    paths,
    security: new InlineSecurityManager(),
    skipModes: skip,
  });
  if (!c) throw new Error("ebpf collector not created");
  const unit = [{ uuid: "bench", cgroupPath: benches[0].cg, pids: [] }];
  const rows: Row[] = [];
  try {
    await c.update(unit, new FamilySink(), {}); // loads and attaches, as at the first scrape
    const loaded = c.loaded;
    if (loaded.length !== args.length) {
      throw new Error(`eBPF programs did not attach: ${JSON.stringify(c.attachModes)}`);
    }
    const mode = loaded.map((l) => `${l.name}:${l.result.mode}`).join(" ");
    let attached = true;
    const set = (on: boolean) => {
      if (on === attached) return;
      for (const l of loaded) on ? bpfReattach(l.result, l.group) : bpfDetach(l.result);
      attached = on;
    };
    for (const b of benches) {
      const row: Row = {
        bench: b.name,
        config: name,
        mode,
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
      set(true);
      const ids = new Set(loaded.flatMap((l) => l.result.linkFds.map(progIdOfLink)));
      const prev = Deno.readTextFileSync(statsFile).trim();
      Deno.writeTextFileSync(statsFile, "1");
      try {
        const s0 = progStats(ids);
        const k = 5;
        for (let i = 0; i < k; i++) await b.run();
        const s1 = progStats(ids);
        row.statsNsPerRun = (s1.ns - s0.ns) / k;
        row.statsRunsPerRun = (s1.cnt - s0.cnt) / k;
      } finally {
        Deno.writeTextFileSync(statsFile, prev);
      }
      rows.push(row);
    }
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      await c.update(unit, new FamilySink(), {});
      times.push(performance.now() - t0);
    }
    scrapeMs.set(name, median(times));
  } finally {
    c.stop();
  }
  return rows;
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
  ),
];
const rows: Row[] = [];
/** Median time of one update() (map reads, per-CPU sums, ageing, samples) per configuration. */
const scrapeMs = new Map<string, number>();
try {
  for (const b of benches) await b.start();
  for (const [name, args, skip] of configs) rows.push(...await measureConfig(name, args, skip, benches));
} finally {
  for (const b of benches) await b.stop();
  Deno.removeSync(dir, { recursive: true });
  undoTracefs();
}

console.log(
  `\nCPU time of the workload's cgroup per run; ${pairs} off/on pairs per row (ABBA order, programs detached and` +
    `\nreattached on one loaded collector). overhead = median of the per-pair on/off ratios (p25..p75 of them),` +
    `\nratio of trimmed means (middle half) beside it; bpf_stats = the programs' own run time per run` +
    `\n(kernel.bpf_stats_enabled, separate runs; system-wide, so other processes' counted syscalls are in it)` +
    `\nas a share of the off median. Overhead figures are the workload's own CPU time only.`,
);
for (const b of benches) {
  console.log(`\n${b.name}: ${b.title}`);
  for (const r of rows.filter((x) => x.bench === b.name)) {
    const offMed = median(r.off);
    const nsPerProgRun = r.statsRunsPerRun ? r.statsNsPerRun / r.statsRunsPerRun : 0;
    let line = `  ${r.config.padEnd(17)} off ${(offMed / 1000).toFixed(1)} ms, on ${
      (median(r.on) / 1000).toFixed(1)
    } ms: overhead ${pct(median(r.ratios))} (p25..p75 ${pct(quantile(r.ratios, 0.25))}..${
      pct(quantile(r.ratios, 0.75))
    }), trimmed means ${pct(trimmedMean(r.on) / trimmedMean(r.off))}`;
    if (b.calls) line += `, ${((median(r.on) - offMed) * 1000 / b.calls).toFixed(0)} ns/call`;
    line += `\n  ${"".padEnd(17)} bpf_stats: ${Math.round(r.statsRunsPerRun)} program runs/run × ${
      nsPerProgRun.toFixed(0)
    } ns = ${(r.statsNsPerRun / 1e6).toFixed(2)} ms/run = ${
      (r.statsNsPerRun / 1000 / offMed * 100).toFixed(1)
    } % of off`;
    console.log(line);
  }
}
console.log(
  `\nscrape (update: map reads, per-CPU sums, ageing) time, 1 unit, median of 9: ${
    [...scrapeMs].map(([n, ms]) => `${n} ${ms.toFixed(2)} ms`).join(", ")
  }`,
);
console.log(`attach modes: ${[...new Set(rows.map((r) => `${r.config} = ${r.mode}`))].join("; ")}`);
