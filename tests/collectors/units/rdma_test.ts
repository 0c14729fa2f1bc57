// Tests of the rdma sub-collector: `rdma resource show` and `statistic qp mode|show` parsing, per-PID QP counters
// on as root and back off at stop, non-Mellanox links, failing tools, slurm wiring, a root → nobody exporter run.

import {
  parseQpModes,
  parseQpStatistics,
  parseRdmaResources,
  qpHwCounters,
  RdmaSubCollector,
} from "../../../collectors/units/rdma.ts";
import type { Labels } from "../../../collectors/framework/collector.ts";
import { FamilySink } from "../../../collectors/framework/metric_sink.ts";
import type { ComputeUnit } from "../../../collectors/units/subcollector.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import {
  captureLogger,
  makeCollector,
  RecordingSecurityManager,
  samples,
  scrape,
} from "../../helpers/collector_harness.ts";
import { writeScript } from "../../helpers/fake_tools.ts";
import { startAs } from "../../helpers/privilege.ts";
import { parseExposition } from "../../helpers/process.ts";
import { makeV2Job, put } from "../unit_helpers.ts";

Deno.test("parseRdmaResources aggregates per PID", () => {
  const qp = "link mlx5_0/- lqpn 0 type SMI state RTS sq-psn 0 comm [ib_core]\n" +
    "link mlx5_0/1 lqpn 813 rqpn 814 type RC state RTS pdn 8 pid 10 comm ib_write_bw\n" +
    "link mlx5_0/1 lqpn 816 rqpn 815 type RC state RTS pdn 8 pid 10 comm ib_write_bw\n";
  const cq = "dev mlx5_0 cqn 1 cqe 2047 users 5 poll-ctx WORKQUEUE comm [ib_core]\n" +
    "dev mlx5_0 cqn 8 cqe 4095 users 32 ctxn 4 pid 10 comm ib_write_bw\n";
  const mr = "dev mlx5_0 mrn 4 mrlen 2097152 pdn 9 pid 11 comm ib_write_bw\n";
  const r = parseRdmaResources(qp, cq, mr);
  assertEquals([...r.keys()].sort(), [10, 11]);
  assertEquals(r.get(10)!.qps, new Map([["mlx5_0\u00001", 2]]));
  assertEquals(r.get(10)!.cqe, new Map([["mlx5_0\u0000", 4095]]));
  assertEquals(r.get(11)!.mrLen, new Map([["mlx5_0\u0000", 2097152]]));
});

/** `rdma statistic qp show` as CEEMS's e2e fixture recorded it (two counters, each with its LQPN line). */
const recordedQpShow =
  "link mlx5_0/1 cntn 4 qp-type RC pid 46231 comm ib_write_bw rx_write_requests 0 rx_read_requests 0 " +
  "rx_atomic_requests 0 out_of_buffer 0 out_of_sequence 0 duplicate_request 0 rnr_nak_retry_err 0\n" +
  "    LQPN: <813,816,818,820>\n" +
  "link mlx5_0/1 cntn 5 qp-type RC pid 46235 comm ib_write_bw rx_write_requests 41988882 rx_read_requests 0 " +
  "rx_atomic_requests 0 out_of_buffer 0 out_of_sequence 0 duplicate_request 0 rnr_nak_retry_err 0\n" +
  "    LQPN: <814,815,817,819>\n";

Deno.test("parseQpModes: Mellanox links with an auto mode; other devices and other output give nothing", () => {
  const text = "link mlx5_0/1 mode qp auto off \n" +
    "link mlx5_1/1 mode qp auto type,pid \n" +
    "link mlx4_0/2 mode qp auto pid \n" +
    "link hfi1_0/1 mode qp auto off \n" +
    "link irdma0/1 mode qp auto type,pid \n";
  assertEquals(parseQpModes(text), new Map([["mlx5_0/1", false], ["mlx5_1/1", true], ["mlx4_0/2", true]]));
  // CEEMS's e2e fake printed the `qp show` text for `qp mode` too: no line carries a mode, so no link
  // qualifies and per-PID counters stay off (which is why CEEMS's expected output has no rx_* series).
  assertEquals(parseQpModes(recordedQpShow), new Map());
  assertEquals(parseQpModes(""), new Map());
});

