// Benchmark: CPU overhead of the ebpf sub-collector (IO + network programs attached) on a fixed,
// file IO and loopback TCP workload (4 KiB and 64 KiB syscalls), as a ratio to the same workload without it.

import { createEbpfCollector, registerEbpfFlags } from "../collectors/ebpf.ts";
import { FamilySink } from "../collectors/metric_sink.ts";
import { FlagSet } from "../common/flags.ts";
import { Logger } from "../common/log.ts";
import { InlineSecurityManager } from "../privilege/security.ts";
import { makeCgroup, moveInto, removeCgroup } from "../tests/helpers/cgroup.ts";
import { Workload } from "../tests/helpers/workload.ts";

const pairs = Number(Deno.env.get("BENCH_EBPF_PAIRS") ?? 7);

/** Writes and reads back MiB of a file and sends MiB over loopback TCP to a forked reader, in chunks. */
const script = `
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

function usageUsec(cg: string): number {
  const m = /usage_usec (\d+)/.exec(Deno.readTextFileSync(`${cg}/cpu.stat`));
  if (!m) throw new Error(`no usage_usec in ${cg}/cpu.stat`);
  return Number(m[1]);
}

async function runOnce(dir: string, chunk: number, mib: number): Promise<number> {
  const cg = makeCgroup("bench-ebpf");
  const w = new Workload(script, [dir, String(mib), String(chunk)]);
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const paths = { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" };
const dir = Deno.makeTempDirSync({ prefix: "ceems-bench-ebpf-" });

/** Runs `fn` with the collector loaded and attached (a fresh load each time, as at exporter start). */
async function withCollector<T>(args: string[], fn: (scrape: () => Promise<number>) => Promise<T>): Promise<T> {
  const flags = new FlagSet("bench", "");
  registerEbpfFlags(flags);
  flags.parse(args);
  const c = await createEbpfCollector({
    flags,
    logger: new Logger("warn"),
    paths,
    security: new InlineSecurityManager(),
  });
  if (!c) throw new Error("ebpf collector not created");
  const unit = [{ uuid: "bench", cgroupPath: makeCgroup("bench-ebpf-unit"), pids: [] }];
  try {
    await c.update(unit, new FamilySink(), {}); // loads and attaches
    if (Object.keys(c.attachModes).length !== args.length) throw new Error("eBPF programs did not attach");
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

const configs: [string, string[]][] = [
  ["network only", ["--collector.ebpf.network-metrics"]],
  ["io + network", ["--collector.ebpf.io-metrics", "--collector.ebpf.network-metrics"]],
];
const fmt = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(0)).join(" ");
try {
  // 256 MiB in 64 KiB syscalls (4096 writes, reads and sends), then 64 MiB in 4 KiB syscalls (16384 each).
  for (const [chunk, mib] of [[65536, 256], [4096, 64]]) {
    await runOnce(dir, chunk, mib); // warm-up (page cache, perl)
    const off: number[] = [];
    const on: number[][] = configs.map(() => []);
    const scrapeMs: number[] = [];
    for (let i = 0; i < pairs; i++) {
      off.push(await runOnce(dir, chunk, mib));
      for (const [j, [, args]] of configs.entries()) {
        await withCollector(args, async (scrape) => {
          on[j].push(await runOnce(dir, chunk, mib));
          scrapeMs.push(await scrape());
        });
      }
    }
    console.log(
      `\nworkload: ${mib} MiB file write+read and ${mib} MiB loopback TCP, ${chunk / 1024} KiB per syscall, ` +
        `${pairs} rounds; CPU time of the workload's cgroup (cpu.stat usage_usec)`,
    );
    console.log(`  without eBPF:        median ${(median(off) / 1000).toFixed(1)} ms (runs ${fmt(off)})`);
    for (const [j, [name]] of configs.entries()) {
      const ratio = median(on[j].map((x, i) => x / off[i]));
      console.log(
        `  with ${name.padEnd(14)} median ${(median(on[j]) / 1000).toFixed(1)} ms (runs ${fmt(on[j])}); ` +
          `overhead (median of per-round ratios - 1): ${((ratio - 1) * 100).toFixed(2)} % (goal < 2 %)`,
      );
    }
    console.log(`  scrape (map read) time, 1 unit: median ${median(scrapeMs).toFixed(2)} ms`);
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}
