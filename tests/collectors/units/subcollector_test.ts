// Tests of the sub-collector helpers: mountinfo parsing (escapes, optional fields) and the cgroup
// hierarchy of a unit's directory on hybrid and pure cgroup v2 hosts.

import { cgroupHierarchyOf, parseMountInfo } from "../../../collectors/units/subcollector.ts";
import { assertEquals } from "../../helpers/assert.ts";

const mountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
40 22 0:40 / /mnt/my\\040data rw - nfs4 srv:/x rw
`;

Deno.test("parseMountInfo reads ids, mount points (octal escapes), fs types and super options", () => {
  const m = parseMountInfo(mountinfo);
  assertEquals(m.length, 5);
  assertEquals(m[0], { id: 22, mountPoint: "/", fsType: "ext4", superOptions: ["rw"] });
  assertEquals(m[4].mountPoint, "/mnt/my data");
  assertEquals(m[3].superOptions, ["rw", "cpu", "cpuacct"]);
});

Deno.test("cgroupHierarchyOf finds v2, v1 controllers, or nothing", () => {
  const m = parseMountInfo(mountinfo);
  assertEquals(cgroupHierarchyOf("/sys/fs/cgroup/unified/system.slice/job_1", m), { version: 2 });
  assertEquals(cgroupHierarchyOf("/sys/fs/cgroup/memory/slurm/uid_0/job_1", m), {
    version: 1,
    controllers: ["memory"],
  });
  assertEquals(cgroupHierarchyOf("/sys/fs/cgroup/cpu,cpuacct/slurm", m), {
    version: 1,
    controllers: ["cpu", "cpuacct"],
  });
  assertEquals(cgroupHierarchyOf("/sys/fs/cgroup/unifiedX/a", m), undefined);
  assertEquals(cgroupHierarchyOf("/tmp/a", m), undefined);
});
