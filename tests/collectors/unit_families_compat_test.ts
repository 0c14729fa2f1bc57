// CEEMS compatibility of the compute-unit families: runs our exporter on CEEMS's fixture node for the six
// scenarios and compares ceems_compute_unit*, ceems_rdma_* and our collectors' success series with CEEMS's output.

import { join } from "node:path";
import { assertEquals } from "../helpers/assert.ts";
import { parseTypes } from "../helpers/process.ts";
import {
  ceemsE2eDir,
  ours,
  ourSeries,
  prepareFixtures,
  scenarioFlags,
  scrapeFixture,
  withCeems010Values,
} from "./ceems_fixtures.ts";

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
          const expectedText = withCeems010Values(
            file,
            await Deno.readTextFile(join(e2e!, "expected", file)),
            `${dir}/sys/fs/cgroup`,
            join(e2e!, "qemu"),
          );
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
