// Declared once: each feature's contexts come from its module's declaration for the parsed flags, and
// privilege/ only gathers them (the required set, --print-capabilities, what the Worker may run).

import { SLURM_TOOL_CONTEXT } from "../../api_server/managers/slurm.ts";
import { ebpfFlags, ebpfSecurity } from "../../collectors/units/ebpf.ts";
import { exporterFlags, exporterSecurity } from "../../collectors/exporter.ts";
import { FlagSet } from "../../common/flags.ts";
import { capsOf, maskOf } from "../../privilege/capset.ts";
import { gatherSecurity } from "../../privilege/declare.ts";
import type { Capability } from "../../privilege/ops.ts";
import { formatCapabilities } from "../../privilege/print.ts";
import { WorkerSecurityManager } from "../../privilege/security.ts";
import { WORKER_URL } from "../../privilege/worker_source.ts";
import type { WorkerReply, WorkerRequest } from "../../privilege/worker.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../helpers/assert.ts";

/** A root-owned tool outside any directory others can write (a tool run as root must be). */
const TOOL = "/usr/bin/true";

/** What the exporter needs with these flags: capability → flags. */
function required(argv: string[]): Map<Capability, string> {
  const fs = exporterFlags();
  fs.parse(["--collector.disable-defaults", ...argv], {});
  return exporterSecurity(fs).required;
}
const caps = (argv: string[]) => [...required(argv).keys()];

Deno.test("the issue's combination slurm+rapl+ipmi_dcmi (tool mode) needs ptrace, dac_read_search, setuid, setgid, kill", () => {
  const req = required([
    "--collector.slurm",
    "--collector.gpu.type=nogpu",
    "--collector.rapl",
    "--collector.ipmi_dcmi",
    `--collector.ipmi_dcmi.cmd=${TOOL}`,
    "--collector.cpu",
  ]);
  assertEquals([...req.keys()], ["cap_dac_read_search", "cap_kill", "cap_setgid", "cap_setuid", "cap_sys_ptrace"]);
  assertEquals(req.get("cap_dac_read_search"), "--collector.rapl,--collector.slurm");
  assertEquals(req.get("cap_setuid"), "--collector.ipmi_dcmi");
});

Deno.test("ipmi_dcmi: a tool runs as root, native mode opens the device, test mode needs nothing", () => {
  assertEquals(caps(["--collector.ipmi_dcmi", `--collector.ipmi_dcmi.cmd=${TOOL}`]), [
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
  ]);
  assertEquals(caps(["--collector.ipmi_dcmi", "--collector.ipmi_dcmi.force-native-mode"]), ["cap_dac_override"]);
  assertEquals(
    caps(["--collector.ipmi_dcmi", `--collector.ipmi_dcmi.cmd=${TOOL}`, "--collector.ipmi_dcmi.test-mode"]),
    [],
  );
});

Deno.test("slurm reads job environments unless a GPU job map is given", () => {
  const slurm = ["--collector.slurm", "--collector.gpu.type=nogpu"];
  assertEquals(caps(slurm), ["cap_dac_read_search", "cap_sys_ptrace"]);
  assertEquals(caps([...slurm, "--collector.slurm.gpu-job-map-path=/run/gpujobmap"]), []);
});

Deno.test("sub-collectors: perf (+ env-var), ebpf (+ sys_resource before 5.11), rdma; only under a unit collector", () => {
  const k8s = ["--collector.k8s"];
  assertEquals(caps([...k8s, "--collector.perf.software-events"]), ["cap_perfmon"]);
  const env = required([...k8s, "--collector.perf.software-events", "--collector.perf.env-var=SLURM_"]);
  assertEquals([...env.keys()], ["cap_dac_read_search", "cap_perfmon", "cap_sys_ptrace"]);
  assertEquals(env.get("cap_sys_ptrace"), "--collector.perf.env-var");
  assertEquals(caps([...k8s, "--collector.ebpf.io-metrics"]), ["cap_bpf", "cap_perfmon"]);
  const fs = exporterFlags();
  fs.parse(["--collector.ebpf.io-metrics"], {});
  const old = gatherSecurity([ebpfSecurity(ebpfFlags(fs), "5.10.0-28-amd64")]);
  assertEquals([...old.required.keys()], ["cap_bpf", "cap_perfmon", "cap_sys_resource"]);
  const rdma = ["--collector.slurm", "--collector.gpu.type=nogpu", "--collector.slurm.gpu-job-map-path=/x"];
  assertEquals(caps([...rdma, "--collector.rdma.stats", `--collector.rdma.cmd=${TOOL}`]), [
    "cap_kill",
    "cap_net_admin",
    "cap_setgid",
    "cap_setuid",
  ]);
  assertEquals(caps(["--collector.cpu", "--collector.perf.software-events", "--collector.ebpf.io-metrics"]), []);
});

