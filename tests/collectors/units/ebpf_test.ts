// Tests of the ebpf sub-collector on the real kernel: BPF objects built with clang, loaded through the
// privileged op, and a real cgroup2 unit's file IO and loopback TCP traffic reported within 5 %.

import {
  createEbpfCollector,
  EbpfCollector,
  ebpfFlags,
  readIoTracepointIds,
  registerEbpfFlags,
} from "../../../collectors/units/ebpf.ts";
import { parseCpuList } from "../../../ffi/perf.ts";
import { assertDropped, type ReportedThread } from "../../helpers/privilege.ts";
import { dirname } from "node:path";
import { existsSync } from "node:fs";
import { FamilySink } from "../../../collectors/framework/metric_sink.ts";
import { type ComputeUnit, readMountInfo } from "../../../collectors/units/subcollector.ts";
import { FlagSet } from "../../../common/flags.ts";
import { Logger } from "../../../common/log.ts";
import { bpfDetach, bpfLoadSync, bpfPercpuMapDump, bpfReattach, bpfUnload } from "../../../ffi/libbpf.ts";
import { bpfToolchain, buildBpfObjects } from "../../../collectors/units/ebpf/build.ts";
import { InlineSecurityManager } from "../../../privilege/security.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import { makeCgroup, moveInto, removeCgroup } from "../../helpers/cgroup.ts";
import { Workload } from "../../helpers/workload.ts";
import { CEEMS_ENV } from "../../helpers/process.ts";

const paths = { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" };

/** Writes then reads back N bytes of a file, creates and unlinks K files, sends N bytes over TCP and reads the reply. */
const script = `
use Socket;
$| = 1;
my ($dir, $n, $files, $port) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
print "ready\\n";
<STDIN>;
open(my $f, ">", "$dir/data") or die "open: $!";
my $chunk = "x" x 65536;
for (my $left = $n; $left > 0; $left -= 65536) {
  my $len = $left < 65536 ? $left : 65536;
  syswrite($f, $chunk, $len) == $len or die "write: $!";
}
close($f);
open($f, "<", "$dir/data") or die "open: $!";
my ($buf, $got) = ("", 0);
while (my $r = sysread($f, $buf, 65536)) { $got += $r }
close($f);
for my $i (1 .. $files) { open(my $g, ">", "$dir/f$i") or die; close($g); unlink("$dir/f$i") or die; }
connect($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die "connect: $!";
for (my $left = $n; $left > 0; $left -= 65536) {
  my $len = $left < 65536 ? $left : 65536;
  my $w = syswrite($s, $chunk, $len); die "send: $!" unless defined $w; $left += $len - $w;
}
shutdown($s, 1);
my $rcv = 0;
while (my $r = sysread($s, $buf, 65536)) { $rcv += $r }
print "done $got $rcv\\n";
<STDIN>;
`;

/** Accepts one connection, drains it, replies with `reply` bytes; resolves with the bytes received. */
function server(reply: number): { port: number; done: Promise<number> } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await l.accept();
    let n = 0;
    const buf = new Uint8Array(65536);
    for (let r = await conn.read(buf); r !== null; r = await conn.read(buf)) n += r;
    const out = new Uint8Array(reply).fill(121);
    for (let off = 0; off < out.length;) off += await conn.write(out.subarray(off));
    conn.close();
    l.close();
    return n;
  })();
  return { port: (l.addr as Deno.NetAddr).port, done };
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