Deno.test("parseQpStatistics: counters summed per PID and link, LQPN lines skipped, garbage rejected", () => {
  const r = parseQpStatistics(
    recordedQpShow +
      "link mlx5_0/1 cntn 6 qp-type UD pid 46235 comm ib_send_bw rx_write_requests 8 req_cqe_error 3\n" +
      "link mlx5_1/1 cntn 7 qp-type RC pid 46235 comm ib_send_bw resp_cqe_error 2\n" +
      "link hfi1_0/1 cntn 1 qp-type RC pid 46235 comm x rx_write_requests 1000\n" +
      "link mlx5_0/1 cntn 8 qp-type RC comm [kernel] rx_write_requests 5\n",
  );
  assertEquals([...r.keys()].sort(), [46231, 46235]);
  assertEquals(r.get(46231)!.get("mlx5_0\u00001")!.get("rx_write_requests"), 0);
  const p = r.get(46235)!;
  assertEquals([...p.keys()].sort(), ["mlx5_0\u00001", "mlx5_1\u00001"], "non-Mellanox line skipped");
  assertEquals(p.get("mlx5_0\u00001")!.get("rx_write_requests"), 41988882 + 8);
  assertEquals(p.get("mlx5_0\u00001")!.get("req_cqe_error"), 3);
  assertEquals(p.get("mlx5_1\u00001")!.get("resp_cqe_error"), 2);
  assertEquals(parseQpStatistics(""), new Map());
  assertThrows(() => parseQpStatistics("error: Operation not supported\n"), /unexpected line 1/);
  assertThrows(
    () => parseQpStatistics("link mlx5_0/1 cntn 4 qp-type RC pid 1 comm x rx_read_requests lots\n"),
    /rx_read_requests "lots" is not a number/,
  );
});

/**
 * A fake `rdma` in a temp directory: `statistic qp mode` lists the links of `link.<dev>@<port>` files (their
 * content is the mode) unless a `mode_text` file replaces its output, `statistic qp set` rewrites them, the
 * rest print files; `fail.<subcommand>` makes a subcommand fail. Every call is appended to `calls` as
 * "<uid> <args>".
 */
class FakeRdma {
  readonly dir = Deno.makeTempDirSync({ prefix: "ceems-rdma-test-" });
  readonly cmd: string;

  constructor(links: Record<string, string>) {
    for (const [link, mode] of Object.entries(links)) this.setMode(link, mode);
    this.put("res_qp", resQp);
    this.put("res_cq", resCq);
    this.put("res_mr", resMr);
    this.put("qp_show", qpShow);
    // Usable by the run-as user too (the exporter test drops to nobody): scrape-time calls append to `calls`.
    Deno.chmodSync(this.dir, 0o755);
    this.put("calls", "");
    Deno.chmodSync(`${this.dir}/calls`, 0o666);
    put(`${this.dir}/sys/class/infiniband/mlx5_0/ports/1/state`, "4: ACTIVE\n");
    put(`${this.dir}/sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_packets`, "77\n");
    this.cmd = writeScript(
      this.dir,
      "rdma",
      `d='${this.dir}'
echo "$(/usr/bin/id -u) $*" >> "$d/calls"
fail() { if [ -f "$d/fail.$1" ]; then cat "$d/fail.$1" >&2; exit 1; fi; }
case "$*" in
"statistic qp mode") fail mode
  if [ -f "$d/mode_text" ]; then cat "$d/mode_text"; exit 0; fi
  for f in "$d"/link.*; do [ -f "$f" ] || continue
    l=$(echo "\${f#"$d/link."}" | tr @ /); echo "link $l mode qp auto $(cat "$f") "; done ;;
"statistic qp set link "*) fail set
  f="$d/link.$(echo "$5" | tr / @)"; [ -f "$f" ] || { echo "no link $5" >&2; exit 1; }
  if [ "$7" = off ]; then echo off > "$f"; else echo "$7" > "$f"; fi ;;
"statistic qp show") fail show; cat "$d/qp_show" ;;
"resource show qp") fail res_qp; cat "$d/res_qp" ;;
"resource show cq") fail res_cq; cat "$d/res_cq" ;;
"resource show mr") fail res_mr; cat "$d/res_mr" ;;
*) echo "unknown: $*" >&2; exit 1 ;;
esac`,
    );
  }

