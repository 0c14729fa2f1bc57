// Benchmark: CPU overhead of the ebpf sub-collector's programs: per-syscall cost (1-byte writes, which
// are counted, and getppid, which is not) and a file IO + loopback TCP workload, as ratios to no eBPF.

import { createEbpfCollector, registerEbpfFlags } from "../collectors/ebpf.ts";
import { FamilySink } from "../collectors/metric_sink.ts";
import { FlagSet } from "../common/flags.ts";
import { Logger } from "../common/log.ts";
import { InlineSecurityManager } from "../privilege/security.ts";
import { makeCgroup, moveInto, removeCgroup } from "../tests/helpers/cgroup.ts";
import { Workload } from "../tests/helpers/workload.ts";

const rounds = Number(Deno.env.get("BENCH_EBPF_ROUNDS") ?? 7);
const paths = { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" };

/** Writes and reads back MiB of a file and sends MiB over loopback TCP to a forked reader, in chunks. */
const ioNetScript = `
use Socket;
$| = 1;
my ($dir, $mib, $cs) = @ARGV;
my $n = $mib * 1024 * 1024;
print "ready\\n";
<STDIN>;
my $chunk = "x" x $cs;
open(my $f, ">", "$dir/data") or die; syswrite($f, $chunk, $cs) for 1 .. $n / $cs; close($f);
open($f, "<", "$dir/data") or die; my $buf; 1 while sysread($f, $buf, $cs); close($f);
unlink("$dir/data");
socket(my $l, PF_INET, SOCK_STREAM, 0) or die; bind($l, sockaddr_in(0, inet_aton("127.0.0.1"))) or die;
listen($l, 1) or die; my ($port) = sockaddr_in(getsockname($l));
my $pid = fork();
if ($pid == 0) {
  socket(my $s, PF_INET, SOCK_STREAM, 0) or die; connect($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die;
  syswrite($s, $chunk, $cs) for 1 .. $n / $cs; close($s); exit 0;
}
accept(my $c, $l) or die; 1 while sysread($c, $buf, $cs); waitpid($pid, 0);
print "done\\n";
<STDIN>;
`;

/** N one-byte writes to /dev/null (counted by the IO program) or N getppid calls (not counted). */
const syscallScript = `
$| = 1;
my ($what, $n) = @ARGV;
open(my $f, ">", "/dev/null") or die;
print "ready\\n";
<STDIN>;
if ($what eq "write") { syswrite($f, "x", 1) for 1 .. $n } else { getppid() for 1 .. $n }
print "done\\n";
<STDIN>;
`;

function usageUsec(cg: string): number {
  const m = /usage_usec (\d+)/.exec(Deno.readTextFileSync(`${cg}/cpu.stat`));
  if (!m) throw new Error(`no usage_usec in ${cg}/cpu.stat`);
  return Number(m[1]);
}

/** CPU time (µs) the script's cgroup used between "go" and "done". */
async function cpuOf(script: string, args: string[]): Promise<number> {
  const cg = makeCgroup("bench-ebpf");
  const w = new Workload(script, args);
  try {
    await w.waitLine("ready");
    moveInto(cg, w.pid);
    const start = usageUsec(cg);
    await w.send("go");
    await w.waitLine("done", 120000);
    return usageUsec(cg) - start;
  } finally {
    await w.stop();
    removeCgroup(cg);
  }
}

/** Runs `fn` with the collector loaded and attached (a fresh load each time, as at exporter start). */
async function withCollector<T>(
  args: string[],
  skipModes: string[],
  fn: (scrape: () => Promise<number>) => Promise<T>,
): Promise<T> {
  const flags = new FlagSet("bench", "");
  registerEbpfFlags(flags);
  flags.parse(args);
  const c = await createEbpfCollector({
    flags,
    logger: new Logger("warn"),
    paths,
    security: new InlineSecurityManager(),
    skipModes,
  });
  if (!c) throw new Error("ebpf collector not created");
  const unit = [{ uuid: "bench", cgroupPath: makeCgroup("bench-ebpf-unit"), pids: [] }];
  try {
    await c.update(unit, new FamilySink(), {}); // loads and attaches
    if (Object.keys(c.attachModes).length !== args.length) throw new Error("eBPF programs did not attach");
    seenModes.add(JSON.stringify(c.attachModes));
    return await fn(async () => {
      const t0 = performance.now();
      await c.update(unit, new FamilySink(), {});
      return performance.now() - t0;
    });
  } finally {
    c.stop();
    removeCgroup(unit[0].cgroupPath);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const min = (xs: number[]) => Math.min(...xs);
const both = ["--collector.ebpf.io-metrics", "--collector.ebpf.network-metrics"];
/** Configs: name, flags, attach modes skipped ("io+net (no tp)" forces the raw_syscalls fallback). */
const configs: [string, string[], string[]][] = [
  ["off", [], []],
  ["network", ["--collector.ebpf.network-metrics"], []],
  ["io+network", both, []],
  ["io+net (no tp)", both, ["tracepoint"]],
];
const seenModes = new Set<string>();

/**
 * Runs `measure` under every config, `rounds` times, rotating the order each round so drift and neighbours
 * hit all configs alike. Returns CPU µs per config.
 */
async function sweep(measure: () => Promise<number>): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(configs.map(([n]) => [n, []]));
  const scrapes: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < configs.length; k++) {
      const [name, args, skip] = configs[(k + r) % configs.length];
      if (args.length === 0) out.get(name)!.push(await measure());
      else {
        await withCollector(args, skip, async (scrape) => {
          out.get(name)!.push(await measure());
          scrapes.push(await scrape());
        });
      }
    }
  }
  out.set("scrape_ms", scrapes);
  return out;
}