Deno.test("libvirt and rapl read root-only files; redfish, cpu, meminfo, hwmon, netdev need nothing", () => {
  assertEquals(caps(["--collector.libvirt", "--collector.gpu.type=nogpu"]), ["cap_dac_read_search"]);
  assertEquals(caps(["--collector.rapl"]), ["cap_dac_read_search"]);
  assertEquals(caps(["--collector.cpu", "--collector.meminfo", "--collector.hwmon", "--collector.netdev"]), []);
});

Deno.test("api with a SLURM cluster: sacct as root (setuid, setgid) and the sweep's kill", () => {
  assertEquals([...gatherSecurity([{ contexts: [SLURM_TOOL_CONTEXT] }]).required.keys()], [
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
  ]);
});

Deno.test("gathering: a root command brings the sweep context; one name, one capability set", () => {
  const g = gatherSecurity([{
    contexts: [{ name: "x", caps: ["cap_setuid", "cap_setgid"], flag: "f", reason: "r", uses: ["exec-root"] }],
  }]);
  assertEquals([...g.contexts.keys()], ["x", "exec_sweep"]);
  assertEquals(g.contexts.get("exec_sweep")!.uses, ["killForeignDescendants"]);
  assertThrows(
    () =>
      gatherSecurity([{ contexts: [{ name: "x", caps: ["cap_bpf"], flag: "f", reason: "r", uses: ["readFile"] }] }, {
        contexts: [{ name: "x", caps: ["cap_perfmon"], flag: "f", reason: "r", uses: ["readFile"] }],
      }]),
    /security context x declared with cap_bpf and cap_perfmon/,
  );
});

Deno.test("the manager runs only what is declared: unknown context, other capabilities, undeclared operation", async () => {
  const declared = gatherSecurity([{
    contexts: [{ name: "reader", caps: ["cap_dac_read_search"], flag: "f", reason: "r", uses: ["readFile"] }],
  }]).contexts;
  const m = new WorkerSecurityManager(new Set(["cap_dac_read_search"]), new Map(), undefined, undefined, declared);
  const err = async (name: string, c: Capability[], kind: "readFile" | "openFd") => {
    const op = kind === "readFile"
      ? { kind, path: "/etc/hostname" } as const
      : { kind, path: "/etc/hostname" } as const;
    const [r] = await m.run({ name, caps: c }, [op]);
    return r.ok ? "" : r.error;
  };
  assertEquals(
    await err("nobody-declared", ["cap_dac_read_search"], "readFile"),
    "nobody-declared: security context not declared",
  );
  assertMatch(await err("reader", ["cap_bpf"], "readFile"), /capabilities cap_bpf differ from the declared/);
  assertEquals(await err("reader", ["cap_dac_read_search"], "openFd"), "reader: openFd not declared for this context");
  await m.exec({ name: "reader", caps: ["cap_dac_read_search"] }, { cmd: ["/bin/true"], timeoutMs: 1000 }, {
    asRoot: true,
  }).then(
    () => assert(false, "must refuse"),
    (e) => assertEquals((e as Error).message, "reader: exec-root not declared for this context"),
  );
  // The Worker itself refuses an operation its item does not allow, before raising anything.
  const w = new Worker(WORKER_URL, { type: "module" });
  try {
    const reply = await new Promise<WorkerReply>((resolve) => {
      w.onmessage = (ev: MessageEvent<WorkerReply>) => resolve(ev.data);
      const req: WorkerRequest = {
        items: [{ context: "t", caps: [], ops: [{ kind: "readFile", path: "/etc/hostname" }], allowed: ["openFd"] }],
      };
      w.postMessage(req);
    });
    assertEquals(reply.items[0].results[0], {
      ok: false,
      error: "security context t: readFile is not declared for it",
    });
    assertEquals(reply.items[0].raisedEffective, "0");
  } finally {
    w.terminate();
  }
});