  put(name: string, text: string) {
    Deno.writeTextFileSync(`${this.dir}/${name}`, text);
  }
  remove(name: string) {
    Deno.removeSync(`${this.dir}/${name}`);
  }
  setMode(link: string, mode: string) {
    this.put(`link.${link.replace("/", "@")}`, `${mode}\n`);
  }
  mode(link: string): string {
    return Deno.readTextFileSync(`${this.dir}/link.${link.replace("/", "@")}`).trim();
  }
  /** Calls so far, as "<uid> <args>", then forgotten. */
  takeCalls(): string[] {
    const text = Deno.readTextFileSync(`${this.dir}/calls`);
    this.put("calls", "");
    return text.split("\n").filter((l) => l);
  }
  cleanup() {
    Deno.removeSync(this.dir, { recursive: true });
  }
}

const resQp = "link mlx5_0/- lqpn 0 type SMI state RTS sq-psn 0 comm [ib_core]\n" +
  "link mlx5_0/1 lqpn 813 rqpn 814 type RC state RTS pdn 8 pid 100 comm ib_write_bw\n" +
  "link mlx5_0/1 lqpn 814 rqpn 813 type RC state RTS pdn 8 pid 200 comm ib_read_bw\n";
const resCq = "dev mlx5_0 cqn 8 cqe 4095 users 32 ctxn 4 pid 100 comm ib_write_bw\n";
const resMr = "dev mlx5_0 mrn 4 mrlen 2097152 pdn 9 pid 200 comm ib_read_bw\n";
const qpShow = "link mlx5_0/1 cntn 4 qp-type RC pid 100 comm ib_write_bw rx_write_requests 10 rx_read_requests 0 " +
  "rx_atomic_requests 0 out_of_buffer 0 req_cqe_error 1 resp_cqe_error 0\n" +
  "    LQPN: <813>\n" +
  "link mlx5_0/1 cntn 5 qp-type RC pid 101 comm ib_write_bw rx_write_requests 5 rx_read_requests 7 " +
  "rx_atomic_requests 0 req_cqe_error 0\n" +
  "    LQPN: <815,817>\n" +
  "link mlx5_1/1 cntn 6 qp-type UD pid 100 comm ib_send_bw rx_write_requests 0 resp_cqe_error 2\n" +
  "    LQPN: <90>\n" +
  "link mlx5_0/1 cntn 7 qp-type RC pid 200 comm ib_read_bw rx_write_requests 0 rx_read_requests 41988882\n" +
  "    LQPN: <814>\n" +
  "link mlx5_0/1 cntn 8 qp-type RC pid 300 comm outsider rx_write_requests 99\n" +
  "    LQPN: <820>\n";

/** The uid that commands run as the exporter's user record in the fake's call log (the test runner's). */
const me = Deno.uid();

/** Unit 1001 runs pids 100 and 101, unit 1002 pid 200; pid 300 belongs to no unit. */
const units: ComputeUnit[] = [
  { uuid: "1001", cgroupPath: "", pids: [100, 101] },
  { uuid: "1002", cgroupPath: "", pids: [200] },
];
const labels: Labels = { manager: "slurm", hostname: "host1" };

