// Commands run as root after a real drop: absolute paths, a fixed environment, only stdio open, at most
// their context's capabilities (no_new_privs, trimmed bounding set), output capped, killed with every
// descendant at the deadline, and no capability left on any thread afterwards.

import { join } from "node:path";
import { capsOf, maskOf } from "../../privilege/capset.ts";
import { threadCredentials } from "../../privilege/inspect.ts";
import { descendantsOf } from "../../privilege/janitor.ts";
import type { Capability } from "../../privilege/ops.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../helpers/assert.ts";
import { childEnv } from "../../privilege/exec.ts";
import { type ReportedThread, runProbe, sampleEffective, startAs } from "../helpers/privilege.ts";

/** The root-exec contexts the product declares, as collectors and the API server use them. */
const CONTEXTS: Record<string, Capability[]> = {
  ipmi_dcmi: ["cap_setuid", "cap_setgid"],
  rdma_exec_cmd: ["cap_setuid", "cap_setgid", "cap_net_admin"],
  slurm: ["cap_setuid", "cap_setgid"],
};
const REQUIRED: Capability[] = [...new Set([...Object.values(CONTEXTS).flat(), "cap_kill" as Capability])];

/** Pids of live processes whose command line contains `needle`. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ").includes(needle)) {
        out.push(Number(e.name));
      }
    } catch {
      // gone
    }
  }
  return out;
}

type Outcome = { status: string; code: number; stdout: string; stderr: string };

Deno.test("a root command: fixed environment, only stdio open, CapEff of its context, no_new_privs, trimmed bounding set", async () => {
  const spec = Object.entries(CONTEXTS).map(([n, c]) => `${n}:${c.join(",")}`).join(";");
  const { report, code, stderr } = await runProbe([
    "exporter",
    REQUIRED.join(","),
    `execRoot=${spec}`,
    "execRelative=1",
  ], {
    env: { PROBE_INHERITED_SECRET: "must-not-reach-the-child" },
  });
  assertEquals(code, 0, stderr);
  const mask = maskOf(REQUIRED);
  const table: string[] = [];
  for (const [name, caps] of Object.entries(CONTEXTS)) {
    const r = (report.ctxExec as Record<string, { outcome: Outcome; last: { permittedAfterSpawn: string } }>)[name];
    assertEquals([r.outcome.status, r.outcome.code], ["exited", 0], r.outcome.stderr);
    const out = r.outcome.stdout;
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(out)?.[1].trim();
    assertEquals(field("Uid"), "0\t0\t0\t0");
    const eff = BigInt("0x" + field("CapEff"));
    // At most what the context declares; exactly that, since a root child gets its whole permitted set.
    assertEquals(capsOf(eff).sort(), [...caps].sort(), name);
    assertEquals(BigInt("0x" + field("CapBnd")), mask, `${name}: bounding set trimmed to the required set`);
    assertEquals(field("NoNewPrivs"), "1");
    const fds = out.split("FDS\n")[1].split("ENV\n")[0].trim().split(/\s+/);
    assertEquals(fds, ["0", "1", "2"], `${name}: only stdin, stdout and stderr`);
    const env = out.split("ENV\n")[1].trim().split("\n").map((l) => l.split("=")[0]).sort();
    assertEquals(env.filter((k) => k !== "PWD"), ["CEEMS_EXEC_ID", "LANG", "PATH"], `${name}: ${env}`);
    assertMatch(out, /^PATH=\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/m);
    assertMatch(out, /^LANG=C$/m);
    // The exec Worker's thread forked with the context's capabilities and kept none afterwards.
    assertEquals(r.last.permittedAfterSpawn, "0");
    table.push(`${name.padEnd(14)} ${caps.join(",").padEnd(40)} CapEff=${eff.toString(16).padStart(16, "0")}`);
  }
  console.log(`root child CapEff per context:\n${table.join("\n")}`);
  // No lookup at exec time: a bare name is refused.
  const rel = report.ctxRelative as { ok: boolean; error: string };
  assertEquals(rel.ok, false);
  assertMatch(rel.error, /^probe_rel: sh: not an absolute path/);
  // The process itself: no_new_privs on every thread, bounding set trimmed on main.
  for (const t of report.threadsAtEnd as (ReportedThread & { noNewPrivs: boolean; capBnd: string })[]) {
    assertEquals(t.noNewPrivs, true, `thread ${t.tid} (${t.name})`);
    assertEquals(t.capEff, "0", `thread ${t.tid} (${t.name})`);
  }
  const main = (report.threadsAtEnd as (ReportedThread & { capBnd: string })[]).find((t) => t.tid === report.pid)!;
  assertEquals(BigInt("0x" + main.capBnd), mask);
});

Deno.test("at its deadline a root command and the setsid orphan holding its stdout are killed; the call returns then", async () => {
  const sleep = `61.${Math.floor(Math.random() * 1e6)}`;
  const { report, code, stderr } = await runProbe([
    "exporter",
    REQUIRED.join(","),
    `hang=cap_setuid,cap_setgid`,
    `hangSleep=${sleep}`,
    "flood=y",
    `freeHang=${sleep}1`,
  ]);
  assertEquals(code, 0, stderr);
  const hang = report.ctxHang as { outcome: Outcome; ms: number; last: { swept: boolean } };
  assertEquals(hang.outcome.status, "timeout");
  assert(hang.ms < 1_500, `returned after ${hang.ms} ms for a 500 ms deadline`);
  assertEquals(hang.last.swept, true);
  for (const t of report.threadsAfterHang as ReportedThread[]) {
    assertEquals(t.capEff, "0", `thread ${t.tid} (${t.name})`);
  }
  // Output beyond the cap fails the command, which is killed.
  const flood = report.ctxFlood as { status: string; bytes: number; ms: number };
  assertEquals(flood.status, "overflow");
  assert(flood.bytes <= 16 << 20, `${flood.bytes} bytes kept`);
  // A capability-free command is bounded the same way.
  assertEquals((report.ctxFreeHang as { status: string }).status, "timeout");
  // Nothing they started is left: neither the commands nor their setsid orphans.
  assertEquals(processesWith(`/bin/sleep ${sleep}`), []);
  assertEquals(processesWith("/usr/bin/yes y"), []);
});

Deno.test("exporter: a root tool whose setsid orphan holds stdout, five scrapes: no raised thread, nothing left", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-orphan-" });
  Deno.chmodSync(dir, 0o755);
  const sleep = `600.${Math.floor(Math.random() * 1e6)}`;
  const tool = join(dir, "ipmi-dcmi");
  Deno.writeTextFileSync(
    tool,
    `#!/bin/sh\necho "Current Power : 332 Watts"\necho "Power Measurement : Active"\n(setsid /bin/sleep ${sleep} &)\n`,
  );
  Deno.chmodSync(tool, 0o755);
  const p = await startAs([
    "exporter",
    "--collector.disable-defaults",
    "--collector.ipmi_dcmi",
    `--collector.ipmi_dcmi.cmd=${tool}`,
    "--collector.ipmi_dcmi.timeout=1s",
  ]);
  try {
    const allowed = maskOf(["cap_setuid", "cap_setgid", "cap_kill"]);
    const scrapes = (async () => {
      const out: string[] = [];
      for (let i = 0; i < 5; i++) out.push(await (await fetch(`${p.base}/metrics`)).text());
      return out;
    })();
    const s = await sampleEffective(p.pid, allowed, scrapes);
    assertEquals(s.violations, []);
    for (const text of await scrapes) {
      // Each scrape waits for the deadline (the orphan holds stdout), then fails this collector only.
      assertMatch(text, /ceems_scrape_collector_success\{collector="ipmi_dcmi"\} 0/);
    }
    const threads = threadCredentials(p.pid);
    for (const t of threads) assertEquals(t.capEff, 0n, `thread ${t.tid} (${t.name})`);
    const left = processesWith(`/bin/sleep ${sleep}`);
    const descendants = descendantsOf(p.pid);
    console.log(
      `after 5 scrapes: ${threads.length} threads, all CapEff 0; ${descendants.length} processes below the ` +
        `exporter, ${left.length} orphans left; ${s.raisedSeen} raised threads seen, all gone`,
    );
    assertEquals(left, []);
    assertEquals(descendants, []);
  } finally {
    await p.stop();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("exec: a child's environment never carries loader variables, whoever asks", () => {
  assertThrows(
    () => childEnv({ cmd: ["/bin/true"], env: { LD_PRELOAD: "/tmp/x.so" }, timeoutMs: 1000 }, "m"),
    /refusing environment variables LD_PRELOAD/,
  );
  const env = childEnv({ cmd: ["/bin/true"], env: { SLURM_CONF: "/etc/slurm.conf" }, timeoutMs: 1000 }, "m");
  assert(env.SLURM_CONF === "/etc/slurm.conf" && env.PATH.startsWith("/"));
});