Deno.test("capability masks use the kernel numbers", () => {
  assertEquals(maskOf(["cap_setuid", "cap_setgid"]), 0xc0n);
  assertEquals(maskOf(["cap_sys_ptrace", "cap_dac_read_search"]), 0x80004n);
  assertEquals(maskOf(["cap_bpf", "cap_perfmon"]), 0xc000000000n);
  assertEquals(capsOf(0x800c4n).sort(), ["cap_dac_read_search", "cap_setgid", "cap_setuid", "cap_sys_ptrace"]);
  assertEquals(new FlagSet("x", "y").has("nothing"), false);
});

Deno.test("--print-capabilities under deno run: root-start lines, and file capabilities never for the interpreter", () => {
  const req = new Map<Capability, string>([["cap_setuid", "--collector.ipmi_dcmi"], ["cap_setgid", "--x"]]);
  const deno = { standalone: false, path: "/usr/local/bin/deno", mode: 0o100755 };
  const out = formatCapabilities("exporter", req, deno);
  assertMatch(out, /^capabilities: cap_setgid cap_setuid$/m);
  assertMatch(out, /^CapabilityBoundingSet=CAP_FOWNER CAP_SETGID CAP_SETPCAP CAP_SETUID$/m);
  assertMatch(out, /^AmbientCapabilities=$/m);
  assertMatch(out, /^NoNewPrivileges=yes$/m);
  assertMatch(out, /^Environment=DENO_DIR=\/dev\/null$/m);
  // No setcap command line at all, and none naming the interpreter even in a comment's example.
  assertEquals(out.split("\n").filter((l) => /^setcap /.test(l)), []);
  assertEquals(out.split("\n").filter((l) => /setcap \S+ \/usr\/local\/bin\/deno/.test(l)), []);
  assertMatch(out, /belong only on the compiled binary/);
  assertMatch(out, /chmod 0750 dist\/ceems/);
  const lb = formatCapabilities("lb", new Map(), deno);
  assertMatch(lb, /^capabilities: none$/m);
  assertMatch(lb, /^CapabilityBoundingSet=CAP_SETGID CAP_SETPCAP CAP_SETUID$/m);
});

Deno.test("--print-capabilities of a compiled binary: setcap on that binary, and a warning if others may run it", () => {
  const req = new Map<Capability, string>([["cap_dac_read_search", "--collector.rapl"]]);
  const bin = (mode: number) => ({ standalone: true, path: "/usr/local/bin/ceems", mode });
  const safe = formatCapabilities("exporter", req, bin(0o100750));
  assertMatch(safe, /^setcap cap_dac_read_search\+p \/usr\/local\/bin\/ceems$/m);
  assertMatch(safe, /^chown root:ceems \/usr\/local\/bin\/ceems && chmod 0750 \/usr\/local\/bin\/ceems$/m);
  assertEquals(safe.includes("WARNING"), false);
  assertMatch(
    formatCapabilities("exporter", req, bin(0o100755)),
    /WARNING: \/usr\/local\/bin\/ceems is executable by others/,
  );
});

Deno.test("docs/privileges.md's table of security contexts is the one the declarations give", async () => {
  const { capabilityTable } = await import("../../scripts/capability_table.ts");
  const { repoRoot } = await import("../helpers/process.ts");
  const readme = Deno.readTextFileSync(`${repoRoot}docs/privileges.md`);
  const doc = readme.split("<!-- capability-table:begin -->")[1].split("<!-- capability-table:end -->")[0];
  // Rows as cells, whatever the column padding `deno fmt` gives them.
  const rows = (t: string) =>
    t.trim().split("\n").filter((l) => l.startsWith("|") && !/^\|[\s|-]+\|$/.test(l)).map((l) =>
      l.split("|").slice(1, -1).map((c) => c.trim()).join(" | ")
    );
  assertEquals(rows(doc), rows(capabilityTable()));
});