function sample(sink: FamilySink, name: string, want: Record<string, string>): number {
  const fam = sink.families.get(name);
  const s = fam?.samples.find((x) => Object.entries(want).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}

function near(actual: number, expected: number, what: string): void {
  assert(Math.abs(actual - expected) <= expected * 0.05, `${what}: ${actual}, expected ${expected} ± 5 %`);
}

async function make(args: string[], lines: string[]): Promise<EbpfCollector | undefined> {
  const flags = new FlagSet("test", "");
  registerEbpfFlags(flags);
  registerEbpfFlags(flags);
  flags.parse(args);
  const logger = new Logger("info", "logfmt", {}, (l) => lines.push(l));
  return await createEbpfCollector({ flags: ebpfFlags(flags), logger, paths, security: new InlineSecurityManager() });
}

Deno.test("ebpf is off without flags", async () => {
  assertEquals(await make([], []), undefined);
});

Deno.test("ebpf: file IO and loopback TCP of a real cgroup2 unit match within 5 %", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-ebpf-" });
  const mount = mountPointOf(dir);
  const cg = makeCgroup("ebpf");
  const otherCg = makeCgroup("ebpf-other");
  const lines: string[] = [];
  const c = await make([
    "--collector.ebpf.io-metrics",
    "--collector.ebpf.network-metrics",
    `--collector.ebpf.fs-mount-point=${mount}`,
  ], lines);
  assert(c);
  const n = 4 * 1024 * 1024 + 12345;
  const reply = 1024 * 1024 + 777;
  const files = 20;
  const srv = server(reply);
  const w = new Workload(script, [dir, String(n), String(files), String(srv.port)]);
  try {
    await w.waitLine("ready");
    moveInto(cg, w.pid);
    const units: ComputeUnit[] = [
      { uuid: "2001", cgroupPath: cg, pids: [w.pid] },
      { uuid: "2002", cgroupPath: otherCg, pids: [] },
    ];
    const base = { manager: "slurm", hostname: "host1" };
    const before = new FamilySink();
    assertEquals(await c.update(units, before, base), true);
    // The per-syscall tracepoints need tracefs mounted; without it io falls back to tp_btf.
    const io = existsSync("/sys/kernel/tracing/events/syscalls") ? "tracepoint" : "tp_btf";
    assertEquals(c.attachModes, { io, net: "tp_btf" }, lines.join("\n"));
    assert(lines.some((l) => l.includes("fentry: load (fentry): EPERM")), "fentry tried first");
    await w.send("go");
    const done = await w.waitLine("done");
    assertEquals(done, `done ${n} ${reply}`);
    assertEquals(await srv.done, n);
    const after = new FamilySink();
    assertEquals(await c.update(units, after, base), true);
    const d = (name: string, labels: Record<string, string>) =>
      sample(after, name, { uuid: "2001", ...labels }) - sample(before, name, { uuid: "2001", ...labels });
    if (Deno.env.get("CEEMS_TEST_VERBOSE")) {
      for (const [name, fam] of after.families) {
        for (const s of fam.samples.filter((x) => x.labels.uuid === "2001")) {
          console.log(name, JSON.stringify(s.labels), s.value - sample(before, name, s.labels));
        }
      }
    }
    near(d("ceems_ebpf_write_bytes_total", { mountpoint: mount }), n, "write bytes");
    near(d("ceems_ebpf_read_bytes_total", { mountpoint: mount }), n, "read bytes");
    assert(d("ceems_ebpf_write_requests_total", { mountpoint: mount }) >= Math.ceil(n / 65536), "write requests");
    assertEquals(d("ceems_ebpf_write_errors_total", { mountpoint: mount }), 0);
    assert(d("ceems_ebpf_create_requests_total", {}) >= files + 1, "create requests");
    assert(d("ceems_ebpf_unlink_requests_total", {}) >= files, "unlink requests");
    assert(d("ceems_ebpf_open_requests_total", {}) >= 1, "open requests");
    const tcp4 = { proto: "tcp", family: "ipv4" };
    near(d("ceems_ebpf_egress_bytes_total", tcp4), n, "egress bytes");
    near(d("ceems_ebpf_ingress_bytes_total", tcp4), reply, "ingress bytes");
    assert(d("ceems_ebpf_egress_packets_total", tcp4) >= 1, "egress packets");
    assertEquals(d("ceems_ebpf_retrans_bytes_total", tcp4), 0);
    // Nothing is attributed to the other unit, and only the chosen mount point is reported.
    assertEquals(sample(after, "ceems_ebpf_write_bytes_total", { uuid: "2002" }), 0);
    const mounts = new Set(after.families.get("ceems_ebpf_write_bytes_total")!.samples.map((s) => s.labels.mountpoint));
    assertEquals([...mounts], [mount]);
    const fam = after.families.get("ceems_ebpf_egress_bytes_total")!;
    assertEquals(fam.type, "counter");
    assertEquals(Object.keys(fam.samples[0].labels).sort(), ["family", "hostname", "manager", "proto", "uuid"]);
  } finally {
    c.stop();
    await w.stop();
    removeCgroup(cg);
    removeCgroup(otherCg);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ebpf: a kernel where nothing attaches leaves the collector off with one log line", async () => {
  const objs = await buildBpfObjects();
  // A group naming a program the kernel cannot attach anywhere fails every mode.
  assertThrows(
    () => bpfLoadSync(objs.io, [{ mode: "fentry", programs: ["io_read_fexit"] }], ["io_rw"]),
    /no attach mode works.*fentry: load \(fentry\): EPERM/,
  );
  const lines: string[] = [];
  const dir = Deno.makeTempDirSync();
  try {
    // Objects the kernel refuses (here: not ELF at all) make every attach mode fail at the first scrape.
    // (The header and its stamp are copied from the default build, so only the objects are bad.)
    const built = dirname(objs.io);
    for (const f of ["vmlinux.h", "vmlinux.h.btf-stamp"]) Deno.copyFileSync(`${built}/${f}`, `${dir}/${f}`);
    for (const name of ["io", "net"]) {
      Deno.writeTextFileSync(`${dir}/${name}.bpf.o`, "not an ELF object");
      // Newer than the header for sure (same-millisecond mtimes would trigger a rebuild).
      const later = new Date(Date.now() + 60_000);
      Deno.utimeSync(`${dir}/${name}.bpf.o`, later, later);
    }
    const c = await make([
      "--collector.ebpf.io-metrics",
      "--collector.ebpf.network-metrics",
      `--collector.ebpf.objects-dir=${dir}`,
    ], lines);
    assert(c);
    const sink = new FamilySink();
    const units = [{ uuid: "1", cgroupPath: "/sys/fs/cgroup/unified", pids: [] }];
    await c.update(units, sink, {});
    await c.update(units, sink, {});
    assertEquals(sink.families.size, 0);
    // (Where tracefs is not mounted, the start-up line about per-syscall tracepoints comes first.)
    const notTracefs = (ls: string[]) => ls.filter((l) => !l.includes("per-syscall tracepoints unavailable"));
    lines.splice(0, lines.length, ...notTracefs(lines));
    assertEquals(lines.length, 1, lines.join("\n"));
    assert(lines[0].includes("eBPF sub-collector disabled") && lines[0].includes("no attach mode works"), lines[0]);
    // A toolchain failure at start-up (an objects directory that cannot be created) does the same.
    const lines2: string[] = [];
    const c2 = await make(["--collector.ebpf.io-metrics", `--collector.ebpf.objects-dir=${dir}/io.bpf.o/sub`], lines2);
    await c2!.update(units, sink, {});
    assertEquals(sink.families.size, 0);
    lines2.splice(0, lines2.length, ...notTracefs(lines2));
    assertEquals(lines2.length, 1, lines2.join("\n"));
    assert(lines2[0].includes("building BPF objects failed"), lines2[0]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Writes N bytes to a file in 64 KiB writes once told to go. */
const writer = `
$| = 1;
my ($path, $n) = @ARGV;
print "ready\\n";
<STDIN>;
open(my $f, ">", $path) or die "open: $!";
my $chunk = "x" x 65536;
for (my $left = $n; $left > 0; $left -= 65536) { syswrite($f, $chunk, $left < 65536 ? $left : 65536) or die }
close($f);
print "done\\n";
<STDIN>;
`;

/** Runs the writer inside `cgroupDir`; `between` runs after the move and before the writes. */
async function writeFrom(
  cgroupDir: string,
  path: string,
  n: number,
  between: (pid: number) => Promise<void>,
): Promise<void> {
  const w = new Workload(writer, [path, String(n)]);
  try {
    await w.waitLine("ready");
    moveInto(cgroupDir, w.pid);
    await between(w.pid);
    await w.send("go");
    await w.waitLine("done");
  } finally {
    await w.stop();
  }
}

Deno.test("ebpf: the raw_tp fallback programs attach and count a cgroup2 unit's writes", async () => {
  const objs = await buildBpfObjects();
  const loaded = bpfLoadSync(
    objs.io,
    [{ mode: "raw_tp", programs: ["io_exit_raw"], config: [0, 0] }],
    ["io_rw"],
    "ceems_cfg",
  );
  const cg = makeCgroup("ebpf-rawtp");
  const dir = Deno.makeTempDirSync();
  try {
    assertEquals(loaded.mode, "raw_tp");
    const n = 3 * 1024 * 1024 + 99;
    await writeFrom(cg, `${dir}/data`, n, () => Promise.resolve());
    const id = BigInt(Deno.statSync(cg).ino!);
    let written = 0n;
    for (const [k, v] of bpfPercpuMapDump(loaded.maps.io_rw, 16, 48)) {
      if (new DataView(k.buffer).getBigUint64(0, true) === id) written += new BigUint64Array(v.buffer)[3];
    }
    assertEquals(written, BigInt(n));
  } finally {
    bpfUnload(loaded);
    removeCgroup(cg);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ebpf: programs attach at start(), so a unit's writes before the first scrape are counted", async () => {
  const lines: string[] = [];
  const c = await make(["--collector.ebpf.io-metrics"], lines);
  assert(c);
  const cg = makeCgroup("ebpf-start");
  const dir = Deno.makeTempDirSync();
  try {
    assertEquals(c.attachModes, {}, "nothing attached before start()");
    await c.start(cg);
    assert(c.attachModes.io, `attached at start(): ${lines.join("\n")}`);
    const n = 2 * 1024 * 1024 + 321;
    await writeFrom(cg, `${dir}/data`, n, () => Promise.resolve());
    // The first scrape reports writes that happened before it.
    const sink = new FamilySink();
    assertEquals(await c.update([{ uuid: "3001", cgroupPath: cg, pids: [] }], sink, {}), true);
    const written = sink.families.get("ceems_ebpf_write_bytes_total")?.samples
      .filter((x) => x.labels.uuid === "3001")
      .reduce((a, x) => a + x.value, 0);
    near(written ?? 0, n, "bytes written before the first scrape");
  } finally {
    c.stop();
    removeCgroup(cg);
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Mounts tracefs at /sys/kernel/tracing unless it is there; returns the undo (unmounts only what it mounted). */
function ensureTracefs(): () => void {
  // tracefs gives the tracepoint ids; the exporter never mounts it (that needs CAP_SYS_ADMIN), the test does.
  if (existsSync("/sys/kernel/tracing/events/syscalls")) return () => {};
  const r = new Deno.Command("mount", { args: ["-t", "tracefs", "tracefs", "/sys/kernel/tracing"] }).outputSync();
  assert(r.success, new TextDecoder().decode(r.stderr));
  return () => {
    const u = new Deno.Command("umount", { args: ["/sys/kernel/tracing"] }).outputSync();
    assert(u.success, new TextDecoder().decode(u.stderr));
  };
}

/** Pins a process to one CPU. */
function pin(pid: number, cpu: number): void {
  const r = new Deno.Command("taskset", { args: ["-pc", String(cpu), String(pid)], stdout: "null" }).outputSync();
  assert(r.success, new TextDecoder().decode(r.stderr));
}

/** Bytes written by a cgroup in the io_rw map (all mounts). */
function writtenBy(fd: number, cg: string): bigint {
  const id = BigInt(Deno.statSync(cg).ino!);
  let written = 0n;
  for (const [k, v] of bpfPercpuMapDump(fd, 16, 48)) {
    if (new DataView(k.buffer).getBigUint64(0, true) === id) written += new BigUint64Array(v.buffer)[3];
  }
  return written;
}

Deno.test("ebpf: per-syscall tracepoints attached through one perf event on CPU 0 count writes on every CPU", async () => {
  const undo = ensureTracefs();
  const objs = await buildBpfObjects();
  const tp = readIoTracepointIds("/sys");
  assert("ids" in tp, JSON.stringify(tp));
  const programs = Object.keys(tp.ids);
  assertEquals(programs.length, 19);
  const loaded = bpfLoadSync(
    objs.io,
    [{ mode: "tracepoint", programs, config: [0, 0], tracepointIds: tp.ids }],
    ["io_rw"],
    "ceems_cfg",
  );
  const dir = Deno.makeTempDirSync();
  const cgs: string[] = [];
  try {
    assertEquals(loaded.mode, "tracepoint");
    const cpus = parseCpuList(Deno.readTextFileSync("/sys/devices/system/cpu/online"));
    assert(cpus.length >= 2, "this test needs two CPUs");
    for (const cpu of cpus.slice(0, 2)) {
      const cg = makeCgroup(`ebpf-tp-cpu${cpu}`);
      cgs.push(cg);
      const n = 3 * 1024 * 1024 + 99 + cpu;
      let onCpu = -1;
      await writeFrom(cg, `${dir}/data${cpu}`, n, (pid) => {
        pin(pid, cpu);
        onCpu = cpu;
        return Promise.resolve();
      });
      assertEquals(onCpu, cpu);
      assertEquals(writtenBy(loaded.maps.io_rw, cg), BigInt(n), `writes on CPU ${cpu}`);
    }
  } finally {
    bpfUnload(loaded);
    for (const cg of cgs) removeCgroup(cg);
    Deno.removeSync(dir, { recursive: true });
    undo();
  }
});

Deno.test("ebpf: detached programs stay loaded and count nothing; reattached they count again", async () => {
  const objs = await buildBpfObjects();
  const group = { mode: "tp_btf", programs: ["io_exit_btf"], config: [0, 0] };
  const loaded = bpfLoadSync(objs.io, [group], ["io_rw"], "ceems_cfg");
  const cg = makeCgroup("ebpf-toggle");
  const dir = Deno.makeTempDirSync();
  try {
    await writeFrom(cg, `${dir}/a`, 70000, () => Promise.resolve());
    assertEquals(writtenBy(loaded.maps.io_rw, cg), 70000n);
    bpfDetach(loaded);
    assertEquals(loaded.links, []);
    await writeFrom(cg, `${dir}/b`, 50000, () => Promise.resolve());
    assertEquals(writtenBy(loaded.maps.io_rw, cg), 70000n, "nothing counted while detached");
    bpfReattach(loaded, group);
    assertEquals(loaded.links.length, 1);
    await writeFrom(cg, `${dir}/c`, 30000, () => Promise.resolve());
    assertEquals(writtenBy(loaded.maps.io_rw, cg), 100000n);
  } finally {
    bpfUnload(loaded);
    removeCgroup(cg);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ebpf: without tracefs, io falls back to tp_btf with one log line saying how to fix it", async () => {
  const sysfs = Deno.makeTempDirSync(); // a sysfs without kernel/tracing
  const lines: string[] = [];
  const flags = new FlagSet("test", "");
  registerEbpfFlags(flags);
  flags.parse(["--collector.ebpf.io-metrics"]);
  const logger = new Logger("info", "logfmt", {}, (l) => lines.push(l));
  const c = await createEbpfCollector({
    flags: ebpfFlags(flags),
    logger,
    paths: { ...paths, sysfs },
    security: new InlineSecurityManager(),
  });
  const cg = makeCgroup("ebpf-notracefs");
  try {
    assert(c);
    const tpLines = lines.filter((l) => l.includes("per-syscall tracepoints unavailable"));
    assertEquals(tpLines.length, 1, lines.join("\n"));
    assertMatch(tpLines[0], /tracefs is not mounted at .*kernel\/tracing.*mount -t tracefs tracefs/);
    assertEquals(await c.update([{ uuid: "1", cgroupPath: cg, pids: [] }], new FamilySink(), {}), true);
    assertEquals(c.attachModes, { io: "tp_btf" });
  } finally {
    c?.stop();
    removeCgroup(cg);
    Deno.removeSync(sysfs, { recursive: true });
  }
});

const dropProbe = new URL("./ebpf_drop_probe.ts", import.meta.url).pathname;

/** Reads lines from a child's stdout. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buf = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  async next(prefix: string): Promise<string> {
    while (true) {
      const i = this.#buf.indexOf("\n");
      if (i >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        if (line.startsWith(prefix)) return line.slice(prefix.length);
        continue;
      }
      const r = await this.#reader.read();
      if (r.done) throw new Error(`child exited before "${prefix}"`);
      this.#buf += r.value;
    }
  }
}

Deno.test("ebpf under a real drop to nobody: the per-syscall tracepoints attach and count within 5 %", async () => {
  assertEquals(Deno.uid(), 0, "this test must run as root (CI does)");
  const undo = ensureTracefs();
  const cg = makeCgroup("ebpf-drop");
  const dir = Deno.makeTempDirSync();
  const n = 8 * 1024 * 1024 + 4321;
  const w = new Workload(writer, [`${dir}/data`, String(n)]);
  const probe = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--node-modules-dir=manual",
      dropProbe,
      cg,
      "--collector.ebpf.io-metrics",
      "--collector.ebpf.network-metrics",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: CEEMS_ENV,
  }).spawn();
  const stderr = new Response(probe.stderr).text();
  const out = new Lines(probe.stdout);
  const stdin = probe.stdin.getWriter();
  try {
    await w.waitLine("ready");
    moveInto(cg, w.pid);
    pin(w.pid, 1); // the perf event is on CPU 0: the writes happen on the other one
    const attached = JSON.parse(await out.next("attached "));
    assertEquals(attached.ok, true);
    assertEquals(attached.mode, "root-drop");
    assertEquals(attached.modes, { io: "tracepoint", net: "tp_btf" });
    const mainPrm = BigInt("0x" + attached.threads.find((t: ReportedThread) => t.tid === attached.pid).capPrm);
    const bpfPerfmon = (1n << 38n) | (1n << 39n);
    assertEquals(mainPrm & bpfPerfmon, bpfPerfmon);
    assertDropped(attached.threads, attached.pid, mainPrm);
    await w.send("go");
    await w.waitLine("done");
    await stdin.write(new TextEncoder().encode("scrape\n"));
    const counts = JSON.parse(await out.next("counts "));
    assertEquals(counts.ok, true);
    near(counts.delta.ceems_ebpf_write_bytes_total, n, "write bytes");
    assert(counts.delta.ceems_ebpf_create_requests_total >= 1, "create requests");
    assertEquals((await probe.status).code, 0);
    const log = await stderr;
    assertMatch(log, /msg="dropped privileges" user=nobody/);
    assertEquals(log.includes("per-syscall tracepoints unavailable"), false, log);
  } finally {
    await stdin.close().catch(() => {});
    try {
      probe.kill("SIGKILL");
    } catch { /* exited */ }
    await probe.status;
    await w.stop();
    removeCgroup(cg);
    Deno.removeSync(dir, { recursive: true });
    undo();
  }
});

Deno.test("ebpf: keys of cgroups that are not units are deleted at their second scrape; units' counters keep growing", async () => {
  const c = await make(["--collector.ebpf.io-metrics"], []);
  assert(c);
  const cgA = makeCgroup("ebpf-age-unit");
  const cgB = makeCgroup("ebpf-age-other");
  const dir = Deno.makeTempDirSync();
  const idOf = (cg: string) => BigInt(Deno.statSync(cg).ino!);
  const keysOf = (cg: string) =>
    bpfPercpuMapDump(c.maps.io_rw, 16, 48).filter(([k]) => new DataView(k.buffer).getBigUint64(0, true) === idOf(cg))
      .length;
  const unitA = [{ uuid: "a", cgroupPath: cgA, pids: [] }];
  const written = async (units: ComputeUnit[]) => {
    const sink = new FamilySink();
    assertEquals(await c.update(units, sink, {}), true);
    return sink.families.get("ceems_ebpf_write_bytes_total")?.samples.reduce((s, x) => s + x.value, 0) ?? 0;
  };
  try {
    assertEquals(await written(unitA), 0); // attaches
    await writeFrom(cgA, `${dir}/a`, 100000, () => Promise.resolve());
    await writeFrom(cgB, `${dir}/b`, 200000, () => Promise.resolve());
    assertEquals(await written(unitA), 100000);
    assert(keysOf(cgB) > 0, "the other cgroup's key is there at its first scrape");
    assertEquals(await written(unitA), 100000);
    assertEquals(keysOf(cgB), 0, "deleted at its second scrape");
    assert(keysOf(cgA) > 0);
    await writeFrom(cgA, `${dir}/a2`, 50000, () => Promise.resolve());
    assertEquals(await written(unitA), 150000);
    // The unit ends: its key goes at the second scrape without it.
    await written([]);
    assert(keysOf(cgA) > 0);
    await written([]);
    assertEquals(keysOf(cgA), 0);
  } finally {
    c.stop();
    removeCgroup(cgA);
    removeCgroup(cgB);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ebpf: units in a cgroup v1 hierarchy are keyed by that controller's cgroup", async () => {
  const v1 = readMountInfo("/proc").find((m) => m.fsType === "cgroup" && m.superOptions.includes("memory"));
  assert(v1, "this test needs the cgroup v1 memory hierarchy (hybrid host)");
  const cg = `${v1.mountPoint}/ceems-test-ebpf-v1-${Deno.pid}`;
  Deno.mkdirSync(cg);
  const dir = Deno.makeTempDirSync();
  const lines: string[] = [];
  const c = await make(["--collector.ebpf.io-metrics", `--collector.ebpf.fs-mount-point=${mountPointOf(dir)}`], lines);
  assert(c);
  try {
    const units = [{ uuid: "v1job", cgroupPath: cg, pids: [] }];
    const n = 2 * 1024 * 1024 + 7;
    let before = 0;
    await writeFrom(cg, `${dir}/data`, n, async () => {
      const sink = new FamilySink();
      await c.update(units, sink, {});
      before = sample(sink, "ceems_ebpf_write_bytes_total", { uuid: "v1job" });
    });
    const after = new FamilySink();
    await c.update(units, after, {});
    assertEquals(sample(after, "ceems_ebpf_write_bytes_total", { uuid: "v1job" }) - before, n);
  } finally {
    c.stop();
    try {
      for (const pid of Deno.readTextFileSync(`${cg}/cgroup.procs`).split("\n").filter((s) => s)) {
        Deno.writeTextFileSync(`${v1.mountPoint}/cgroup.procs`, pid);
      }
    } catch { /* gone */ }
    Deno.removeSync(cg);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ebpf: a unit's processes in cgroups below its own (SLURM's step/task cgroups) are counted for it", async () => {
  const v1 = readMountInfo("/proc").find((m) => m.fsType === "cgroup" && m.superOptions.includes("memory"));
  assert(v1, "this test needs the cgroup v1 memory hierarchy (hybrid host)");
  const cg = `${v1.mountPoint}/ceems-test-ebpf-tree-${Deno.pid}`;
  const task = `${cg}/step_batch/task_0`;
  Deno.mkdirSync(task, { recursive: true });
  const dir = Deno.makeTempDirSync();
  const lines: string[] = [];
  const c = await make(["--collector.ebpf.io-metrics", `--collector.ebpf.fs-mount-point=${mountPointOf(dir)}`], lines);
  assert(c);
  try {
    const units = [{ uuid: "job", cgroupPath: cg, pids: [] }];
    const n = 1024 * 1024 + 3;
    let before = 0;
    await writeFrom(task, `${dir}/data`, n, async () => {
      const sink = new FamilySink();
      await c.update(units, sink, {});
      before = sample(sink, "ceems_ebpf_write_bytes_total", { uuid: "job" });
    });
    const after = new FamilySink();
    await c.update(units, after, {});
    assertEquals(sample(after, "ceems_ebpf_write_bytes_total", { uuid: "job" }) - before, n);
    assertEquals(
      after.families.get("ceems_ebpf_write_bytes_total")!.samples.filter((x) => x.labels.uuid === "job").length,
      1,
    );
  } finally {
    c.stop();
    try {
      for (const pid of Deno.readTextFileSync(`${task}/cgroup.procs`).split("\n").filter((s) => s)) {
        Deno.writeTextFileSync(`${v1.mountPoint}/cgroup.procs`, pid);
      }
    } catch { /* gone */ }
    for (const d of [task, `${cg}/step_batch`, cg]) Deno.removeSync(d);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ebpf: without clang/bpftool, prebuilt (CO-RE) objects in the objects dir are used", async () => {
  const objs = await buildBpfObjects();
  const dir = Deno.makeTempDirSync();
  const dirs = bpfToolchain.dirs;
  const lines: string[] = [];
  let c: EbpfCollector | undefined;
  try {
    for (const name of ["io", "net"] as const) Deno.copyFileSync(objs[name], `${dir}/${name}.bpf.o`);
    bpfToolchain.dirs = ["/nonexistent"];
    try {
      c = await make(["--collector.ebpf.network-metrics", `--collector.ebpf.objects-dir=${dir}`], lines);
    } finally {
      bpfToolchain.dirs = dirs;
    }
    assert(c);
    assert(lines.some((l) => l.includes("using prebuilt BPF objects")), lines.join("\n"));
    await c.update([{ uuid: "1", cgroupPath: "/sys/fs/cgroup/unified", pids: [] }], new FamilySink(), {});
    assertEquals(c.attachModes, { net: "tp_btf" });
  } finally {
    c?.stop();
    Deno.removeSync(dir, { recursive: true });
  }
});