/** The expected QP hardware counter series of `units` with the fake's qp show output. */
const expectedHw = new Map<string, Map<string, number>>([
  ["ceems_rdma_rx_write_requests", new Map([[series("mlx5_0", "1", "1001"), 15]])],
  [
    "ceems_rdma_rx_read_requests",
    new Map([[series("mlx5_0", "1", "1001"), 7], [series("mlx5_0", "1", "1002"), 41988882]]),
  ],
  ["ceems_rdma_req_cqe_error", new Map([[series("mlx5_0", "1", "1001"), 1]])],
  ["ceems_rdma_resp_cqe_error", new Map([[series("mlx5_1", "1", "1001"), 2]])],
]);

function series(device: string, port: string, uuid: string): string {
  return `{device="${device}",hostname="host1",manager="slurm",port="${port}",uuid="${uuid}"}`;
}

/** Every ceems_rdma_<qp hw counter> family of a sink, as family → series → value. */
function hwFamilies(sink: FamilySink): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const [name] of qpHwCounters) {
    const m = samples(sink, `ceems_rdma_${name}`);
    if (m.size > 0) out.set(`ceems_rdma_${name}`, m);
  }
  return out;
}

async function scrapeOnce(c: RdmaSubCollector): Promise<{ ok: boolean; sink: FamilySink }> {
  const sink = new FamilySink();
  const ok = await c.update(units, sink, labels);
  return { ok, sink };
}

Deno.test("rdma: per-PID QP counters off → turned on as root at start-up, summed per unit, turned off at stop", async () => {
  const fake = new FakeRdma({ "mlx5_0/1": "off", "mlx5_1/1": "off", "hfi1_0/1": "off" });
  try {
    const sec = new RecordingSecurityManager();
    const logs: string[] = [];
    const c = new RdmaSubCollector(`${fake.dir}/sys`, sec, captureLogger(logs), fake.cmd);
    await c.init();
    assertEquals(fake.takeCalls(), [
      `${me} statistic qp mode`,
      "0 statistic qp set link mlx5_0/1 auto type,pid on",
      "0 statistic qp set link mlx5_1/1 auto type,pid on",
    ]);
    assertEquals([fake.mode("mlx5_0/1"), fake.mode("mlx5_1/1"), fake.mode("hfi1_0/1")], [
      "type,pid",
      "type,pid",
      "off",
    ]);
    // The mode is read as the exporter's user; the switch runs as uid/gid 0 in a cap_setuid+cap_setgid context.
    const root = { name: "rdma_exec_cmd", caps: ["cap_setuid", "cap_setgid", "cap_net_admin"] };
    assertEquals(sec.execs.map((x) => [{ name: x.context.name, caps: x.context.caps }, x.opts.asRoot]), [
      [{ name: "rdma", caps: [] }, false],
      [root, true],
      [root, true],
    ]);
    assertEquals(c.qpModes, new Map([["mlx5_0/1", true], ["mlx5_1/1", true]]));
    assertEquals(logs.filter((l) => l.includes("level=warn") || l.includes("level=error")), []);

    const { ok, sink } = await scrapeOnce(c);
    assert(ok);
    // Commands run as the exporter's user run concurrently: their order is not fixed.
    assertEquals(fake.takeCalls().sort(), [
      `${me} resource show cq`,
      `${me} resource show mr`,
      `${me} resource show qp`,
      `${me} statistic qp show`,
    ]);
    assertEquals(hwFamilies(sink), expectedHw);
    const fam = sink.families.get("ceems_rdma_rx_read_requests")!;
    assertEquals([fam.type, fam.help], ["counter", "Number of received read requests for the associated QPs"]);
    assertEquals(samples(sink, "ceems_rdma_qps_active").get(series("mlx5_0", "1", "1002")), 1);

    await c.stop();
    assertEquals(fake.takeCalls(), [
      "0 statistic qp set link mlx5_0/1 auto off",
      "0 statistic qp set link mlx5_1/1 auto off",
    ]);
    assertEquals([fake.mode("mlx5_0/1"), fake.mode("mlx5_1/1")], ["off", "off"]);
    for (const x of sec.execs.slice(-2)) assertEquals([x.context.name, x.opts.asRoot], ["rdma_exec_cmd", true]);
    await c.stop();
    assertEquals(fake.takeCalls(), [], "a second stop has nothing left to turn off");
  } finally {
    fake.cleanup();
  }
});

