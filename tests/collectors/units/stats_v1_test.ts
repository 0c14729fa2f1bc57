// Fixture tests of the cgroup v1 reader against CEEMS 0.10's values for unlimited limits and missing
// files (memory, memsw, cpuacct, cpuset and shares, blkio CFQ and throttle files, RDMA).

import { readStatsV1 } from "../../../collectors/units/stats_v1.ts";
import { type HostFacts, maxUint32, maxUint64, type UnitStats } from "../../../collectors/units/stats.ts";
import type { Manager } from "../../../collectors/units/discovery.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { put } from "../unit_helpers.ts";

const rel = "/slurm/uid_1000/job_7";
/** The kernel's "no limit" in v1: PAGE_COUNTER_MAX pages (not MaxUint64). */
const v1Unlimited = "9223372036854771712";

/** Writes `files` (controller-relative path → content, e.g. `memory/memory.stat`) and reads the unit. */
function read(
  files: Record<string, string>,
  host: Partial<HostFacts> = {},
  opts = { swap: true, psi: false, blkio: true },
  manager: Manager = "slurm",
  active = "cpuacct",
): UnitStats {
  const root = Deno.makeTempDirSync({ prefix: "ceems-statsv1-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      const i = name.indexOf("/");
      put(`${root}/${name.slice(0, i)}${rel}/${name.slice(i + 1)}`, text);
    }
    const h: HostFacts = { memTotal: 1 << 30, swapTotal: 0, blockDevices: new Map(), ...host };
    return readStatsV1({ cgroupfs: root, hierarchy: `${root}/${active}`, rel }, manager, opts, h);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
}

/** A complete v1 memory cgroup with the given limits. */
function memory(limit: string, memswLimit?: string): Record<string, string> {
  const files: Record<string, string> = {
    "memory/memory.stat": "cache 1\nrss 2\ntotal_cache 300\ntotal_rss 400\n",
    "memory/memory.usage_in_bytes": "1000\n",
    "memory/memory.failcnt": "3\n",
    "memory/memory.limit_in_bytes": `${limit}\n`,
  };
  if (memswLimit !== undefined) {
    files["memory/memory.memsw.usage_in_bytes"] = "1500\n";
    files["memory/memory.memsw.failcnt"] = "4\n";
    files["memory/memory.memsw.limit_in_bytes"] = `${memswLimit}\n`;
  }
  return files;
}

Deno.test("v1 memory limit: the kernel's unlimited value is reported as is, MaxUint64 → MemTotal, max → 0", () => {
  const memTotal = 5 * 2 ** 30;
  assertEquals(read(memory(v1Unlimited), { memTotal }).memoryTotal, Number(v1Unlimited));
  assertEquals(read(memory("18446744073709551615"), { memTotal }).memoryTotal, memTotal);
  assertEquals(read(memory("18446744073709551615"), { memTotal: 0 }).memoryTotal, maxUint64);
  assertEquals(read(memory("max"), { memTotal }).memoryTotal, 0);
  assertEquals(read(memory("-1"), { memTotal }).memoryTotal, 0);
  const s = read(memory("2048"));
  assertEquals([s.memoryTotal, s.memoryUsed, s.memoryFailCount, s.memoryRss, s.memoryCache], [2048, 1000, 3, 400, 300]);
});

Deno.test("v1 missing memory files: the first missing one zeroes it and every later one; no memory.stat, no memory", () => {
  const noLimit = memory("2048");
  delete noLimit["memory/memory.limit_in_bytes"];
  let s = read(noLimit);
  assertEquals([s.memoryUsed, s.memoryFailCount, s.memoryTotal], [1000, 3, 0]);
  const noFailcnt = memory("2048");
  delete noFailcnt["memory/memory.failcnt"];
  s = read(noFailcnt);
  assertEquals([s.memoryUsed, s.memoryFailCount, s.memoryTotal], [1000, 0, 0]);
  const noUsage = memory("2048", "4096");
  delete noUsage["memory/memory.usage_in_bytes"];
  s = read(noUsage);
  assertEquals([s.memoryUsed, s.memoryTotal, s.memswUsed, s.memswTotal, s.memoryRss], [0, 0, 0, 0, 400]);
  const noStat = memory("2048", "4096");
  delete noStat["memory/memory.stat"];
  s = read(noStat);
  assertEquals([s.memoryUsed, s.memoryTotal, s.memoryRss, s.memswUsed, s.memswTotal], [0, 0, 0, 0, 0]);
  s = read({ "memory/memory.stat": "cache 5\n", "memory/memory.usage_in_bytes": "1\n" });
  assertEquals([s.memoryRss, s.memoryCache], [0, 0]);
});

Deno.test("v1 memsw: absent without swap accounting → 0; MaxUint64 → SwapTotal, MemTotal, MaxUint64; max → 0", () => {
  const [memTotal, swapTotal] = [5 * 2 ** 30, 2 * 2 ** 30];
  const off = read(memory("2048"), { memTotal, swapTotal });
  assertEquals([off.memswUsed, off.memswTotal, off.memswFailCount], [0, 0, 0]);
  const max = "18446744073709551615";
  assertEquals(read(memory("2048", max), { memTotal, swapTotal }).memswTotal, swapTotal);
  assertEquals(read(memory("2048", max), { memTotal, swapTotal: 0 }).memswTotal, memTotal);
  assertEquals(read(memory("2048", max), { memTotal: 0, swapTotal: 0 }).memswTotal, maxUint64);
  assertEquals(read(memory("2048", v1Unlimited)).memswTotal, Number(v1Unlimited));
  assertEquals(read(memory("2048", "max")).memswTotal, 0);
  const on = read(memory("2048", "8192"));
  assertEquals([on.memswUsed, on.memswTotal, on.memswFailCount], [1500, 8192, 4]);
});

Deno.test("v1 CPU: cpuacct.stat missing → 0; cpuset missing → 0; k8s shares clamped, read from the active hierarchy", () => {
  const none = read({});
  assertEquals([none.cpuUser, none.cpuSystem, none.cpus], [0, 0, 0]);
  const s = read({ "cpuacct/cpuacct.stat": "user 250\nsystem 50\n", "cpuset/cpuset.cpus": "0-1,4\n" });
  assertEquals([s.cpuUser, s.cpuSystem, s.cpus], [2.5, 0.5, 3]);
  assertEquals(read({ "cpuacct/cpu.shares": "1\n" }, {}, undefined, "k8s").cpus, 0.001);
  assertEquals(read({ "cpuacct/cpu.shares": "300000\n" }, {}, undefined, "k8s").cpus, 256);
  // Active subsystem memory: CEEMS reads memory/<pod>/cpu.shares, which does not exist.
  assertEquals(read({ "cpuacct/cpu.shares": "2048\n" }, {}, undefined, "k8s", "memory").cpus, 0);
});

Deno.test("v1 libvirt CPUs are the VM's vcpu* cgroups in the walked hierarchy", () => {
  const s = read(
    { "cpuacct/vcpu0/tasks": "", "cpuacct/vcpu1/tasks": "", "cpuacct/emulator/tasks": "" },
    {},
    undefined,
    "libvirt",
  );
  assertEquals(s.cpus, 2);
});

Deno.test('v1 blkio: throttle files; unknown device as ""; no io_serviced → none; CFQ recursive files first', () => {
  const host = { blockDevices: new Map([["8:0", "sda"], ["8:16", "sdb"]]) };
  const throttle = {
    "blkio/blkio.throttle.io_service_bytes": "8:0 Read 100\n8:0 Write 200\n8:0 Sync 1\n9:9 Read 7\n9:9 Write 8\n" +
      "8:16 Write 5\nTotal 300\n",
    "blkio/blkio.throttle.io_serviced": "8:0 Read 1\n8:0 Write 2\n9:9 Read 3\n9:9 Write 4\nTotal 3\n",
  };
  // sdb (8:16) has no Read line: CEEMS emits per device of the read-bytes map, so it is left out.
  assertEquals(read(throttle, host).blkio, new Map([["sda", [100, 200, 1, 2]], ["", [7, 8, 3, 4]]]));
  const noServiced = { ...throttle } as Record<string, string>;
  delete noServiced["blkio/blkio.throttle.io_serviced"];
  assertEquals(read(noServiced, host).blkio.size, 0);
  const cfq = {
    ...throttle,
    "blkio/blkio.io_service_bytes_recursive": "8:0 Read 1000\n8:0 Write 2000\nTotal 3000\n",
    "blkio/blkio.io_serviced_recursive": "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
  };
  assertEquals(read(cfq, host).blkio, new Map([["sda", [1000, 2000, 10, 20]]]));
  const cfqIdle = {
    ...throttle,
    "blkio/blkio.io_service_bytes_recursive": "Total 0\n",
    "blkio/blkio.io_serviced_recursive": "Total 0\n",
  };
  assertEquals(read(cfqIdle, host).blkio.get("sda"), [100, 200, 1, 2]);
});

Deno.test("v1 rdma.current: `max` handles as MaxUint32; missing → none", () => {
  const s = read({
    "rdma/rdma.current": "hfi1_0 hca_handle=479 hca_object=340\nhfi1_1 hca_handle=max hca_object=max\n",
  });
  assertEquals(s.rdmaHandles, new Map([["hfi1_0", 479], ["hfi1_1", maxUint32]]));
  assertEquals(read({}).rdmaHandles.size, 0);
});
