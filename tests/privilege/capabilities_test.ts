// Tests of the capability table and requiredCapabilities: each feature's set, the flag conditions
// that change it, unions over features, the api/lb components, and the --print-capabilities text.

import { FlagSet } from "../../common/flags.ts";
import {
  CAPABILITY_TABLE,
  featureCapabilities,
  type HostFacts,
  requiredCapabilities,
} from "../../privilege/capabilities.ts";
import { capsOf, maskOf } from "../../privilege/capset.ts";
import type { Capability } from "../../privilege/ops.ts";
import { formatCapabilities } from "../../privilege/print.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";

const host = (over: Partial<HostFacts> = {}): HostFacts => ({
  kernelRelease: "6.1.0",
  toolExists: () => false,
  readText: () => undefined,
  ...over,
});

/** A flag set declaring the feature flags the table reads, parsed from argv. */
function flags(argv: string[]): FlagSet {
  const fs = new FlagSet("exporter", "t");
  fs.add({ name: "collector.ipmi_dcmi.cmd", kind: "string", help: "" });
  fs.add({ name: "collector.ipmi_dcmi.force-native-mode", kind: "bool", help: "" });
  fs.add({ name: "collector.ipmi_dcmi.test-mode", kind: "bool", help: "" });
  fs.add({ name: "collector.slurm.gpu-job-map-path", kind: "string", help: "" });
  fs.add({ name: "collector.perf.env-var", kind: "strings", help: "" });
  fs.add({ name: "collector.redfish.config.file", kind: "string", help: "" });
  fs.parse(argv);
  return fs;
}

const caps = (
  component: "exporter" | "api" | "lb",
  features: string[],
  argv: string[] = [],
  h = host(),
) => [...requiredCapabilities(component, features, flags(argv), h).keys()];

Deno.test("the issue's combination slurm+rapl+ipmi_dcmi (tool mode) needs ptrace, dac_read_search, setuid, setgid, kill", () => {
  const req = requiredCapabilities(
    "exporter",
    ["slurm", "rapl", "ipmi_dcmi", "cpu"],
    flags(["--collector.ipmi_dcmi.cmd=/usr/sbin/ipmi-dcmi"]),
    host(),
  );
  assertEquals([...req.keys()], ["cap_dac_read_search", "cap_kill", "cap_setgid", "cap_setuid", "cap_sys_ptrace"]);
  assertEquals(req.get("cap_dac_read_search"), "--collector.slurm,--collector.rapl");
  assertEquals(req.get("cap_setuid"), "--collector.ipmi_dcmi");
});

Deno.test("ipmi_dcmi: tool mode from the cmd flag or a tool in the system directories, native /dev/ipmi0 otherwise", () => {
  const tool = ["cap_kill", "cap_setgid", "cap_setuid"];
  assertEquals(caps("exporter", ["ipmi_dcmi"], ["--collector.ipmi_dcmi.cmd=ipmitool"]), tool);
  assertEquals(caps("exporter", ["ipmi_dcmi"]), ["cap_dac_override"]);
  assertEquals(caps("exporter", ["ipmi_dcmi"], [], host({ toolExists: (t) => t === "ipmitool" })), tool);
  assertEquals(
    caps("exporter", ["ipmi_dcmi"], ["--collector.ipmi_dcmi.cmd=ipmitool", "--collector.ipmi_dcmi.force-native-mode"]),
    ["cap_dac_override"],
  );
  assertEquals(caps("exporter", ["ipmi_dcmi"], ["--collector.ipmi_dcmi.test-mode"]), []);
});

Deno.test("slurm needs nothing with --collector.slurm.gpu-job-map-path", () => {
  assertEquals(caps("exporter", ["slurm"]), ["cap_dac_read_search", "cap_sys_ptrace"]);
  assertEquals(caps("exporter", ["slurm"], ["--collector.slurm.gpu-job-map-path=/run/gpujobmap"]), []);
});

Deno.test("perf adds ptrace and dac_read_search only with --collector.perf.env-var", () => {
  assertEquals(caps("exporter", ["perf"]), ["cap_perfmon"]);
  const req = requiredCapabilities("exporter", ["perf"], flags(["--collector.perf.env-var=SLURM_"]), host());
  assertEquals([...req.keys()], ["cap_dac_read_search", "cap_perfmon", "cap_sys_ptrace"]);
  assertEquals(req.get("cap_sys_ptrace"), "--collector.perf.env-var");
});