Deno.test("rdma: per-PID QP counters already on are neither switched at start-up nor turned off at stop", async () => {
  const fake = new FakeRdma({ "mlx5_0/1": "type,pid", "mlx5_1/1": "pid" });
  try {
    const sec = new RecordingSecurityManager();
    const c = new RdmaSubCollector(`${fake.dir}/sys`, sec, captureLogger([]), fake.cmd);
    await c.init();
    const { ok, sink } = await scrapeOnce(c);
    assert(ok);
    assertEquals(hwFamilies(sink), expectedHw);
    await c.stop();
    const calls = fake.takeCalls();
    assertEquals(calls.filter((l) => l.includes(" set ")), []);
    assert(calls.includes(`${me} statistic qp show`));
    assertEquals([fake.mode("mlx5_0/1"), fake.mode("mlx5_1/1")], ["type,pid", "pid"]);
    assert(sec.execs.every((x) => !x.opts.asRoot && x.context.caps.length === 0), "nothing ran as root");
  } finally {
    fake.cleanup();
  }
});

Deno.test("rdma: without a Mellanox link no per-PID counters are switched or read; other metrics stay", async () => {
  for (
    const [what, setup] of [
      ["only non-Mellanox links", (f: FakeRdma) => f.setMode("hfi1_0/1", "off")],
      // As with CEEMS's e2e fake, whose `qp mode` printed the `qp show` text: no line names a mode.
      ["mode output without modes", (f: FakeRdma) => {
        f.setMode("mlx5_0/1", "off");
        f.put("mode_text", qpShow);
      }],
    ] as const
  ) {
    const fake = new FakeRdma({});
    try {
      setup(fake);
      const logs: string[] = [];
      const c = new RdmaSubCollector(`${fake.dir}/sys`, new RecordingSecurityManager(), captureLogger(logs), fake.cmd);
      await c.init();
      assertEquals(c.qpModes, new Map(), what);
      assertEquals(logs.length, 1, what);
      assertMatch(logs[0], /level=info msg="per-PID QP counters disabled: no Mellanox link reports a QP counter mode"/);
      const { ok, sink } = await scrapeOnce(c);
      assert(ok, what);
      await c.stop();
      const calls = fake.takeCalls();
      assertEquals(calls.filter((l) => l.includes(" set ") || l.endsWith("qp show")), [], what);
      assertEquals(hwFamilies(sink), new Map(), what);
      assertEquals(samples(sink, "ceems_rdma_qps_active").size, 2, what);
    } finally {
      fake.cleanup();
    }
  }
});

Deno.test("rdma: a failing or garbled tool fails that scrape with one log line; the other metrics stay", async () => {
  const fake = new FakeRdma({ "mlx5_0/1": "type,pid" });
  try {
    const logs: string[] = [];
    const c = new RdmaSubCollector(`${fake.dir}/sys`, new RecordingSecurityManager(), captureLogger(logs), fake.cmd);
    await c.init();
    assertEquals(logs, []);
    const others = (sink: FamilySink) => [
      samples(sink, "ceems_rdma_port_packets_received_total").get(
        `{device="mlx5_0",hostname="host1",manager="slurm",port="1"}`,
      ),
      samples(sink, "ceems_rdma_state_id").size,
      samples(sink, "ceems_rdma_qps_active").size,
      samples(sink, "ceems_rdma_mrs_active").size,
    ];

    fake.put("fail.show", "error: netlink receive failed\n");
    let r = await scrapeOnce(c);
    assertEquals(r.ok, false);
    assertEquals(logs.length, 1);
    assertMatch(logs[0], /level=error msg="sub-collector scrape failed" .*statistic qp show exited with status 1/);
    assertEquals(others(r.sink), [77, 1, 2, 1]);
    assertEquals(hwFamilies(r.sink), new Map());

    fake.remove("fail.show");
    fake.put("qp_show", "Segmentation fault\n" + qpShow);
    r = await scrapeOnce(c);
    assertEquals(r.ok, false);
    assertEquals(logs.length, 2);
    assertMatch(logs[1], /level=error .*statistic qp show: unexpected line 1/);
    assertEquals(others(r.sink), [77, 1, 2, 1]);

    // Two failing commands in one scrape still make one line.
    fake.put("qp_show", qpShow);
    fake.put("fail.res_cq", "boom\n");
    fake.put("fail.show", "boom\n");
    r = await scrapeOnce(c);
    assertEquals(r.ok, false);
    assertEquals(logs.length, 3);
    assertMatch(logs[2], /resource show cq exited with status 1.*statistic qp show exited with status 1/);
    assertEquals(samples(r.sink, "ceems_rdma_cqs_active").size, 0);
    assertEquals(samples(r.sink, "ceems_rdma_qps_active").size, 2);

    fake.remove("fail.res_cq");
    fake.remove("fail.show");
    r = await scrapeOnce(c);
    assert(r.ok);
    assertEquals(logs.length, 3, "a good scrape logs nothing");
    assertEquals(hwFamilies(r.sink), expectedHw);
  } finally {
    fake.cleanup();
  }
});

