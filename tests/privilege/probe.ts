// Test program: calls setupSecurity like a subcommand (component and required set from argv), then
// runs the requested privileged checks and prints one JSON report of results and thread credentials.

import { FlagSet } from "../../common/flags.ts";
import { Logger } from "../../common/log.ts";
import type { Component } from "../../privilege/capabilities.ts";
import { preadRaw } from "../../ffi/libc.ts";
import { threadCredentials } from "../../privilege/inspect.ts";
import type { Capability } from "../../privilege/ops.ts";
import { WorkerSecurityManager } from "../../privilege/security.ts";
import { addSecurityFlags, setupSecurity } from "../../privilege/setup.ts";

// argv: <component> <caps comma list or -> [key=value ...] [-- security flags]
const [component, capList, ...rest] = Deno.args;
const sep = rest.indexOf("--");
const kv = Object.fromEntries((sep < 0 ? rest : rest.slice(0, sep)).map((a) => a.split(/=(.*)/s).slice(0, 2)));
const fs = new FlagSet(component, "probe");
addSecurityFlags(fs);
fs.parse(sep < 0 ? [] : rest.slice(sep + 1));
const required = new Map<Capability, string>(
  (capList === "-" ? [] : capList.split(",")).map((c) => [c as Capability, `--probe.${c}`]),
);
const logger = new Logger("info", "logfmt", {}, (l) => console.error(l));
const setup = await setupSecurity({
  component: component as Component,
  flags: fs,
  logger,
  required,
  readPaths: kv.read ? kv.read.split(",") : [],
  readWritePaths: [],
  loadPaths: kv.loadPath ? [kv.loadPath] : [],
});

const fmt = (t: ReturnType<typeof threadCredentials>) =>
  t.map((x) => ({
    ...x,
    capInh: x.capInh.toString(16),
    capPrm: x.capPrm.toString(16),
    capEff: x.capEff.toString(16),
    capBnd: x.capBnd.toString(16),
    capAmb: x.capAmb.toString(16),
  }));
