// Fixture tests of the cgroup v2 reader against CEEMS 0.10's values for `max` limits and missing files
// (memory, swap, CPU time and count, block IO, RDMA), one small tree per case.

import { readStatsV2 } from "../../../collectors/units/stats_v2.ts";
import { type HostFacts, maxUint32, maxUint64, type UnitStats } from "../../../collectors/units/stats.ts";
import type { Manager } from "../../../collectors/units/discovery.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { put } from "../unit_helpers.ts";

const all = { swap: true, psi: true, blkio: true };
const unit = "/system.slice/slurmstepd.scope/job_1";

/** Writes `files` (name → content) into a fresh unit cgroup and reads it. */
function read(
  files: Record<string, string>,
  host: Partial<HostFacts> = {},
  manager: Manager = "slurm",
  rel = unit,
): UnitStats {
  const root = Deno.makeTempDirSync({ prefix: "ceems-statsv2-" });
  try {
    Deno.mkdirSync(`${root}${rel}`, { recursive: true });
    for (const [name, text] of Object.entries(files)) put(`${root}${rel}/${name}`, text);
    const h: HostFacts = { memTotal: 1 << 30, swapTotal: 0, blockDevices: new Map(), ...host };
    return readStatsV2({ cgroupfs: root, hierarchy: root, rel }, manager, all, h);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
}

Deno.test("v2 memory.max: max → host MemTotal (MaxUint64 when unknown), missing or negative → 0", () => {
  const memTotal = 3 * 2 ** 30;
  assertEquals(read({ "memory.max": "max\n" }, { memTotal }).memoryTotal, memTotal);
  assertEquals(read({ "memory.max": "max\n" }, { memTotal: 0 }).memoryTotal, maxUint64);
  assertEquals(read({ "memory.max": "18446744073709551615\n" }, { memTotal }).memoryTotal, memTotal);
  assertEquals(read({ "memory.max": "4294967296\n" }, { memTotal }).memoryTotal, 4294967296);
  assertEquals(read({}, { memTotal }).memoryTotal, 0);
  assertEquals(read({ "memory.max": "-1\n" }, { memTotal }).memoryTotal, 0);
});

Deno.test("v2 memory.swap.max: max → SwapTotal, else MemTotal on a host without swap, else MaxUint64", () => {
  const [memTotal, swapTotal] = [3 * 2 ** 30, 1 << 30];
  assertEquals(read({ "memory.swap.max": "max\n" }, { memTotal, swapTotal }).memswTotal, swapTotal);
  // The held-back CEEMS scenario: swap accounting on, unlimited swap, a host without swap.
  assertEquals(read({ "memory.swap.max": "max\n" }, { memTotal, swapTotal: 0 }).memswTotal, memTotal);
  assertEquals(read({ "memory.swap.max": "max\n" }, { memTotal: 0, swapTotal: 0 }).memswTotal, maxUint64);
  assertEquals(read({ "memory.swap.max": "8192\n" }, { memTotal, swapTotal }).memswTotal, 8192);
  const none = read({}, { memTotal, swapTotal });
  assertEquals([none.memswTotal, none.memswUsed], [0, 0]);
});

Deno.test("v2 swap fail count is always 0 (CEEMS does not read memory.swap.events)", () => {
  const s = read({ "memory.swap.events": "high 0\nmax 3\nfail 7\n", "memory.swap.current": "4096\n" });
  assertEquals([s.memswFailCount, s.memswUsed], [0, 4096]);
});

Deno.test("v2 missing files and keys read as 0: cpu.stat, memory.current/stat/events, pressure", () => {
  const empty = read({});
  assertEquals(
    [empty.cpuUser, empty.cpuSystem, empty.memoryUsed, empty.memoryRss, empty.memoryCache, empty.memoryFailCount],
    [0, 0, 0, 0, 0, 0],
  );
  assertEquals([empty.cpuPsi, empty.memoryPsi, empty.blkio.size, empty.rdmaHandles.size], [0, 0, 0, 0]);
  const partial = read({
    "cpu.stat": "usage_usec 9\nsystem_usec 2000000\n",
    "memory.stat": "file 512\n",
    "memory.events": "low 0\nhigh 0\n",
  });
  assertEquals([partial.cpuUser, partial.cpuSystem], [0, 2]);
  assertEquals([partial.memoryRss, partial.memoryCache, partial.memoryFailCount], [0, 512, 0]);
});

Deno.test("v2 CPU count: SLURM only from cpuset.cpus.effective, k8s from cpu.weight, libvirt from vcpu cgroups", () => {
  assertEquals(read({ "cpuset.cpus.effective": "0-3\n" }).cpus, 4);
  assertEquals(read({ "cpuset.cpus": "0-3\n" }).cpus, 0);
  assertEquals(read({ "cpu.weight": "10000\n" }, {}, "k8s").cpus, 256);
  assertEquals(read({}, {}, "k8s").cpus, 0);
  const vm = "/machine.slice/machine-qemu\\x2d1\\x2dinstance\\x2d00000001.scope";
  const vcpus = { "libvirt/vcpu0/cgroup.procs": "", "libvirt/vcpu1/cgroup.procs": "", "libvirt/emulator/x": "" };
  assertEquals(read({ ...vcpus, "cpuset.cpus.effective": "0-7\n" }, {}, "libvirt", vm).cpus, 2);
  assertEquals(read({ "cpuset.cpus.effective": "0-7\n" }, {}, "libvirt", vm).cpus, 0);
  const flat = "/machine/qemu-1-instance-00000001.libvirt-qemu";
  assertEquals(read({ "vcpu0/x": "", "vcpu1/x": "", "vcpu2/x": "" }, {}, "libvirt", flat).cpus, 3);
});

Deno.test('v2 io.stat: a device missing from diskstats is reported as device=""', () => {
  const s = read({ "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n253:7 rbytes=5 wbytes=6 rios=7 wios=8\n" }, {
    blockDevices: new Map([["8:0", "sda"]]),
  });
  assertEquals(s.blkio, new Map([["sda", [10, 20, 1, 2]], ["", [5, 6, 7, 8]]]));
});

Deno.test("v2 rdma.current: read for every manager, `max` handles as MaxUint32", () => {
  for (const m of ["slurm", "k8s"] as const) {
    const s = read(
      { "rdma.current": "mlx5_0 hca_handle=3 hca_object=9\nmlx5_1 hca_handle=max hca_object=max\n" },
      {},
      m,
    );
    assertEquals(s.rdmaHandles, new Map([["mlx5_0", 3], ["mlx5_1", maxUint32]]));
  }
});
