// Test program: builds the ebpf sub-collector as the exporter does (as root), drops privileges for real
// (setupSecurity), attaches at start-up as the exporter does, then reports attach modes, credentials, counters.

import { registerEbpfFlags } from "../../../collectors/units/ebpf.ts";
import { createEbpfCollector, ebpfFlags } from "../../../collectors/units/ebpf.ts";
import { defaultBpfOutDir } from "../../../collectors/units/ebpf/build.ts";
import { FamilySink } from "../../../collectors/framework/metric_sink.ts";
import { FlagSet } from "../../../common/flags.ts";
import { Logger } from "../../../common/log.ts";
import { threadCredentials } from "../../../privilege/inspect.ts";
import type { Capability } from "../../../privilege/ops.ts";
import { DeferredSecurityManager } from "../../../privilege/security.ts";
import { addSecurityFlags, setupSecurity } from "../../../privilege/setup.ts";

// argv: <unit cgroup path> [ebpf flags...]. Prints "attached {json}", waits for a stdin line, prints "counts {json}".
const [cgroupPath, ...ebpfArgs] = Deno.args;
const fs = new FlagSet("exporter", "ebpf drop probe");
addSecurityFlags(fs);
registerEbpfFlags(fs);
fs.parse(ebpfArgs);
const logger = new Logger("info", "logfmt", {}, (l) => console.error(l));
const deferred = new DeferredSecurityManager();
const paths = { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" };
const c = await createEbpfCollector({ flags: ebpfFlags(fs), logger, paths, security: deferred });
if (!c) throw new Error("ebpf collector not created");
const required = new Map<Capability, string>([["cap_bpf", "ebpf"], ["cap_perfmon", "ebpf"]]);
const setup = await setupSecurity({
  component: "exporter",
  flags: fs,
  logger,
  required,
  readPaths: [defaultBpfOutDir],
  readWritePaths: [],
});
deferred.use(setup.manager);
await c.start(cgroupPath);
const units = [{ uuid: "u1", cgroupPath, pids: [] }];
const sum = (sink: FamilySink) => {
  const out: Record<string, number> = {};
  for (const [name, fam] of sink.families) {
    out[name] = fam.samples.filter((s) => s.labels.uuid === "u1").reduce((a, s) => a + s.value, 0);
  }
  return out;
};
const modesAtStart = c.attachModes;
const before = new FamilySink();
const ok = await c.update(units, before, {});
const threads = threadCredentials().map((t) => ({
  ...t,
  capPrm: t.capPrm.toString(16),
  capEff: t.capEff.toString(16),
  capInh: t.capInh.toString(16),
  capBnd: t.capBnd.toString(16),
  capAmb: t.capAmb.toString(16),
}));
console.log(`attached ${JSON.stringify({ ok, modes: modesAtStart, mode: setup.mode, pid: Deno.pid, threads })}`);
const reader = Deno.stdin.readable.getReader();
await reader.read();
const after = new FamilySink();
const ok2 = await c.update(units, after, {});
const b = sum(before);
const a = sum(after);
console.log(
  `counts ${
    JSON.stringify({ ok: ok2, delta: Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - (b[k] ?? 0)])) })
  }`,
);
c.stop();
await setup.close();