Deno.test("rdma: a refused switch is logged once and retried each scrape; an unreadable mode disables", async () => {
  const fake = new FakeRdma({ "mlx5_0/1": "off" });
  try {
    fake.put("fail.set", "error: link in use\n");
    const logs: string[] = [];
    const c = new RdmaSubCollector(`${fake.dir}/sys`, new RecordingSecurityManager(), captureLogger(logs), fake.cmd);
    await c.init();
    assertEquals(logs.length, 1);
    assertMatch(logs[0], /level=warn msg="cannot enable per-PID QP counters; retrying each scrape" link=mlx5_0\/1/);
    for (let i = 0; i < 2; i++) {
      const r = await scrapeOnce(c);
      assert(r.ok, "a link that stays off is not a scrape failure");
      assertEquals(hwFamilies(r.sink), new Map());
    }
    assertEquals(logs.length, 1, "retries stay quiet");
    const calls = fake.takeCalls();
    assertEquals(calls.filter((l) => l.includes("auto type,pid on")).length, 3);
    assertEquals(calls.filter((l) => l.endsWith("qp show")), [], "no counters to read while every link is off");

    fake.remove("fail.set");
    const r = await scrapeOnce(c);
    assert(r.ok);
    assertEquals(hwFamilies(r.sink), expectedHw);
    assertEquals(fake.mode("mlx5_0/1"), "type,pid");
    await c.stop();
    assertEquals(fake.mode("mlx5_0/1"), "off");
  } finally {
    fake.cleanup();
  }

  const broken = new FakeRdma({ "mlx5_0/1": "off" });
  try {
    broken.put("fail.mode", "error: Operation not supported\n");
    const logs: string[] = [];
    const c = new RdmaSubCollector(
      `${broken.dir}/sys`,
      new RecordingSecurityManager(),
      captureLogger(logs),
      broken.cmd,
    );
    await c.init();
    assertEquals(logs.length, 1);
    assertMatch(logs[0], /level=warn msg="per-PID QP counters disabled: cannot read the QP counter mode"/);
    const r = await scrapeOnce(c);
    assert(r.ok);
    await c.stop();
    assertEquals(broken.takeCalls().filter((l) => l.includes(" set ") || l.endsWith("qp show")), []);
    assertEquals(broken.mode("mlx5_0/1"), "off");
  } finally {
    broken.cleanup();
  }
});

/** A node tree under `root` with /proc/meminfo and SLURM jobs 1001 (PIDs 100, 101) and 1002 (PID 200). */
function twoJobNode(root: string): void {
  put(`${root}/proc/meminfo`, "MemTotal:       1000 kB\nMemFree: 10 kB\nSwapTotal:       2000 kB\n");
  makeV2Job(`${root}/cg`, "1001", { pids: "100\n101\n" });
  makeV2Job(`${root}/cg`, "1002", { pids: "200\n" });
}

