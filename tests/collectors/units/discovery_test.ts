// Tests of compute-unit discovery: CEEMS's unit regexes for SLURM v1/v2 (multi-slurmd host part), libvirt
// (systemd escapes) and k8s, child rules, version detection and the v1 cpu,cpuacct subsystem mapping.

import {
  detectVersion,
  discoverUnits,
  findLayout,
  isChild,
  matchUnit,
  v1SubsystemDir,
} from "../../../collectors/units/discovery.ts";
import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { put } from "../unit_helpers.ts";

Deno.test("unit regexes as CEEMS", () => {
  assertEquals(matchUnit("slurm", "v1", "/slurm/uid_1000/job_1009248"), ["1009248", ""]);
  assertEquals(matchUnit("slurm", "v1", "/slurm_host0/uid_1000/job_2009248/step_0"), ["2009248", "host0"]);
  assertEquals(matchUnit("slurm", "v2", "/system.slice/slurmstepd.scope/job_1009248"), ["1009248", ""]);
  assertEquals(matchUnit("slurm", "v2", "/system.slice/node0_slurmstepd.scope/job_2009248/step_3/user"), [
    "2009248",
    "node0",
  ]);
  assertEquals(matchUnit("slurm", "v2", "/system.slice/slurmstepd.scope/system"), undefined);
  // Slurm 26.05: the job directory is the job's SLUID unless CgroupJobIdPaths=yes.
  assertEquals(matchUnit("slurm", "v2", "/system.slice/slurmstepd.scope/sEKNKTV3WPV500"), ["sEKNKTV3WPV500", ""]);
  assertEquals(matchUnit("slurm", "v2", "/system.slice/node1_slurmstepd.scope/s5K1KKYAYG5D00/step_0/user/task_0"), [
    "s5K1KKYAYG5D00",
    "node1",
  ]);
  assertEquals(matchUnit("slurm", "v2", "/system.slice/slurmstepd.scope/sEKNKTV3WPV500x"), undefined);
  assertEquals(matchUnit("slurm", "v2", "/system.slice/slurmstepd.scope/sEKNKTV3WPVI00"), undefined); // no I in base32
  assertEquals(matchUnit("slurm", "v1", "/slurm/uid_1000/sEKNKTV3WPV500"), undefined);
  assertEquals(
    matchUnit("libvirt", "v1", "/machine.slice/machine-qemu\\x2d2\\x2dinstance\\x2d00000001.scope"),
    ["instance-00000001", ""],
  );
  assertEquals(matchUnit("k8s", "v2", "/kubepods.slice/kubepods-pod12345678_aaaa_bbbb.slice"), [
    "12345678-aaaa-bbbb",
    "",
  ]);
  assertEquals(matchUnit("k8s", "v2", "/kubepods.slice/kubepods-besteffort.slice"), undefined);
  assertEquals(isChild("slurm", "/slurm/uid_0/job_1/step_0"), true);
  assertEquals(isChild("libvirt", "/machine.slice/machine-qemu-1-instance-1.scope/libvirt/vcpu0"), true);
  assertEquals(isChild("k8s", "/kubepods/burstable/pod1/cri-containerd-x"), true);
});

Deno.test("version detection, v1 subsystem directory, layouts and the walk", () => {
  const root = Deno.makeTempDirSync();
  try {
    assertEquals(detectVersion(root, ""), "v1");
    put(`${root}/cgroup.controllers`, "cpu memory\n");
    assertEquals(detectVersion(root, ""), "v2");
    assertEquals(detectVersion(root, "v1"), "v1");
    Deno.mkdirSync(`${root}/cpu,cpuacct`);
    assertEquals(v1SubsystemDir(root, "cpuacct"), "cpu,cpuacct");
    assertEquals(v1SubsystemDir(root, "memory"), "memory");
    assertThrows(() => findLayout("slurm", "v2", root, "cpuacct"), /no slurm cgroup root/);
    put(`${root}/system.slice/slurmstepd.scope/job_7/cgroup.procs`, "1\n");
    put(`${root}/system.slice/slurmstepd.scope/job_7/step_0/user/task_0/cgroup.procs`, "2\n3\n");
    put(`${root}/system.slice/slurmstepd.scope/job_8/cgroup.procs`, "");
    const units = discoverUnits(findLayout("slurm", "v2", root, "cpuacct"));
    assertEquals(units.map((u) => [u.uuid, u.rel, u.pids]), [
      ["7", "/system.slice/slurmstepd.scope/job_7", [1, 2, 3]],
      ["8", "/system.slice/slurmstepd.scope/job_8", []],
    ]);
    put(`${root}/system.slice/slurmstepd.scope/job_8/cgroup.procs`, "12\nabc\n");
    assertThrows(() => discoverUnits(findLayout("slurm", "v2", root, "cpuacct")), /malformed pid/);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("each walk sees the tree as it is now: new jobs appear, ended jobs vanish, PIDs are re-read", () => {
  const root = Deno.makeTempDirSync({ prefix: "ceems-discovery-" });
  const scope = `${root}/system.slice/slurmstepd.scope`;
  try {
    put(`${scope}/job_1/cgroup.procs`, "10\n");
    const layout = findLayout("slurm", "v2", root, "cpuacct");
    const snapshot = () => discoverUnits(layout).map((u) => [u.uuid, u.pids]);
    assertEquals(snapshot(), [["1", [10]]]);
    put(`${scope}/job_2/cgroup.procs`, "20\n");
    put(`${scope}/job_2/step_0/user/task_0/cgroup.procs`, "21\n22\n");
    assertEquals(snapshot(), [["1", [10]], ["2", [20, 21, 22]]]);
    put(`${scope}/job_2/step_0/user/task_0/cgroup.procs`, "23\n");
    Deno.removeSync(`${scope}/job_1`, { recursive: true });
    assertEquals(snapshot(), [["2", [20, 23]]]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