Deno.test("ebpf adds cap_sys_resource only on kernels older than 5.11", () => {
  assertEquals(caps("exporter", ["ebpf"]), ["cap_bpf", "cap_perfmon"]);
  assertEquals(caps("exporter", ["ebpf"], [], host({ kernelRelease: "5.10.0-28-amd64" })), [
    "cap_bpf",
    "cap_perfmon",
    "cap_sys_resource",
  ]);
  assertEquals(caps("exporter", ["ebpf"], [], host({ kernelRelease: "5.11.0" })), ["cap_bpf", "cap_perfmon"]);
});

Deno.test("redfish needs cap_dac_override only when its config names no BMC hostname", () => {
  const withHost = "redfish_collector:\n  protocol: https\n  hostname: bmc-1\n";
  const without = "redfish_collector:\n  protocol: https\n  port: 443\n";
  const args = ["--collector.redfish.config.file=/etc/r.yml"];
  assertEquals(caps("exporter", ["redfish"], args, host({ readText: () => withHost })), []);
  assertEquals(caps("exporter", ["redfish"], args, host({ readText: () => without })), ["cap_dac_override"]);
  // CEEMS's e2e fixture configs spell the key `host:`; the collector accepts both, so does the table.
  const withHostKey = "redfish_web_config:\n  protocol: http\n  host: 127.0.0.1\n  port: 5000\n";
  assertEquals(caps("exporter", ["redfish"], args, host({ readText: () => withHostKey })), []);
  assertEquals(caps("exporter", ["redfish"], args, host({ readText: () => "redfish_collector:\n  host: ''\n" })), [
    "cap_dac_override",
  ]);
  assertEquals(caps("exporter", ["redfish"]), ["cap_dac_override"]);
});

Deno.test("libvirt, rdma and rapl rows; collectors without a row need nothing", () => {
  assertEquals(caps("exporter", ["libvirt"]), ["cap_dac_read_search"]);
  assertEquals(caps("exporter", ["rdma"]), ["cap_kill", "cap_net_admin", "cap_setgid", "cap_setuid"]);
  assertEquals(caps("exporter", ["rapl"]), ["cap_dac_read_search"]);
  assertEquals(caps("exporter", ["cpu", "meminfo", "hwmon", "netdev"]), []);
});

Deno.test("api with a SLURM cluster needs setuid+setgid (+kill); lb needs nothing whatever is enabled", () => {
  assertEquals(caps("api", ["slurm"]), ["cap_kill", "cap_setgid", "cap_setuid"]);
  assertEquals(caps("api", []), []);
  assertEquals(caps("lb", ["slurm", "rapl", "ipmi_dcmi"]), []);
  // Rows never leak across components.
  assertEquals(caps("api", ["rapl"]), []);
});

Deno.test("flags a build does not declare read as unset", () => {
  const bare = new FlagSet("exporter", "t");
  assertEquals(featureCapabilities("exporter", "slurm", bare, host()), ["cap_dac_read_search", "cap_sys_ptrace"]);
  assertEquals(featureCapabilities("exporter", "ipmi_dcmi", bare, host()), ["cap_dac_override"]);
});

Deno.test("the table covers every feature the issue lists", () => {
  const features = new Set(CAPABILITY_TABLE.map((r) => `${r.component}:${r.feature}`));
  for (
    const f of [
      "exporter:ipmi_dcmi",
      "exporter:redfish",
      "exporter:slurm",
      "exporter:libvirt",
      "exporter:perf",
      "exporter:ebpf",
      "exporter:rdma",
      "exporter:rapl",
      "api:slurm",
    ]
  ) assert(features.has(f), `table lacks ${f}`);
  assert(!CAPABILITY_TABLE.some((r) => r.component === "lb"));
});

Deno.test("capability masks use the kernel numbers", () => {
  assertEquals(maskOf(["cap_setuid", "cap_setgid"]), 0xc0n);
  assertEquals(maskOf(["cap_sys_ptrace", "cap_dac_read_search"]), 0x80004n);
  assertEquals(maskOf(["cap_bpf", "cap_perfmon"]), 0xc000000000n);
  assertEquals(capsOf(0x800c4n).sort(), ["cap_dac_read_search", "cap_setgid", "cap_setuid", "cap_sys_ptrace"]);
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
