// The node the demo exporter reads: CEEMS's e2e fixture tree (cgroup v2 SLURM jobs on three slurmd, GPUs,
// RAPL), unpacked into a work directory, with the fake tools the exporter calls (nvidia-smi, ipmi-dcmi).

import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Directory of CEEMS's e2e data ($CEEMS_E2E_DIR, ../shared/ceems-e2e, /work/shared/ceems-e2e), if present. */
export function findCeemsFixtures(): string | undefined {
  for (const d of [Deno.env.get("CEEMS_E2E_DIR"), join(repoRoot, "../shared/ceems-e2e"), "/work/shared/ceems-e2e"]) {
    if (!d) continue;
    try {
      Deno.statSync(join(d, "fixtures.tar.gz"));
      return d;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

/** The unpacked node: its root (sys/, proc/), the tools directory and the file holding node power. */
export interface FixtureNode {
  root: string;
  bin: string;
  /** Node power in watts read by the fake ipmi-dcmi at every call (the ticker writes it). */
  powerFile: string;
  /** GPU UUIDs of the fixture's nvidia-smi output. */
  gpuUuids: string[];
}

/** Unpacks the fixtures under `dir` and writes the fake tools. */
export async function unpackNode(e2e: string, dir: string): Promise<FixtureNode> {
  const root = join(dir, "node");
  await Deno.mkdir(root, { recursive: true });
  const tar = await new Deno.Command("tar", { args: ["xzf", join(e2e, "fixtures.tar.gz"), "-C", root] }).output();
  if (!tar.success) throw new Error(`tar: ${new TextDecoder().decode(tar.stderr)}`);
  const bin = join(dir, "bin");
  await Deno.mkdir(bin, { recursive: true });
  const smi = join(e2e, "tools", "nvidia-smi_--query_--xml-format.xml");
  const powerFile = join(dir, "power_w");
  await Deno.writeTextFile(powerFile, "400\n");
  await Deno.writeTextFile(join(bin, "nvidia-smi"), `#!/bin/sh\nexec cat '${smi}'\n`, { mode: 0o755 });
  await Deno.writeTextFile(
    join(bin, "ipmi-dcmi"),
    `#!/bin/sh\nw=$(cat '${powerFile}')\necho "Current Power                        : $w Watts"\n` +
      `echo "Power Measurement                    : Active"\n`,
    { mode: 0o755 },
  );
  const gpuUuids = [...(await Deno.readTextFile(smi)).matchAll(/<uuid>([^<]+)<\/uuid>/g)].map((m) => m[1]);
  return { root, bin, powerFile, gpuUuids };
}

/** The exporter flags that read the fixture node (SLURM cgroup v2, NVIDIA GPUs, IPMI DCMI, RAPL, emissions). */
export function exporterFlags(n: FixtureNode): string[] {
  return [
    `--path.sysfs=${n.root}/sys`,
    `--path.procfs=${n.root}/proc`,
    `--path.cgroupfs=${n.root}/sys/fs/cgroup`,
    "--collector.cgroups.force-version=v2",
    "--collector.slurm",
    "--collector.gpu.type=nvidia",
    `--collector.gpu.nvidia-smi-path=${n.bin}/nvidia-smi`,
    "--collector.ipmi_dcmi",
    `--collector.ipmi_dcmi.cmd=${n.bin}/ipmi-dcmi`,
    "--collector.ipmi_dcmi.test-mode",
    "--collector.emissions",
    "--collector.emissions.provider=owid",
    "--collector.emissions.provider=global",
    "--no-security.drop-privileges",
  ];
}
