// CEEMS compatibility suite: runs the six end-to-end scenarios of ../shared/ceems-e2e against
// `ceems exporter` with our fake tools and Redfish mock, and compares /metrics with CEEMS's output.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { writeRecordedTool } from "../helpers/fake_tools.ts";
import { compareExpositions, formatDiffs } from "../helpers/metrics_compare.ts";
import { repoRoot, startCeems } from "../helpers/process.ts";
import { startRedfishMock } from "../helpers/redfish_mock.ts";
import { pathExists } from "../../common/fs.ts";
import { withCeems010Values } from "./ceems_fixtures.ts";

/** ../shared beside the checkout (CEEMS_SHARED_DIR overrides it, e.g. for a git worktree). */
const sharedDir = Deno.env.get("CEEMS_SHARED_DIR") ?? join(repoRoot, "..", "shared");
const e2eDir = join(sharedDir, "ceems-e2e");

const haveFixtures = pathExists(join(e2eDir, "fixtures.tar.gz"));
if (!haveFixtures) {
  console.log(`compat_e2e: ${e2eDir} not found; CEEMS compatibility scenarios skipped`);
}

/** Where the fixture trees are unpacked, relative to the exporter's working directory (CEEMS's layout). */
const testdata = "pkg/collector/testdata";

/** Flags every scenario uses. */
const commonArgs = [
  `--path.sysfs=${testdata}/sys`,
  `--path.cgroupfs=${testdata}/sys/fs/cgroup`,
  `--path.procfs=${testdata}/proc`,
  "--collector.empty-hostname-label",
  "--web.disable-exporter-metrics",
  "--collector.ipmi_dcmi",
  "--collector.ipmi_dcmi.test-mode",
  // CEEMS's fixture tree is root-only throughout (0440 files, unlike sysfs's 0444), so the scenarios keep
  // the starting user; the privilege drop has its own tests (tests/privilege/).
  "--no-security.drop-privileges",
];

interface Scenario {
  expected: string;
  /**
   * Fake tools of the scenario. CEEMS finds the IPMI tool on PATH; ceems looks only in the system directories
   * (privilege/tools.ts), so scenarios that relied on PATH name their tool with --collector.ipmi_dcmi.cmd.
   */
  tools: string[];
  /** Extra flags; `bin` is the directory of the fake tools. */
  args: (bin: string) => string[];
}

const scenarios: Scenario[] = [
  {
    expected: "cgroupsv1-output.txt",
    tools: ["nvidia-smi", "ipmi-dcmi"],
    args: (bin) => [
      "--collector.cgroups.force-version=v1",
      "--collector.slurm",
      "--collector.gpu.type=nvidia",
      `--collector.gpu.nvidia-smi-path=${bin}/nvidia-smi`,
      `--collector.ipmi_dcmi.cmd=${bin}/ipmi-dcmi --get-system-power-statistics`,
      "--collector.redfish",
      "--collector.redfish.web-config=redfish/config.yml",
      "--collector.cray_pm_counters",
    ],
  },
  {
    expected: "cgroupsv2-nvidia-ipmiutil-output.txt",
    tools: ["ipmiutil", "nvidia-smi", "rdma"],
    args: (bin) => [
      "--collector.cgroups.force-version=v2",
      "--collector.slurm",
      "--collector.gpu.type=nvidia",
      `--collector.gpu.nvidia-smi-path=${bin}/nvidia-smi`,
      "--collector.rdma.stats",
      `--collector.rdma.cmd=${bin}/rdma`,
      `--collector.ipmi_dcmi.cmd=${bin}/ipmiutil dcmi power`,
      "--collector.redfish",
      "--collector.redfish.web-config=redfish/config.yml",
      "--collector.netdev",
      "--collector.netdev.device-include=eth0",
    ],
  },
  {
    expected: "cgroupsv2-amd-ipmitool-output.txt",
    tools: ["ipmitool", "rocm-smi"],
    args: (bin) => [
      "--collector.cgroups.force-version=v2",
      "--collector.slurm",
      "--collector.gpu.type=amd",
      `--collector.gpu.rocm-smi-path=${bin}/rocm-smi`,
      `--collector.ipmi_dcmi.cmd=${bin}/ipmitool dcmi power reading`,
      "--collector.hwmon",
      "--collector.redfish",
      "--collector.redfish.web-config=redfish/config.yml",
    ],
  },
  {
    expected: "cgroupsv2-nogpu-output.txt",
    tools: ["capmc"],
    args: (bin) => [
      "--collector.cgroups.force-version=v2",
      "--collector.slurm",
      "--collector.infiniband",
      `--collector.ipmi_dcmi.cmd=${bin}/capmc get_system_power -w 600`,
    ],
  },
  {
    expected: "cgroupsv2-procfs-output.txt",
    tools: ["nvidia-smi", "ipmiutil"],
    args: (bin) => [
      "--collector.cgroups.force-version=v2",
      "--collector.slurm",
      "--collector.gpu.type=nvidia",
      `--collector.gpu.nvidia-smi-path=${bin}/nvidia-smi`,
      `--collector.ipmi.dcmi.cmd=${bin}/ipmiutil dcmi power`,
      "--collector.cray_pm_counters",
    ],
  },
  {
    expected: "cgroupsv1-libvirt-output.txt",
    tools: ["nvidia-smi", "capmc"],
    args: (bin) => [
      "--collector.cgroups.force-version=v1",
      "--collector.libvirt",
      "--collector.libvirt.xml-dir=qemu",
      "--collector.libvirt.swap-memory-metrics",
      "--collector.libvirt.psi-metrics",
      "--collector.libvirt.blkio-metrics",
      "--collector.gpu.type=nvidia",
      `--collector.gpu.nvidia-smi-path=${bin}/nvidia-smi`,
      `--collector.ipmi.dcmi.cmd=${bin}/capmc get_system_power -w 600`,
    ],
  },
];