Deno.test("rdma in the slurm collector: job counters, failures do not fail slurm, stop turns counters off", async () => {
  const fake = new FakeRdma({ "mlx5_0/1": "off" });
  const root = fake.dir;
  try {
    twoJobNode(root);
    const logs: string[] = [];
    const slurm = await makeCollector("slurm", [
      "--collector.slurm",
      "--collector.cgroups.force-version=v2",
      "--collector.gpu.type=nogpu",
      "--collector.rdma.stats",
      `--collector.rdma.cmd=${fake.cmd}`,
    ], {
      paths: { cgroupfs: `${root}/cg`, procfs: `${root}/proc`, sysfs: `${root}/sys` },
      logger: captureLogger(logs),
    });
    assertEquals(fake.mode("mlx5_0/1"), "type,pid", "turned on while the collector is built");

    let r = await scrape({ slurm }, logs);
    assertEquals(r.success.slurm, 1);
    const hw = hwFamilies(r.sink);
    assertEquals(hw.get("ceems_rdma_rx_read_requests"), expectedHw.get("ceems_rdma_rx_read_requests"));
    assertEquals(hw.get("ceems_rdma_rx_write_requests"), expectedHw.get("ceems_rdma_rx_write_requests"));
    assert(samples(r.sink, "ceems_scrape_collector_duration_seconds").has('{collector="slurm",subcollector="rdma"}'));

    fake.put("fail.show", "boom\n");
    r = await scrape({ slurm }, logs);
    assertEquals(r.success.slurm, 1, "a failing rdma sub-collector does not fail slurm");
    assertEquals(samples(r.sink, "ceems_compute_units").size, 1);
    assertEquals(logs.filter((l) => l.includes("sub_collector=rdma") && l.includes("level=error")).length, 1);

    await slurm.stop?.();
    assertEquals(fake.mode("mlx5_0/1"), "off");
  } finally {
    fake.cleanup();
  }
});

Deno.test({
  name: "exporter as root → nobody: per-PID QP counters on at start-up, read as nobody, off as root at SIGTERM",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(Deno.uid(), 0, "this test must run as root (CI does)");
    const fake = new FakeRdma({ "mlx5_0/1": "off" });
    const root = fake.dir;
    try {
      twoJobNode(root);
      const p = await startAs([
        "exporter",
        "--collector.disable-defaults",
        "--collector.empty-hostname-label",
        "--collector.slurm",
        "--collector.cgroups.force-version=v2",
        "--collector.gpu.type=nogpu",
        `--path.cgroupfs=${root}/cg`,
        `--path.procfs=${root}/proc`,
        `--path.sysfs=${root}/sys`,
        "--collector.rdma.stats",
        `--collector.rdma.cmd=${fake.cmd}`,
      ]);
      let stopped: { code: number; stderr: string } | undefined;
      try {
        assertEquals(fake.mode("mlx5_0/1"), "type,pid");
        const r = await fetch(`${p.base}/metrics`);
        const m = parseExposition(await r.text());
        const at = (name: string, uuid: string) =>
          m.get(`${name}{device="mlx5_0",hostname="",manager="slurm",port="1",uuid="${uuid}"}`);
        assertEquals(m.get(`ceems_scrape_collector_success{collector="slurm"}`), 1);
        assertEquals(at("ceems_rdma_rx_write_requests", "1001"), 15);
        assertEquals(at("ceems_rdma_rx_read_requests", "1002"), 41988882);
      } finally {
        stopped = await p.stop();
      }
      assertEquals(stopped.code, 0, stopped.stderr);
      assertEquals(fake.mode("mlx5_0/1"), "off");
      const calls = fake.takeCalls();
      assertEquals(calls.filter((l) => l.includes(" set ")), [
        "0 statistic qp set link mlx5_0/1 auto type,pid on",
        "0 statistic qp set link mlx5_0/1 auto off",
      ]);
      assert(calls.includes("65534 statistic qp show"), `scrape-time commands run as nobody: ${calls.join("; ")}`);
    } finally {
      fake.cleanup();
    }
  },
});
