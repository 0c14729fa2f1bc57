// Tests of the ipmi_dcmi collector: output parsing of the four tools, tool discovery, the security
// context it runs in, failure handling (non-zero exit, hang, nonsense) and a real OpenIPMI ipmi_sim BMC.

import { createSocket } from "node:dgram";
import { join } from "node:path";
import type { CollectorContext } from "../../collectors/framework/collector.ts";
import { exporterFlags } from "../../collectors/exporter.ts";
import { findIpmiDevice } from "../../collectors/ipmi/native.ts";
import {
  createIpmiDcmiCollector,
  type IpmiDcmiOptions,
  ipmiDcmiOptions,
  ipmiDcmiSecurity,
  parseCapmcJson,
  parseDcmiText,
  resolveDcmiCommand,
} from "../../collectors/ipmi_dcmi.ts";
import { Logger } from "../../common/log.ts";
import { gatherSecurity } from "../../privilege/declare.ts";
import { findTool } from "../../privilege/tools.ts";
import {
  type ExecOptions,
  type ExecOutcome,
  type ExecRequest,
  InlineSecurityManager,
  type OpResult,
  type PrivilegedOp,
  type SecurityContext,
} from "../../privilege/security.ts";
import { fakeIpmi, recorded } from "../fakes/ipmi.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../helpers/assert.ts";
import { makeCollector, RecordingSecurityManager, samples, scrape } from "../helpers/collector_harness.ts";
import { writeScript } from "../helpers/fake_tools.ts";
import { parseExposition, repoRoot, runCeems, startCeems } from "../helpers/process.ts";

const freeipmiOut = `Current Power                        : 405 Watts
Minimum Power over sampling duration : 120 watts
Maximum Power over sampling duration : 610 watts
Average Power over sampling duration : 377 watts
Time Stamp                           : 01/02/2026 - 10:00:00
Statistics reporting time period     : 1000 milliseconds
Power Measurement                    : Active
`;
const ipmitoolOut = `
    Instantaneous power reading:                   212 Watts
    Minimum during sampling period:                 11 Watts
    Maximum during sampling period:                390 Watts
    Average power reading over sample period:      201 Watts
    IPMI timestamp:                           Fri Jan  2 10:00:00 2026
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated
`;
const ipmiutilOut = `ipmiutil dcmi ver 3.17
DCMI Version:                   1.5
  Current Power:                   77 Watts
  Min Power over sample duration:  7 Watts
  Max Power over sample duration:  99 Watts
  Avg Power over sample duration:  70 Watts
  Power reading state is:          active
  Power Limit:       896 Watts (inactive)
ipmiutil dcmi, completed successfully
`;

Deno.test("ipmi_dcmi: parses FreeIPMI, ipmitool and ipmiutil outputs", () => {
  assertEquals(parseDcmiText(freeipmiOut), { current: 405, min: 120, max: 610, avg: 377 });
  assertEquals(parseDcmiText(ipmitoolOut), { current: 212, min: 11, max: 390, avg: 201 });
  assertEquals(parseDcmiText(ipmiutilOut), { current: 77, min: 7, max: 99, avg: 70 });
});

Deno.test("ipmi_dcmi: an inactive measurement or output without a state is an error", () => {
  assertThrows(
    () =>
      parseDcmiText(
        freeipmiOut.replace("Power Measurement                    : Active", "Power Measurement : Not Available"),
      ),
    /not active/,
  );
  assertThrows(() => parseDcmiText(ipmitoolOut.replace("activated", "deactivated")), /not active/);
  assertThrows(() => parseDcmiText("hello world\n"), /no power measurement state/);
});

Deno.test("ipmi_dcmi: capmc JSON uses avg as current and reports its error field", () => {
  assertEquals(parseCapmcJson('{"avg":300,"min":250,"max":410,"window_len":600,"e":0,"err_msg":""}'), {
    avg: 300,
    min: 250,
    max: 410,
    current: 300,
  });
  assertThrows(() => parseCapmcJson('{"e":22,"err_msg":"no power data"}'), /no power data/);
  assertThrows(() => parseCapmcJson("Error: connection refused"), /not JSON/);
});

