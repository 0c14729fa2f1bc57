// CEEMS compatibility of the compute-unit families: runs our exporter on CEEMS's fixture node for the six
// scenarios and compares ceems_compute_unit*, ceems_rdma_* and our collectors' success series with CEEMS's output.

import { join } from "node:path";
import { assertEquals } from "../helpers/assert.ts";
import { parseExposition, parseTypes, repoRoot, startCeems } from "../helpers/process.ts";

/** Directory of CEEMS's e2e data, or undefined outside this team's machines. */
export function ceemsE2eDir(): string | undefined {
  for (const d of [Deno.env.get("CEEMS_E2E_DIR"), join(repoRoot, "../shared/ceems-e2e"), "/work/shared/ceems-e2e"]) {
    if (!d) continue;
    try {
      Deno.statSync(join(d, "fixtures.tar.gz"));
      return d;
    } catch {
      // try the next candidate
    }
  }
  return undefined;
}

/** Unpacks the fixtures and writes fake GPU/rdma tools printing the recorded outputs. */
export async function prepareFixtures(e2e: string): Promise<{ dir: string; bin: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ceems-unit-compat-" });
  const tar = await new Deno.Command("tar", { args: ["xzf", join(e2e, "fixtures.tar.gz"), "-C", dir] }).output();
  if (!tar.success) throw new Error(`tar failed: ${new TextDecoder().decode(tar.stderr)}`);
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  const t = join(e2e, "tools");
  const tools: Record<string, string> = {
    "nvidia-smi": `if [ "$1" = vgpu ]; then cat '${t}/nvidia-smi_vgpu_--query.txt'; ` +
      `elif [ "$*" = "--query --xml-format" ]; then cat '${t}/nvidia-smi_--query_--xml-format.xml'; else exit 2; fi`,
    "rocm-smi": `[ "$*" = "--showproductname --showserial --showbus --csv" ] || exit 2; ` +
      `cat '${t}/rocm-smi_--showproductname_--showserial_--showbus_--csv.csv'`,
    "rdma": `case "$*" in "resource show qp") cat '${t}/rdma_resource_show_qp.txt';; ` +
      `"resource show cq") cat '${t}/rdma_resource_show_cq.txt';; "resource show mr") cat '${t}/rdma_resource_show_mr.txt';; ` +
      `*) cat '${t}/rdma_statistic_qp_show.txt';; esac`,
  };
  for (const [name, body] of Object.entries(tools)) {
    await Deno.writeTextFile(join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return { dir, bin };
}

/** Our collectors' flags of each scenario (node collectors belong to the full compatibility suite). */
export function scenarioFlags(file: string, bin: string, e2e: string): string[] {
  const nv = [`--collector.gpu.type=nvidia`, `--collector.gpu.nvidia-smi-path=${bin}/nvidia-smi`];
  switch (file) {
    case "cgroupsv1-output.txt":
      return ["--collector.cgroups.force-version=v1", "--collector.slurm", ...nv];
    case "cgroupsv2-nvidia-ipmiutil-output.txt":
      return [
        "--collector.cgroups.force-version=v2",
        "--collector.slurm",
        ...nv,
        "--collector.rdma.stats",
        `--collector.rdma.cmd=${bin}/rdma`,
      ];
    case "cgroupsv2-amd-ipmitool-output.txt":
      return [
        "--collector.cgroups.force-version=v2",
        "--collector.slurm",
        "--collector.gpu.type=amd",
        `--collector.gpu.rocm-smi-path=${bin}/rocm-smi`,
      ];
    case "cgroupsv2-nogpu-output.txt":
      return ["--collector.cgroups.force-version=v2", "--collector.slurm"];
    case "cgroupsv2-procfs-output.txt":
      return ["--collector.cgroups.force-version=v2", "--collector.slurm", ...nv];
    case "cgroupsv1-libvirt-output.txt":
      return [
        "--collector.cgroups.force-version=v1",
        "--collector.libvirt",
        `--collector.libvirt.xml-dir=${join(e2e, "qemu")}`,
        "--collector.libvirt.swap-memory-metrics",
        "--collector.libvirt.psi-metrics",
        "--collector.libvirt.blkio-metrics",
        ...nv,
      ];
  }
  throw new Error(`unknown scenario ${file}`);
}

const ours = /^(ceems_compute_unit|ceems_compute_units|ceems_rdma_)/;
const ourCollectors = new Set(["slurm", "libvirt", "k8s"]);

/** Keeps the series of our families (and the success series of our collectors). */
export function ourSeries(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of parseExposition(text)) {
    const name = k.slice(0, k.indexOf("{"));
    if (ours.test(name)) out.set(k, v);
    const c = /^ceems_scrape_collector_success\{collector="([^"]+)"\}$/.exec(k);
    if (c && ourCollectors.has(c[1])) out.set(k, v);
  }
  return out;
}

