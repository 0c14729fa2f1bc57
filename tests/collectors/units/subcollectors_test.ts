// The perf and ebpf sub-collectors wired into the unit collectors: flags declared once, capabilities joined
// to the exporter's set, and the exporter started as root (dropped to nobody) counting a real SLURM v2 job.

import { join } from "node:path";
import { exporterFlags, exporterRequiredCapabilities } from "../../../collectors/exporter.ts";
import { readMountInfo } from "../../../collectors/units/subcollector.ts";
import { maskOf } from "../../../privilege/capset.ts";
import { threadCredentials } from "../../../privilege/inspect.ts";
import { assert, assertEquals, assertMatch } from "../../helpers/assert.ts";
import { cgroup2Root } from "../../helpers/cgroup.ts";
import { assertDropped, sampleEffective, startAs } from "../../helpers/privilege.ts";
import { parseExposition, runCeems } from "../../helpers/process.ts";
import { Workload } from "../../helpers/workload.ts";
import { pathExists } from "../../../common/fs.ts";

function parsed(args: string[]) {
  const fs = exporterFlags();
  fs.parse(args);
  return fs;
}

function required(args: string[]): string[] {
  return [...exporterRequiredCapabilities(parsed(args)).keys()];
}

Deno.test("perf/ebpf flags are declared once although slurm, libvirt and k8s all register them", () => {
  const fs = exporterFlags();
  fs.parse(["--collector.perf.software-events", "--collector.ebpf.io-metrics", "--collector.perf.env-var=X"]);
  assertEquals(fs.bool("collector.perf.software-events"), true);
  assertEquals(fs.strings("collector.perf.env-var"), ["X"]);
});

Deno.test("sub-collector capabilities join the exporter's set only with a unit collector enabled", () => {
  const base = ["--collector.disable-defaults", "--collector.slurm", "--collector.gpu.type=nogpu"];
  const slurm = ["cap_dac_read_search", "cap_sys_ptrace"];
  assertEquals(required(base), slurm);
  assertEquals(required([...base, "--collector.perf.software-events"]), [
    "cap_dac_read_search",
    "cap_perfmon",
    "cap_sys_ptrace",
  ]);
  assertEquals(required([...base, "--collector.ebpf.network-metrics"]), [
    "cap_bpf",
    "cap_dac_read_search",
    "cap_perfmon",
    "cap_sys_ptrace",
  ]);
  assertEquals(required([...base, "--collector.rdma.stats"]), [
    "cap_dac_read_search",
    "cap_kill",
    "cap_net_admin",
    "cap_setgid",
    "cap_setuid",
    "cap_sys_ptrace",
  ]);
  const k8s = ["--collector.disable-defaults", "--collector.k8s"];
  assertEquals(required(k8s), []);
  assertEquals(required([...k8s, "--collector.ebpf.io-metrics"]), ["cap_bpf", "cap_perfmon"]);
  assertEquals(required([...k8s, "--collector.perf.hardware-events", "--collector.perf.env-var=SLURM_JOB_ID"]), [
    "cap_dac_read_search",
    "cap_perfmon",
    "cap_sys_ptrace",
  ]);
  assertEquals(required(["--collector.disable-defaults", "--collector.libvirt", "--collector.perf.software-events"]), [
    "cap_dac_read_search",
    "cap_perfmon",
  ]);
  // Without a unit collector the sub-collector flags enable nothing.
  assertEquals(required(["--collector.disable-defaults", "--collector.cpu", "--collector.ebpf.io-metrics"]), []);
});