Deno.test("ipmi_dcmi: tool discovery follows CEEMS's preference order in the tool directories; the flag wins", () => {
  const a = Deno.makeTempDirSync();
  const b = Deno.makeTempDirSync();
  try {
    writeScript(a, "capmc", "exit 0");
    writeScript(b, "ipmiutil", "exit 0");
    writeScript(b, "ipmitool", "exit 0");
    assertEquals(resolveDcmiCommand("", [a, b]), [join(b, "ipmitool"), "dcmi", "power", "reading"]);
    assertEquals(resolveDcmiCommand("", [a]), [join(a, "capmc"), "get_system_power", "-w", "600"]);
    assertEquals(resolveDcmiCommand("ipmiutil dcmi power", [b]), [join(b, "ipmiutil"), "dcmi", "power"]);
    assertEquals(resolveDcmiCommand("/opt/x/ipmitool -H bmc dcmi power reading", [b])![0], "/opt/x/ipmitool");
  } finally {
    Deno.removeSync(a, { recursive: true });
    Deno.removeSync(b, { recursive: true });
  }
});

Deno.test("ipmi_dcmi: runs the tool as uid/gid 0 in a cap_setuid+cap_setgid context; test mode as the current user", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    // The fake prints the real uid it ran as in the reading, so the privilege change is observable.
    const tool = writeScript(
      dir,
      "ipmitool",
      `uid=$(/usr/bin/id -u); echo "Instantaneous power reading: $((uid + 100)) Watts"; echo "Power reading state is: activated"`,
    );
    const sec = new RecordingSecurityManager();
    const c = await makeCollector("ipmi_dcmi", [`--collector.ipmi_dcmi.cmd=${tool} dcmi power reading`], {
      security: sec,
    });
    const { sink, success } = await scrape({ ipmi_dcmi: c });
    assertEquals(success.ipmi_dcmi, 1);
    assertEquals(samples(sink, "ceems_ipmi_dcmi_current_watts"), new Map([['{hostname="host1"}', 100]]));
    assertEquals([sec.execs[0].context.name, sec.execs[0].context.caps], ["ipmi_dcmi", ["cap_setuid", "cap_setgid"]]);
    assertEquals([sec.execs[0].opts.asRoot, sec.execs[0].req.cmd], [true, [tool, "dcmi", "power", "reading"]]);

    const sec2 = new RecordingSecurityManager();
    const t = await makeCollector(
      "ipmi_dcmi",
      [`--collector.ipmi_dcmi.cmd=${tool}`, "--collector.ipmi_dcmi.test-mode"],
      {
        security: sec2,
      },
    );
    await scrape({ ipmi_dcmi: t });
    assertEquals(sec2.execs[0].context.caps, []);
    assertEquals(sec2.execs[0].opts.asRoot, false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ipmi_dcmi: a failing, hanging or babbling tool fails only this collector, serving the last good values", async () => {
  const dir = Deno.makeTempDirSync();
  const procDir = Deno.makeTempDirSync();
  try {
    Deno.copyFileSync(join(repoRoot, "tests/fixtures/proc/stat"), join(procDir, "stat"));
    Deno.copyFileSync(join(repoRoot, "tests/fixtures/proc/cpuinfo"), join(procDir, "cpuinfo"));
    const mode = join(dir, "mode");
    Deno.writeTextFileSync(mode, "good");
    const tool = writeScript(
      dir,
      "ipmi-dcmi",
      `case "$(/bin/cat ${mode})" in
  good) /bin/cat <<'X'
${freeipmiOut}X
  ;;
  fail) echo "ipmi_cmd_dcmi_get_power_reading: BMC busy" >&2; exit 1 ;;
  hang) exec /bin/sleep 30 ;;
  nonsense) echo "%%% garbage ###" ;;
esac`,
    );
    const ipmi = await makeCollector("ipmi_dcmi", [
      `--collector.ipmi_dcmi.cmd=${tool} --get-system-power-statistics`,
      "--collector.ipmi_dcmi.test-mode",
      "--collector.ipmi_dcmi.timeout=400ms",
    ]);
    const cpu = await makeCollector("cpu", [], { paths: { procfs: procDir } });
    let r = await scrape({ ipmi_dcmi: ipmi, cpu });
    assertEquals(r.success, { ipmi_dcmi: 1, cpu: 1 });

    for (
      const [m, why] of [["fail", /exited with status 1: ipmi_cmd_dcmi_get_power_reading: BMC busy/], [
        "hang",
        /timed out after 400 ms/,
      ], ["nonsense", /no power measurement state/]] as const
    ) {
      Deno.writeTextFileSync(mode, m);
      const log: string[] = [];
      const start = performance.now();
      r = await scrape({ ipmi_dcmi: ipmi, cpu }, log);
      const ms = performance.now() - start;
      assertEquals(r.success, { ipmi_dcmi: 0, cpu: 1 }, m);
      assert(ms < 5000, `${m}: scrape took ${ms} ms`);
      const errors = log.filter((l) => l.includes("level=error"));
      assertEquals(errors.length, 1, `${m}: ${errors.join("\n")}`);
      assertMatch(errors[0], why);
      // The last good readings stay exposed.
      assertEquals(samples(r.sink, "ceems_ipmi_dcmi_max_watts"), new Map([['{hostname="host1"}', 610]]), m);
      assert(r.sink.families.get("ceems_cpu_seconds_total")!.samples.length > 0);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
    Deno.removeSync(procDir, { recursive: true });
  }
});

Deno.test("ipmi_dcmi: native mode without /dev/ipmiN fails start-up with one line naming the device paths", async () => {
  const { ctx, opts } = await nativeCtx(["--collector.ipmi_dcmi.force-native-mode", "--collector.ipmi_dcmi.dev-num=2"]);
  assertThrows(
    () => createIpmiDcmiCollector(ctx, opts, { exists: () => false }),
    /force-native-mode is set, and no IPMI device \(\/dev\/ipmi2, \/dev\/ipmi\/2, \/dev\/ipmidev\/2\) exists/,
  );
  // No tool anywhere and no device: the same single line, naming both.
  const auto = await nativeCtx([], []);
  assertThrows(
    () => createIpmiDcmiCollector(auto.ctx, auto.opts, { exists: () => false }),
    /no IPMI DCMI tool \(ipmi-dcmi, ipmitool, ipmiutil, capmc\) found .* and no IPMI device \(\/dev\/ipmi0/,
  );
  // This machine kind has no IPMI driver: through the exporter, start-up stops with exactly one line.
  if (findIpmiDevice(0) === undefined) {
    const r = await runCeems(["exporter", "--collector.ipmi_dcmi", "--collector.ipmi_dcmi.force-native-mode"]);
    assertEquals(r.code, 1);
    const lines = r.stderr.trim().split("\n").filter((l) => !l.includes("level=info"));
    assertEquals(lines.length, 1, r.stderr);
    assertMatch(
      lines[0],
      /couldn't create collector ipmi_dcmi: --collector.ipmi_dcmi.force-native-mode is set, and no IPMI/,
    );
  }
});

/** A collector context, and the options `argv` give with tools looked up in `dirs`. */
async function nativeCtx(
  argv: string[],
  dirs?: string[],
): Promise<{ ctx: CollectorContext; opts: IpmiDcmiOptions }> {
  const flags = exporterFlags();
  flags.parse(argv, {});
  const ctx = {
    logger: new Logger("error", "logfmt", {}, () => {}),
    paths: { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" },
    hostname: "host1",
    security: new InlineSecurityManager(),
  };
  return await Promise.resolve({ ctx, opts: ipmiDcmiOptions(flags, dirs) });
}

/** Answers openFd with a made-up descriptor (the fake driver library accepts any), runs the rest inline. */
class FdSecurity extends InlineSecurityManager {
  calls: { context: SecurityContext; ops: PrivilegedOp[] }[] = [];
  execs: ExecRequest[] = [];
  #inline = new InlineSecurityManager();
  override run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    this.calls.push({ context, ops });
    if (ops.some((o) => o.kind !== "openFd")) return this.#inline.run(context, ops);
    return Promise.resolve(ops.map(() => ({ ok: true, value: 21 })));
  }
  override exec(context: SecurityContext, req: ExecRequest, opts: ExecOptions): Promise<ExecOutcome> {
    this.execs.push(req);
    return super.exec(context, req, opts);
  }
}

Deno.test("ipmi_dcmi native: dev-num picks the device, opened once in cap_dac_override; power follows the BMC", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib, log } = fakeIpmi(dir, "normal", recorded.w312);
  const { ctx, opts } = await nativeCtx([
    "--collector.ipmi_dcmi.force-native-mode",
    "--collector.ipmi_dcmi.dev-num=3",
    "--collector.ipmi_dcmi.timeout=300ms",
  ]);
  const security = new FdSecurity();
  const c = createIpmiDcmiCollector({ ...ctx, security }, opts, { exists: (p) => p === "/dev/ipmidev/3", libc: lib });
  try {
    const watts = async () => {
      const { sink, success } = await scrape({ ipmi_dcmi: c });
      const get = (k: string) => samples(sink, `ceems_ipmi_dcmi_${k}_watts`).get('{hostname="host1"}');
      return { success: success.ipmi_dcmi, now: get("current"), min: get("min"), max: get("max"), avg: get("avg") };
    };
    assertEquals(await watts(), { success: 1, now: 312, min: 312, max: 312, avg: 312 });
    fakeIpmi(dir, "normal", recorded.w405);
    assertEquals(await watts(), { success: 1, now: 405, min: 312, max: 405, avg: 358 });
    // A BMC that stops answering fails this collector within the timeout, serving the last good values.
    fakeIpmi(dir, "silent");
    const lines: string[] = [];
    const t0 = performance.now();
    const { sink, success } = await scrape({ ipmi_dcmi: c }, lines);
    assert(performance.now() - t0 < 2000, "bounded by --collector.ipmi_dcmi.timeout");
    assertEquals(success.ipmi_dcmi, 0);
    assertEquals(samples(sink, "ceems_ipmi_dcmi_current_watts").get('{hostname="host1"}'), 405);
    assert(lines.some((l) => /no response from the BMC/.test(l)), lines.join("\n"));
    assertEquals(security.calls.map((c) => ({ context: { name: c.context.name, caps: c.context.caps }, ops: c.ops })), [
      {
        context: { name: "ipmi_dcmi_native", caps: ["cap_dac_override"] },
        ops: [{ kind: "openFd", path: "/dev/ipmidev/3", write: true }],
      },
    ]);
  } finally {
    c.stop();
  }
  assertMatch(Deno.readTextFileSync(log), /netfn=2c cmd=02/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("ipmi_dcmi: with no tool found, /dev/ipmiN is used natively (as CEEMS); a tool wins when present", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeIpmi(dir, "normal", recorded.w312);
  const security = new FdSecurity();
  const none = await nativeCtx([], [dir]);
  const ctx = { ...none.ctx, security };
  const c = createIpmiDcmiCollector(ctx, none.opts, { exists: (p) => p === "/dev/ipmi0", libc: lib });
  try {
    const { sink, success } = await scrape({ ipmi_dcmi: c });
    assertEquals(success.ipmi_dcmi, 1);
    assertEquals(samples(sink, "ceems_ipmi_dcmi_avg_watts").get('{hostname="host1"}'), 312);
    assertEquals(security.calls.map((x) => x.ops), [[{ kind: "openFd", path: "/dev/ipmi0", write: true }]]);
  } finally {
    c.stop();
  }
  // The declarations follow the same decision: no tool → cap_dac_override; a tool → run as root.
  const required = (o: IpmiDcmiOptions) => [...gatherSecurity([ipmiDcmiSecurity(o)]).required.keys()];
  assertEquals(required(none.opts), ["cap_dac_override"]);
  writeScript(dir, "ipmitool", `cat <<'OUT'\n${ipmitoolOut}OUT`);
  assertEquals(required((await nativeCtx([], [dir])).opts), ["cap_kill", "cap_setgid", "cap_setuid"]);
  const test = await nativeCtx(["--collector.ipmi_dcmi.test-mode"], [dir]);
  assertEquals(required(test.opts), []);
  const t = createIpmiDcmiCollector(ctx, test.opts, { exists: () => true, libc: lib });
  const { sink } = await scrape({ ipmi_dcmi: t });
  assertEquals(samples(sink, "ceems_ipmi_dcmi_current_watts").get('{hostname="host1"}'), 212);
  assertEquals(security.calls.length, 1, "no device was opened for the tool");
  assertEquals(security.execs.map((r) => r.cmd[0]), [join(dir, "ipmitool")]);
  Deno.removeSync(dir, { recursive: true });
});

/** A free UDP port on 127.0.0.1. */
async function freeUdpPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Absolute path of a system tool, failing the test when it is not installed. */
function tool(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} is not installed (scripts/ensure-test-deps.sh installs it)`);
  return p;
}

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  return { ok: o.success, out: d.decode(o.stdout) + d.decode(o.stderr) };
}

Deno.test("ipmi_dcmi: real OpenIPMI ipmi_sim BMC over LAN with ipmitool and ipmi-dcmi; power changes at run time", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-ipmisim-" });
  let sim: Deno.ChildProcess | undefined;
  try {
    const so = join(dir, "dcmi_power.so");
    const cc = await sh("gcc", [
      "-O2",
      "-Wall",
      "-fPIC",
      "-shared",
      "-o",
      so,
      join(repoRoot, "tests/fixtures/ipmi_sim/dcmi_power.c"),
    ]);
    assert(cc.ok, `building the DCMI plugin failed: ${cc.out}`);
    const powerFile = join(dir, "power_w");
    Deno.writeTextFileSync(powerFile, "312\n");
    const port = await freeUdpPort();
    Deno.writeTextFileSync(
      join(dir, "lan.conf"),
      `name "ceemsbmc"
loadlib "${so}" "${powerFile}"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  user 1 true  ""      "test"     user  10 none md2 md5 straight
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
`,
    );
    Deno.writeTextFileSync(
      join(dir, "bmc.emu"),
      `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`,
    );
    Deno.mkdirSync(join(dir, "state"));
    sim = new Deno.Command("ipmi_sim", {
      args: ["-c", join(dir, "lan.conf"), "-f", join(dir, "bmc.emu"), "-s", join(dir, "state"), "-n"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const ipmitool = writeScript(
      dir,
      "ipmitool-lan",
      `exec ${tool("ipmitool")} -I lanplus -C 3 -H 127.0.0.1 -p ${port} -U admin -P password "$@"`,
    );
    const ipmiDcmi = writeScript(
      dir,
      "ipmi-dcmi-lan",
      `exec ${tool("ipmi-dcmi")} -D LAN_2_0 -W opensesspriv -h 127.0.0.1:${port} -u admin -p password "$@"`,
    );
    let up = false;
    for (let i = 0; i < 50 && !up; i++) {
      up = (await sh(ipmitool, ["mc", "info"])).ok;
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    assert(up, "ipmi_sim did not answer");

    for (const cmd of [`${ipmitool} dcmi power reading`, `${ipmiDcmi} --get-system-power-statistics`]) {
      Deno.writeTextFileSync(powerFile, "312\n");
      // Not test mode: the tool runs as uid/gid 0 through the security context.
      const proc = await startCeems([
        "exporter",
        "--collector.disable-defaults",
        "--collector.ipmi_dcmi",
        `--collector.ipmi_dcmi.cmd=${cmd}`,
        "--web.disable-exporter-metrics",
      ]);
      try {
        const get = async () => parseExposition(await (await fetch(`${proc.base}/metrics`)).text());
        const hostname = Deno.hostname();
        const first = await get();
        assertEquals(first.get('ceems_scrape_collector_success{collector="ipmi_dcmi"}'), 1, cmd);
        assertEquals(first.get(`ceems_ipmi_dcmi_current_watts{hostname="${hostname}"}`), 312, cmd);
        Deno.writeTextFileSync(powerFile, "405\n");
        const second = await get();
        assertEquals(second.get(`ceems_ipmi_dcmi_current_watts{hostname="${hostname}"}`), 405, cmd);
        assertEquals(second.get(`ceems_ipmi_dcmi_max_watts{hostname="${hostname}"}`), 405, cmd);
        assert((second.get(`ceems_ipmi_dcmi_min_watts{hostname="${hostname}"}`) ?? 0) <= 312, cmd);
      } finally {
        await proc.stop();
      }
    }
  } finally {
    if (sim) {
      sim.kill("SIGTERM");
      await sim.status;
    }
    Deno.removeSync(dir, { recursive: true });
  }
});