function report(title: string, res: Map<string, number[]>, perCall?: number): void {
  console.log(`\n${title} (${rounds} rounds; CPU time of the workload's cgroup)`);
  const off = res.get("off")!;
  for (const [name] of configs) {
    const xs = res.get(name)!;
    let line = `  ${name.padEnd(15)} min ${(min(xs) / 1000).toFixed(1)} ms, median ${
      (median(xs) / 1000).toFixed(1)
    } ms`;
    if (name !== "off") {
      line += `; overhead by min ${((min(xs) / min(off) - 1) * 100).toFixed(1)} %, by median ` +
        `${((median(xs) / median(off) - 1) * 100).toFixed(1)} %`;
      if (perCall) line += ` (${(((min(xs) - min(off)) * 1000) / perCall).toFixed(0)} ns per call by min)`;
    }
    console.log(line);
  }
  console.log(`  scrape (map read) time, 1 unit: median ${median(res.get("scrape_ms")!).toFixed(2)} ms`);
}

const dir = Deno.makeTempDirSync({ prefix: "ceems-bench-ebpf-" });
try {
  const n = 300000;
  for (const what of ["write", "getppid"]) {
    await cpuOf(syscallScript, [what, String(n)]); // warm-up
    report(
      `${n} ${what === "write" ? "1-byte writes to /dev/null" : "getppid calls"}`,
      await sweep(() => cpuOf(syscallScript, [what, String(n)])),
      n,
    );
  }
  // 256 MiB in 64 KiB syscalls (4096 writes, reads and sends), then 64 MiB in 4 KiB syscalls (16384 each).
  for (const [chunk, mib] of [[65536, 256], [4096, 64]]) {
    const args = [dir, String(mib), String(chunk)];
    await cpuOf(ioNetScript, args); // warm-up (page cache, perl)
    report(
      `${mib} MiB file write+read and ${mib} MiB loopback TCP in ${chunk / 1024} KiB syscalls`,
      await sweep(() => cpuOf(ioNetScript, args)),
    );
  }
  console.log(`\nattach modes seen: ${[...seenModes].join(" ")}`);
} finally {
  Deno.removeSync(dir, { recursive: true });
}