const report: Record<string, unknown> = { mode: setup.mode, permitted: setup.permitted, pid: Deno.pid };
report.threadsAfterSetup = fmt(threadCredentials());
const mgr = setup.manager as WorkerSecurityManager;
const mainTry = (f: () => unknown) => {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    return { ok: false, error: (e as Error).message, code: (e as { code?: string }).code };
  }
};
if (kv.secret) {
  report.mainSecret = mainTry(() => Deno.readTextFileSync(kv.secret));
  const d = await mgr.runDetailed({ name: "probe_read", caps: ["cap_dac_read_search"] }, [
    { kind: "readFile", path: kv.secret },
  ]);
  report.ctxSecret = d;
  report.tidGoneAfter = !threadCredentials().some((t) => t.tid === d.tid);
}
if (kv.environ) {
  report.mainEnviron = mainTry(() => Deno.readTextFileSync(`/proc/${kv.environ}/environ`));
  report.ctxEnviron = await mgr.runDetailed(
    { name: "probe_environ", caps: ["cap_sys_ptrace", "cap_dac_read_search"] },
    [
      { kind: "readEnviron", procfs: "/proc", pids: [Number(kv.environ)] },
    ],
  );
}
if (kv.execRoot) {
  // A root child reports its credentials, capability sets, open descriptors and environment.
  const show = "cat /proc/$$/status; echo FDS; ls /proc/$$/fd; echo ENV; env";
  const contexts = (kv.execRoot as string).split(";").map((c) => {
    const [name, caps] = c.split(":");
    return { name, caps: caps.split(",") as Capability[] };
  });
  const out: Record<string, unknown> = {};
  for (const ctx of contexts) {
    const o = await mgr.exec(ctx, { cmd: ["/bin/sh", "-c", show], timeoutMs: 5000 }, { asRoot: true });
    out[ctx.name] = { outcome: o, last: mgr.lastRootExec };
  }
  report.ctxExec = out;
}
if (kv.openFd) {
  const [r] = await mgr.run({ name: "probe_open", caps: ["cap_dac_read_search"] }, [{
    kind: "openFd",
    path: kv.openFd,
  }]);
  report.ctxOpenFd = r;
  if (r.ok) report.mainReadFd = new TextDecoder().decode(preadRaw(r.value as number, 4096));
}
if (kv.missing) {
  report.ctxMissing = await mgr.run({ name: "probe_missing", caps: [kv.missing as Capability] }, [
    { kind: "readFile", path: "/etc/hostname" },
  ]);
}
if (kv.loop) {
  const tids: number[] = [];
  for (let i = 0; i < Number(kv.loop); i++) {
    const d = await mgr.runDetailed({ name: "probe_loop", caps: ["cap_dac_read_search"] }, [
      { kind: "readFile", path: kv.loopFile ?? "/etc/hostname" },
    ]);
    if (!d.results[0].ok) throw new Error(`loop call ${i} failed: ${JSON.stringify(d.results[0])}`);
    tids.push(d.tid);
  }
  report.loopTids = tids;
}
if (kv.batch) {
  // Two contexts started in the same turn, as the collectors of one scrape do: one shared Worker.
  const before = mgr.workersStarted;
  const [read, exec] = await Promise.all([
    mgr.runDetailed({ name: "probe_batch_read", caps: ["cap_dac_read_search"] }, [
      { kind: "readFile", path: kv.batch },
    ]),
    mgr.runDetailed({ name: "probe_batch_exec", caps: ["cap_setuid", "cap_setgid"] }, [
      { kind: "readFile", path: "/etc/hostname" },
    ]),
  ]);
  report.batch = { read, exec, workers: mgr.workersStarted - before };
  report.batchTidGone = !threadCredentials().some((t) => t.tid === read.tid);
}
if (kv.wait) await new Promise((r) => setTimeout(r, Number(kv.wait)));
report.threadsAtEnd = fmt(threadCredentials());
if (kv.execRelative) {
  report.ctxRelative = await mgr.exec({ name: "probe_rel", caps: ["cap_setuid", "cap_setgid"] }, {
    cmd: ["sh", "-c", "true"],
    timeoutMs: 1000,
  }, { asRoot: true }).then((o) => ({ ok: true, o }), (e) => ({ ok: false, error: (e as Error).message }));
}
if (kv.flood) {
  // A root command printing without end: failed past the output cap, and killed.
  const t0 = performance.now();
  const outcome = await mgr.exec({ name: "probe_flood", caps: ["cap_setuid", "cap_setgid"] }, {
    cmd: ["/usr/bin/yes", kv.flood],
    timeoutMs: 20_000,
  }, { asRoot: true });
  report.ctxFlood = { status: outcome.status, bytes: outcome.stdout.length, ms: performance.now() - t0 };
}
if (kv.freeHang) {
  // A capability-free command leaving a setsid orphan that holds its stdout, past its deadline.
  const t0 = performance.now();
  const outcome = await mgr.exec({ name: "probe_free", caps: [] }, {
    cmd: ["/bin/sh", "-c", `(setsid /bin/sleep ${kv.freeHang} &); exec /bin/sleep ${kv.freeHang}`],
    timeoutMs: 500,
  }, { asRoot: false });
  report.ctxFreeHang = { status: outcome.status, ms: performance.now() - t0 };
}
// A root command that hangs, and leaves an orphan holding its stdout: the call returns at its deadline.
if (kv.hang) {
  const t0 = performance.now();
  const outcome = await mgr.exec({ name: "probe_hang", caps: (kv.hang as string).split(",") as Capability[] }, {
    cmd: ["/bin/sh", "-c", `(setsid /bin/sleep ${kv.hangSleep ?? "30"} &); exec /bin/sleep ${kv.hangSleep ?? "30"}`],
    timeoutMs: 500,
  }, { asRoot: true });
  report.ctxHang = { outcome, ms: performance.now() - t0, last: mgr.lastRootExec };
  report.threadsAfterHang = fmt(threadCredentials());
}
console.log(JSON.stringify(report, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
await setup.close();