/** Unpacks the fixtures and the config/XML directories the scenarios name, in CEEMS's relative layout. */
async function prepareWorkdir(): Promise<string> {
  const work = Deno.makeTempDirSync({ prefix: "ceems-compat-" });
  Deno.mkdirSync(join(work, testdata), { recursive: true });
  const tar = await new Deno.Command("tar", {
    args: ["xzf", join(e2eDir, "fixtures.tar.gz"), "-C", join(work, testdata)],
    stderr: "piped",
  }).output();
  if (!tar.success) throw new Error(`tar: ${new TextDecoder().decode(tar.stderr)}`);
  for (const d of ["qemu", "gpujobmap", "slurmjobprops"]) {
    const cp = await new Deno.Command("cp", { args: ["-r", join(e2eDir, d), join(work, d)] }).output();
    if (!cp.success) throw new Error(`copying ${d} failed`);
  }
  return work;
}

/** Writes the scenario's fake tools into its own directory. */
function prepareBin(work: string, s: Scenario): string {
  const bin = join(work, `bin-${s.expected.replace(/\.txt$/, "")}`);
  Deno.mkdirSync(bin);
  for (const t of s.tools) {
    writeRecordedTool(
      bin,
      t,
      join(e2eDir, "tools"),
      t === "rdma" ? { "statistic qp": "rdma_statistic_qp_show.txt" } : {},
    );
  }
  return bin;
}

Deno.test({
  name: "compat: CEEMS e2e scenarios give CEEMS's series",
  ignore: !haveFixtures,
  async fn(t) {
    const work = await prepareWorkdir();
    const mock = startRedfishMock(join(e2eDir, "redfish"));
    try {
      Deno.mkdirSync(join(work, "redfish"));
      const cfg = Deno.readTextFileSync(join(e2eDir, "redfish", "config.yml"))
        .replace(/host: localhost/, "host: 127.0.0.1")
        .replace(/port: 5000/, `port: ${mock.port}`);
      Deno.writeTextFileSync(join(work, "redfish", "config.yml"), cfg);
      for (const s of scenarios) {
        await t.step(s.expected, async () => {
          const bin = prepareBin(work, s);
          // The fixture tree lives in a root-only temp dir and is given by relative paths: keep root, as
          // tests/collectors/ceems_fixtures.ts does (the privilege drop has its own tests).
          const args = ["exporter", ...commonArgs, ...s.args(bin)];
          const proc = await startCeems(args, { cwd: work, env: { PATH: bin } });
          let body: string;
          try {
            const res = await fetch(`${proc.base}/metrics`);
            body = await res.text();
          } finally {
            await proc.stop();
          }
          // CEEMS times its sub-collectors under the parent (the comparison below ignores durations).
          if (args.includes("--collector.rdma.stats")) {
            assert(
              body.includes('ceems_scrape_collector_duration_seconds{collector="slurm",subcollector="rdma"}'),
              body,
            );
          }
          const expected = withCeems010Values(
            s.expected,
            Deno.readTextFileSync(join(e2eDir, "expected", s.expected)),
            join(work, testdata, "sys/fs/cgroup"),
            join(e2eDir, "qemu"),
          );
          const diffs = compareExpositions(expected, body);
          if (diffs.length) {
            throw new Error(`${s.expected}: ${diffs.length} families differ from CEEMS\n${formatDiffs(diffs)}`);
          }
        });
      }
    } finally {
      await mock.close();
      Deno.removeSync(work, { recursive: true });
    }
  },
});

Deno.test("compat: the comparison reports missing, extra and different series and TYPE changes per family", () => {
  const expected = `# HELP a_total x
# TYPE a_total counter
a_total{x="1"} 4.098592768e+09
a_total{x="2"} 1
# TYPE b gauge
b{y="1"} 5
go_goroutines 7
`;
  assertEquals(compareExpositions(expected, expected.replace("4.098592768e+09", "4098592768")), []);
  const actual = `# TYPE a_total gauge
a_total{x="1"} 4098592768
a_total{x="3"} 1
# TYPE b gauge
b{y="1"} 6
`;
  const diffs = compareExpositions(expected, actual);
  assertEquals(diffs.map((d) => d.family), ["a_total", "b"]);
  assertEquals(diffs[0].type, { expected: "counter", actual: "gauge" });
  assertEquals(diffs[0].missing, ['a_total{x="2"} 1']);
  assertEquals(diffs[0].extra, ['a_total{x="3"} 1']);
  assertEquals(diffs[1].different, ['b{y="1"} expected 5, got 6']);
  assertMatch(formatDiffs(diffs), / {2}TYPE expected counter, got gauge\n {2}missing \(1\):/);
});