Deno.test("--print-capabilities names perf and ebpf with their capabilities", async () => {
  const r = await runCeems([
    "exporter",
    "--print-capabilities",
    "--collector.disable-defaults",
    "--collector.k8s",
    "--collector.perf.software-events",
    "--collector.ebpf.io-metrics",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^capabilities: cap_bpf cap_perfmon$/m);
  assertMatch(r.stdout, /^\s+cap_bpf\s+needed by --collector\.ebpf\.\*-metrics$/m);
  assertMatch(r.stdout, /^\s+cap_perfmon\s+needed by --collector\.perf\.\*-events,--collector\.ebpf\.\*-metrics$/m);
  assertMatch(r.stdout, /^CapabilityBoundingSet=CAP_BPF CAP_FOWNER CAP_PERFMON CAP_SETGID CAP_SETPCAP CAP_SETUID$/m);
});

/** Each "go": touches 32 MiB of fresh memory, sleeps 1 ms 100 times, writes and reads back N bytes of a file,
 * sends N bytes over loopback TCP and drains the reply; prints "done". */
const script = `
use Socket;
$| = 1;
my ($dir, $n, $port) = @ARGV;
my $chunk = "x" x 65536;
print "ready\\n";
while (my $cmd = <STDIN>) {
  last unless $cmd =~ /^go/;
  my $x = "a" x (32 * 1024 * 1024);
  select(undef, undef, undef, 0.001) for 1 .. 100;
  open(my $f, ">", "$dir/data") or die "open: $!";
  for (my $left = $n; $left > 0; $left -= 65536) {
    my $len = $left < 65536 ? $left : 65536;
    syswrite($f, $chunk, $len) == $len or die "write: $!";
  }
  close($f);
  open($f, "<", "$dir/data") or die "open: $!";
  my ($buf, $got) = ("", 0);
  while (my $r = sysread($f, $buf, 65536)) { $got += $r }
  close($f);
  socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
  connect($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die "connect: $!";
  for (my $left = $n; $left > 0; $left -= 65536) {
    my $len = $left < 65536 ? $left : 65536;
    my $w = syswrite($s, $chunk, $len); die "send: $!" unless defined $w; $left += $len - $w;
  }
  shutdown($s, 1);
  my $rcv = 0;
  while (my $r = sysread($s, $buf, 65536)) { $rcv += $r }
  close($s);
  print "done ", length($x), " $got $rcv\\n";
  undef $x; # perl would reuse the buffer next round: free it so each round faults fresh pages
}
`;

/** Accepts connections, drains each and replies with `reply` bytes. */
function server(reply: number): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of l) {
      const buf = new Uint8Array(65536);
      try {
        while ((await conn.read(buf)) !== null) { /* drain */ }
        const out = new Uint8Array(reply).fill(121);
        for (let off = 0; off < out.length;) off += await conn.write(out.subarray(off));
      } finally {
        conn.close();
      }
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

function mountPointOf(path: string): string {
  let best = "/";
  for (const m of readMountInfo("/proc")) {
    if ((path === m.mountPoint || path.startsWith(m.mountPoint + "/")) && m.mountPoint.length > best.length) {
      best = m.mountPoint;
    }
  }
  return best;
}

/** Sum of the samples of `name` whose labels include `want`. */
function total(m: Map<string, number>, name: string, want: Record<string, string>): number {
  let sum = 0;
  for (const [k, v] of m) {
    if (!k.startsWith(`${name}{`)) continue;
    if (Object.entries(want).every(([l, val]) => k.includes(`${l}="${val}"`))) sum += v;
  }
  return sum;
}

function near(actual: number, expected: number, what: string): void {
  assert(Math.abs(actual - expected) <= expected * 0.05, `${what}: ${actual}, expected ${expected} ± 5 %`);
}

Deno.test({
  name: "exporter as root → nobody: perf and ebpf count a real SLURM v2 job's workload across scrapes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(Deno.uid(), 0, "this test must run as root (CI does)");
    const unified = cgroup2Root();
    const job = String(700000000 + (Deno.pid % 99999));
    const dirs = [`${unified}/system.slice`, `${unified}/system.slice/slurmstepd.scope`].filter((d) => !pathExists(d));
    dirs.push(`${unified}/system.slice/slurmstepd.scope/job_${job}`);
    for (const d of dirs) Deno.mkdirSync(d);
    const jobDir = dirs[dirs.length - 1];
    const dataDir = Deno.makeTempDirSync({ prefix: "ceems-subcoll-" });
    const mount = mountPointOf(dataDir);
    const n = 4 * 1024 * 1024 + 4321;
    const reply = 1024 * 1024 + 99;
    const srv = server(reply);
    const w = new Workload(script, [dataDir, String(n), String(srv.port)]);
    const args = [
      "exporter",
      "--collector.disable-defaults",
      "--collector.slurm",
      "--collector.cgroups.force-version=v2",
      `--path.cgroupfs=${unified}`,
      "--collector.gpu.type=nogpu",
      "--collector.perf.software-events",
      "--collector.ebpf.io-metrics",
      "--collector.ebpf.network-metrics",
      `--collector.ebpf.fs-mount-point=${mount}`,
    ];
    const expected = maskOf(["cap_bpf", "cap_perfmon", "cap_sys_ptrace", "cap_dac_read_search"]);
    let p: Awaited<ReturnType<typeof startAs>> | undefined;
    let stopped: { code: number; stderr: string } | undefined;
    try {
      await w.waitLine("ready");
      Deno.writeTextFileSync(join(jobDir, "cgroup.procs"), `${w.pid}\n`);
      assertEquals(maskOf(exporterRequiredCapabilities(parsed(args.slice(1))).keys()), expected);
      p = await startAs(args);
      const started = p;
      assertDropped(threadCredentials(started.pid), started.pid, expected);
      assertMatch(started.stderr(), /dropped privileges.*uid=65534/);
      // The BPF programs attach at start-up, after the drop and before the first scrape.
      const attachedAt = started.stderr().search(/eBPF programs attached.*object=io/);
      assert(attachedAt > started.stderr().search(/dropped privileges/), started.stderr());
      const scrape = async () => parseExposition(await (await fetch(`${started.base}/metrics`)).text());
      // The first scrape opens the perf counters in a privileged Worker.
      const rounds = [await scrape()];
      for (let i = 0; i < 2; i++) {
        await w.send("go");
        assertEquals(await w.waitLine("done"), `done ${32 * 1024 * 1024} ${n} ${reply}`);
        const during = sampleEffective(started.pid, expected, scrape());
        const s = await during;
        assertEquals(s.violations, []);
        rounds.push(await scrape());
      }
      const job1 = { uuid: job, manager: "slurm" };
      const last = rounds[rounds.length - 1];
      assertEquals(total(last, "ceems_scrape_collector_success", { collector: "slurm" }), 1);
      assert(last.has(`ceems_scrape_collector_duration_seconds{collector="slurm",subcollector="perf"}`));
      assert(last.has(`ceems_scrape_collector_duration_seconds{collector="slurm",subcollector="ebpf"}`));
      assert(total(last, "ceems_compute_units", { manager: "slurm" }) >= 1);
      const pages = (32 * 1024 * 1024) / 4096;
      const tcp4 = { ...job1, proto: "tcp", family: "ipv4" };
      const io = { ...job1, mountpoint: mount };
      for (let i = 1; i < rounds.length; i++) {
        const d = (name: string, want: Record<string, string>) =>
          total(rounds[i], name, want) - total(rounds[i - 1], name, want);
        if (Deno.env.get("CEEMS_TEST_VERBOSE")) {
          console.log(`round ${i}:`, {
            faults: d("ceems_perf_page_faults_total", job1),
            switches: d("ceems_perf_context_switches_total", job1),
            write: d("ceems_ebpf_write_bytes_total", io),
            read: d("ceems_ebpf_read_bytes_total", io),
            egress: d("ceems_ebpf_egress_bytes_total", tcp4),
            ingress: d("ceems_ebpf_ingress_bytes_total", tcp4),
            expected: { pages, n, reply },
          });
        }
        const faults = d("ceems_perf_page_faults_total", job1);
        const switches = d("ceems_perf_context_switches_total", job1);
        assert(faults >= pages && faults < pages * 3, `round ${i}: page faults ${faults}, expected ~${pages}`);
        assert(switches >= 100 && switches < 2000, `round ${i}: context switches ${switches}, expected >= 100`);
        near(d("ceems_ebpf_write_bytes_total", io), n, `round ${i}: write bytes`);
        near(d("ceems_ebpf_read_bytes_total", io), n, `round ${i}: read bytes`);
        near(d("ceems_ebpf_egress_bytes_total", tcp4), n, `round ${i}: egress bytes`);
        near(d("ceems_ebpf_ingress_bytes_total", tcp4), reply, `round ${i}: ingress bytes`);
      }
      assertDropped(threadCredentials(started.pid), started.pid, expected);
    } finally {
      stopped = await p?.stop();
      await w.stop();
      srv.close();
      Deno.removeSync(dataDir, { recursive: true });
      for (const d of [...dirs].reverse()) {
        try {
          Deno.removeSync(d);
        } catch { /* checked below */ }
      }
    }
    if (Deno.env.get("CEEMS_TEST_VERBOSE")) console.log(stopped?.stderr);
    // SIGTERM detaches the BPF programs and closes the perf fds on main: a clean exit, no crash.
    assertEquals(stopped?.code, 0, stopped?.stderr);
    assertMatch(stopped!.stderr, /msg=stopped/);
    for (const d of dirs) assert(!pathExists(d), `cleaned up ${d}`);
  },
});