/** Scrapes the exporter started with the fixture paths and `flags` once. */
export async function scrapeFixture(dir: string, flags: string[]): Promise<{ body: string; stderr: string }> {
  const p = await startCeems([
    "exporter",
    `--path.sysfs=${dir}/sys`,
    `--path.cgroupfs=${dir}/sys/fs/cgroup`,
    `--path.procfs=${dir}/proc`,
    "--collector.empty-hostname-label",
    "--web.disable-exporter-metrics",
    "--collector.disable-defaults",
    ...flags,
  ]);
  try {
    const r = await fetch(`${p.base}/metrics`);
    return { body: await r.text(), stderr: "" };
  } finally {
    const { stderr } = await p.stop();
    void stderr;
  }
}

const e2e = ceemsE2eDir();
if (!e2e) {
  console.warn("unit_families_compat_test: CEEMS e2e data (../shared/ceems-e2e) absent: skipping");
}

const scenarios = [
  "cgroupsv1-output.txt",
  "cgroupsv2-nvidia-ipmiutil-output.txt",
  "cgroupsv2-amd-ipmitool-output.txt",
  "cgroupsv2-nogpu-output.txt",
  "cgroupsv2-procfs-output.txt",
  "cgroupsv1-libvirt-output.txt",
];

Deno.test({
  name: "compute-unit families match CEEMS's expected output in the six e2e scenarios",
  ignore: !e2e,
  sanitizeResources: false,
  async fn(t) {
    const { dir, bin } = await prepareFixtures(e2e!);
    let v1Body = "";
    try {
      for (const file of scenarios) {
        await t.step(file, async () => {
          const expectedText = await Deno.readTextFile(join(e2e!, "expected", file));
          const { body } = await scrapeFixture(dir, scenarioFlags(file, bin, e2e!));
          if (file === "cgroupsv1-output.txt") v1Body = body;
          const got = ourSeries(body);
          const want = ourSeries(expectedText);
          if (file === "cgroupsv1-output.txt") {
            // CEEMS's recorded v1 RDMA series do not correspond to this fixture's v1 rdma hierarchy (they
            // equal the v2 tree's rdma.current per job id); ours read the v1 rdma controller: checked below.
            for (const m of [got, want]) {
              for (const k of [...m.keys()]) if (k.startsWith("ceems_compute_unit_rdma_hca_")) m.delete(k);
            }
          }
          assertEquals([...got.keys()].sort(), [...want.keys()].sort(), `series of ${file}`);
          for (const [k, v] of want) assertEquals(got.get(k), v, `${file}: ${k}`);
          const gotTypes = parseTypes(body);
          for (const [name, type] of parseTypes(expectedText)) {
            if (ours.test(name)) assertEquals(gotTypes.get(name), type, `${file}: TYPE of ${name}`);
          }
        });
      }
      await t.step("v1 RDMA series come from the v1 rdma controller files", () => {
        const got = ourSeries(v1Body);
        const rdma = [...got].filter(([k]) => k.startsWith("ceems_compute_unit_rdma_hca_handles"));
        const want: [string, number][] = [];
        for (const host of ["", "_host0", "_host1"]) {
          const base = `${dir}/sys/fs/cgroup/rdma/slurm${host}/uid_1000`;
          for (const e of Deno.readDirSync(base)) {
            if (!e.name.startsWith("job_")) continue;
            const text = Deno.readTextFileSync(`${base}/${e.name}/rdma.current`);
            for (const line of text.split("\n").filter((l) => l.trim())) {
              const [dev, h] = line.split(/\s+/);
              const labels = [
                `cgrouphostname="${host.slice(1)}"`,
                `device="${dev}"`,
                `hostname=""`,
                `manager="slurm"`,
                `uuid="${e.name.slice(4)}"`,
              ];
              want.push([`ceems_compute_unit_rdma_hca_handles{${labels.join(",")}}`, Number(h.split("=")[1])]);
            }
          }
        }
        assertEquals(new Map(rdma), new Map(want));
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
