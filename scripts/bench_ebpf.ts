// Benchmark: CPU overhead of the ebpf sub-collector (IO + network programs attached) on a fixed,
// syscall-heavy file IO and loopback TCP workload, as a ratio to the same workload without it.

import { createEbpfCollector } from "../collectors/ebpf.ts";
import { FamilySink } from "../collectors/metric_sink.ts";
import { FlagSet } from "../common/flags.ts";
import { Logger } from "../common/log.ts";
import { registerEbpfFlags } from "../collectors/ebpf.ts";
import { InlineSecurityManager } from "../privilege/security.ts";
import { makeCgroup, moveInto, removeCgroup } from "../tests/helpers/cgroup.ts";
import { Workload } from "../tests/helpers/workload.ts";

const mib = Number(Deno.env.get("BENCH_EBPF_MIB") ?? 64);
const pairs = Number(Deno.env.get("BENCH_EBPF_PAIRS") ?? 7);

/** Writes and reads back MiB of a file and sends MiB over loopback TCP to a forked reader, 4 KiB at a time. */
const script = `
use Socket;
$| = 1;
my ($dir, $mib) = @ARGV;
my $n = $mib * 1024 * 1024;
print "ready\\n";
<STDIN>;
my $chunk = "x" x 4096;
open(my $f, ">", "$dir/data") or die; syswrite($f, $chunk, 4096) for 1 .. $n / 4096; close($f);
open($f, "<", "$dir/data") or die; my $buf; 1 while sysread($f, $buf, 4096); close($f);
unlink("$dir/data");
socket(my $l, PF_INET, SOCK_STREAM, 0) or die; bind($l, sockaddr_in(0, inet_aton("127.0.0.1"))) or die;
listen($l, 1) or die; my ($port) = sockaddr_in(getsockname($l));
my $pid = fork();
if ($pid == 0) {
  socket(my $s, PF_INET, SOCK_STREAM, 0) or die; connect($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die;
  syswrite($s, $chunk, 4096) for 1 .. $n / 4096; close($s); exit 0;
}
accept(my $c, $l) or die; 1 while sysread($c, $buf, 4096); waitpid($pid, 0);
print "done\\n";
<STDIN>;
`;

function usageUsec(cg: string): number {
  const m = /usage_usec (\d+)/.exec(Deno.readTextFileSync(`${cg}/cpu.stat`));
  if (!m) throw new Error(`no usage_usec in ${cg}/cpu.stat`);
  return Number(m[1]);
}

async function runOnce(dir: string): Promise<number> {
  const cg = makeCgroup("bench-ebpf");
  const w = new Workload(script, [dir, String(mib)]);
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

const ourPrograms = ["io_exit_btf", "io_exit_raw", "io_read_fexit", "io_write_fexit", "net_send_btf", "net_recv_btf"]
  .concat(["net_retrans_btf", "net_send_raw", "net_recv_raw", "net_retrans_raw"]);

/** Run time (ns) and run count of our attached programs, from the kernel's BPF stats (bpftool). */
function bpfProgStats(): { ns: number; count: number } {
  const out = new Deno.Command("bpftool", { args: ["prog", "show", "-j"], stdout: "piped" }).outputSync();
  const progs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    name?: string;
    run_time_ns?: number;
    run_cnt?: number;
  }[];
  let ns = 0;
  let count = 0;
  for (const p of progs) {
    if (p.name && ourPrograms.includes(p.name)) {
      ns += p.run_time_ns ?? 0;
      count += p.run_cnt ?? 0;
    }
  }
  return { ns, count };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const flags = new FlagSet("bench", "");
registerEbpfFlags(flags);
flags.parse(["--collector.ebpf.io-metrics", "--collector.ebpf.network-metrics"]);
const paths = { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" };
const dir = Deno.makeTempDirSync({ prefix: "ceems-bench-ebpf-" });
const off: number[] = [];
const on: number[] = [];
const scrapeMs: number[] = [];
const progNs: number[] = [];
const progRuns: number[] = [];
const statsPath = "/proc/sys/kernel/bpf_stats_enabled";
const statsBefore = Deno.readTextFileSync(statsPath).trim();
Deno.writeTextFileSync(statsPath, "1");
try {
  await runOnce(dir); // warm-up (page cache, perl)
  for (let i = 0; i < pairs; i++) {
    off.push(await runOnce(dir));
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
      if (Object.keys(c.attachModes).length !== 2) throw new Error("eBPF programs did not attach");
      const s0 = bpfProgStats();
      on.push(await runOnce(dir));
      const s1 = bpfProgStats();
      progNs.push(s1.ns - s0.ns);
      progRuns.push(s1.count - s0.count);
      const t0 = performance.now();
      await c.update(unit, new FamilySink(), {});
      scrapeMs.push(performance.now() - t0);
    } finally {
      c.stop();
      removeCgroup(unit[0].cgroupPath);
    }
  }
} finally {
  Deno.writeTextFileSync(statsPath, statsBefore);
  Deno.removeSync(dir, { recursive: true });
}
const mOff = median(off);
const mOn = median(on);
console.log(`workload: ${mib} MiB file write+read and ${mib} MiB loopback TCP, 4 KiB syscalls, ${pairs} pairs`);
console.log(
  `workload CPU without eBPF (median): ${(mOff / 1000).toFixed(1)} ms  runs: ${
    off.map((x) => (x / 1000).toFixed(0)).join(" ")
  }`,
);
console.log(
  `workload CPU with eBPF    (median): ${(mOn / 1000).toFixed(1)} ms  runs: ${
    on.map((x) => (x / 1000).toFixed(0)).join(" ")
  }`,
);
console.log(`CPU overhead ratio (with/without - 1): ${((mOn / mOff - 1) * 100).toFixed(2)} % (goal < 2 %)`);
const mNs = median(progNs);
console.log(
  `BPF program time per run (kernel bpf_stats, all processes, median): ${(mNs / 1e6).toFixed(1)} ms over ` +
    `${median(progRuns)} runs (${(mNs / median(progRuns)).toFixed(0)} ns each) = ` +
    `${((mNs / 1000 / mOff) * 100).toFixed(2)} % of the workload's CPU`,
);
console.log(`scrape (map read) time, 1 unit: median ${median(scrapeMs).toFixed(2)} ms`);
