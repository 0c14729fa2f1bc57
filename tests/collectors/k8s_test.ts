// Tests of the k8s collector: pod cgroups of the cgroupfs driver (kubepods/…/pod<uid>) and the systemd
// driver (kubepods.slice/…-pod<uid_with_underscores>.slice), the pod UID as uuid, CPUs from weight/shares.

import { assertEquals } from "../helpers/assert.ts";
import { byUuid, put, scrapeInProcess } from "./unit_helpers.ts";
import { k8sCpus, weightToShares } from "../../collectors/units/stats.ts";

Deno.test("k8s CPU count from cpu.weight / cpu.shares as CEEMS (milli-CPU precision)", () => {
  assertEquals(weightToShares(1), 2);
  assertEquals(weightToShares(10000), 262144);
  assertEquals(k8sCpus(2), 0.001);
  assertEquals(k8sCpus(1024), 1);
});

Deno.test("k8s pods under the cgroupfs and systemd drivers (v2) with pod UID as uuid", async () => {
  const root = Deno.makeTempDirSync({ prefix: "ceems-k8s-test-" });
  try {
    put(`${root}/proc/meminfo`, "MemTotal: 100 kB\nSwapTotal: 0 kB\n");
    const pod = (dir: string, weight: string, user: number) => {
      put(`${dir}/cpu.stat`, `usage_usec 1\nuser_usec ${user}\nsystem_usec 0\n`);
      put(`${dir}/cpu.weight`, weight);
      put(`${dir}/memory.current`, "10\n");
      put(`${dir}/cgroup.procs`, "");
      put(`${dir}/cri-containerd-abc.scope/cgroup.procs`, "12\n");
    };
    pod(`${root}/cg/kubepods/burstable/pod0d3c1a6e-1111-2222-3333-444455556666`, "100", 5_000_000);
    pod(
      `${root}/cg/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7a1b2c3d_aaaa_bbbb_cccc_ddddeeeeffff.slice`,
      "1",
      1_000_000,
    );
    const s = await scrapeInProcess([
      "--collector.k8s",
      "--collector.cgroups.force-version=v2",
      `--path.cgroupfs=${root}/cg`,
      `--path.procfs=${root}/proc`,
    ]);
    assertEquals(s.success("k8s"), 1);
    const user = byUuid(s, "ceems_compute_unit_cpu_user_seconds_total");
    assertEquals(
      user,
      new Map([["0d3c1a6e-1111-2222-3333-444455556666", 5], ["7a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff", 1]]),
    );
    assertEquals(s.series.get(`ceems_compute_units{hostname="",manager="k8s"}`), 2);
    assertEquals(byUuid(s, "ceems_compute_unit_cpus").get("7a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff"), 0.001);
    assertEquals(
      byUuid(s, "ceems_compute_unit_cpus").get("0d3c1a6e-1111-2222-3333-444455556666"),
      k8sCpus(weightToShares(100)),
    );
    // swap metrics are always on for k8s (as CEEMS); PSI only with its flag.
    assertEquals(byUuid(s, "ceems_compute_unit_memsw_total_bytes").size, 2);
    assertEquals(s.sink.families.has("ceems_compute_unit_cpu_psi_seconds"), false);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
