// Access to CEEMS's e2e fixtures for tests: locating ../shared/ceems-e2e, unpacking the node tree with
// fake GPU/rdma tools, each scenario's flags for our collectors, and filtering our metric families.

import { join } from "node:path";
import { parseExposition, startCeems } from "../helpers/process.ts";
import { findCeemsFixtures } from "../../scripts/demo/fixtures.ts";

/** Directory of CEEMS's e2e data, or undefined outside this team's machines (the demo's look-up). */
export const ceemsE2eDir = findCeemsFixtures;

/** Unpacks the fixtures and writes fake GPU/rdma tools printing the recorded outputs. */
export async function prepareFixtures(e2e: string): Promise<{ dir: string; bin: string }> {
  // 8,600 small files: unpack on tmpfs when there is one (much faster on a busy disk).
  let shm: string | undefined;
  try {
    shm = Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  } catch {
    shm = undefined;
  }
  const dir = await Deno.makeTempDir({ prefix: "ceems-unit-compat-", dir: shm });
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

export const ours = /^(ceems_compute_unit|ceems_compute_units|ceems_rdma_)/;
export const ourCollectors = new Set(["slurm", "libvirt", "k8s"]);

/** Keeps the series of our families (and the success series of our collectors). */
export function ourSeries(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of parseExposition(text)) {
    const name = k.slice(0, k.indexOf("{"));
    // gpu_sm_count came after CEEMS 0.6.0, which recorded these fixtures.
    if (ours.test(name) && name !== "ceems_compute_unit_gpu_sm_count") out.set(k, v);
    const c = /^ceems_scrape_collector_success\{collector="([^"]+)"\}$/.exec(k);
    if (c && ourCollectors.has(c[1])) out.set(k, v);
  }
  return out;
}

/** Scrapes the exporter started with the fixture paths and `flags` once. */
export async function scrapeFixture(dir: string, flags: string[]): Promise<{ body: string }> {
  const p = await startCeems([
    "exporter",
    `--path.sysfs=${dir}/sys`,
    `--path.cgroupfs=${dir}/sys/fs/cgroup`,
    `--path.procfs=${dir}/proc`,
    "--collector.empty-hostname-label",
    "--web.disable-exporter-metrics",
    "--collector.disable-defaults",
    // The fixture tree has root-only (0400) files; privilege dropping has its own tests.
    "--no-security.drop-privileges",
    ...flags,
  ]);
  try {
    const r = await fetch(`${p.base}/metrics`);
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    return { body: await r.text() };
  } finally {
    await p.stop();
  }
}

/**
 * The expected output of `file` with the values CEEMS changed after 0.6.0 (which recorded these files)
 * recomputed from the fixture tree by the rule of CEEMS 0.10, which we follow. One value changed: a
 * libvirt VM's ceems_compute_unit_cpus, the cpuset count in 0.6.0 (no cpuset in the v1 libvirt tree: 0)
 * and the number of its vcpu* child cgroups since 0.10.0 (CEEMS commit d3de318, "cpusFromChildren").
 */
export function withCeems010Values(file: string, expected: string, cgroupfs: string, qemuDir: string): string {
  if (file !== "cgroupsv1-libvirt-output.txt") return expected;
  const vcpus = new Map<string, number>();
  const slice = join(cgroupfs, "cpuacct", "machine.slice");
  for (const scope of Deno.readDirSync(slice)) {
    const inst = /instance\\x2d([0-9a-f]+)\.scope$/.exec(scope.name)?.[1];
    if (!inst) continue;
    const xml = Deno.readTextFileSync(join(qemuDir, `instance-${inst}.xml`));
    const uuid = /<uuid>([^<]+)<\/uuid>/.exec(xml)![1];
    const n = [...Deno.readDirSync(join(slice, scope.name))].filter((e) => e.isDirectory && e.name.startsWith("vcpu"));
    vcpus.set(uuid, n.length);
  }
  return expected.replace(
    /^(ceems_compute_unit_cpus\{[^}]*manager="libvirt"[^}]*uuid="([^"]+)"[^}]*\}) \S+$/gm,
    (line, series, uuid) => (vcpus.has(uuid) ? `${series} ${vcpus.get(uuid)}` : line),
  );
}
