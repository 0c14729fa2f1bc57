// Tests of the libvirt collector: cgroup v2 VMs with swap/PSI/blkio (a held-back CEEMS combination), the
// non-systemd `machine/` layout, VMs known only from runtime XML, and domain XML that does not parse.

import { join } from "node:path";
import { parseDomainXml } from "../../collectors/libvirt/domains.ts";
import { InlineSecurityManager, type SecurityContext } from "../../privilege/security.ts";
import type { OpResult, PrivilegedOp } from "../../privilege/ops.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { byUuid, fixturePaths, put, scrapeInProcess, withCeemsFixtures } from "./unit_helpers.ts";
import { domainXml, domstatusXml } from "./libvirt/fixtures.ts";

/** Records security contexts. */
class RecordingSecurity extends InlineSecurityManager {
  readonly contexts: SecurityContext[] = [];
  #inner = new InlineSecurityManager();
  override run(ctx: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    this.contexts.push(ctx);
    return this.#inner.run(ctx, ops);
  }
}

Deno.test({
  name: "libvirt on cgroups v2 with swap, PSI and blkio (held-back combination); XML read with cap_dac_read_search",
  sanitizeResources: false,
  async fn() {
    const ran = await withCeemsFixtures(async ({ dir, bin, e2e }) => {
      const sec = new RecordingSecurity();
      const s = await scrapeInProcess([
        ...fixturePaths(dir),
        "--collector.cgroups.force-version=v2",
        "--collector.libvirt",
        `--collector.libvirt.xml-dir=${join(e2e, "qemu")}`,
        "--collector.libvirt.swap-memory-metrics",
        "--collector.libvirt.psi-metrics",
        "--collector.libvirt.blkio-metrics",
        "--collector.gpu.type=nvidia",
        `--collector.gpu.nvidia-smi-path=${bin}/nvidia-smi`,
      ], { security: sec });
      assertEquals(s.success("libvirt"), 1);
      assert(sec.contexts.some((c) => c.name === "libvirt" && c.caps.includes("cap_dac_read_search")));
      const scopes = [...Deno.readDirSync(`${dir}/sys/fs/cgroup/machine.slice`)].filter((e) =>
        e.name.endsWith(".scope")
      );
      assertEquals(s.series.get(`ceems_compute_units{hostname="",manager="libvirt"}`), scopes.length);
      for (const sc of scopes) {
        const inst = /instance\\x2d([0-9a-f]+)/.exec(sc.name)![1];
        const uuid = parseDomainXml(Deno.readTextFileSync(`${e2e}/qemu/instance-${inst}.xml`)).uuid;
        const cg = `${dir}/sys/fs/cgroup/machine.slice/${sc.name}`;
        const num = (f: string) => Number(Deno.readTextFileSync(`${cg}/${f}`).trim());
        assertEquals(byUuid(s, "ceems_compute_unit_memory_used_bytes").get(uuid), num("memory.current"), uuid);
        assertEquals(byUuid(s, "ceems_compute_unit_memsw_used_bytes").get(uuid), num("memory.swap.current"));
        assert(byUuid(s, "ceems_compute_unit_cpu_psi_seconds").has(uuid));
        assert(byUuid(s, "ceems_compute_unit_memory_psi_seconds").has(uuid));
        const io = /^8:0 rbytes=(\d+) wbytes=(\d+) rios=(\d+) wios=(\d+)/m.exec(
          Deno.readTextFileSync(`${cg}/io.stat`),
        )!;
        const rb = s.sink.families.get("ceems_compute_unit_blkio_read_total_bytes")!.samples.find((x) =>
          x.labels.uuid === uuid
        )!;
        assertEquals([rb.labels.device, rb.value], ["sdc", Number(io[1])]);
        // CEEMS 0.10 counts a VM's vcpu* cgroups (under libvirt/ in the systemd layout), not its cpuset.
        const vcpus = [...Deno.readDirSync(`${cg}/libvirt`)].filter((e) => e.name.startsWith("vcpu")).length;
        assert(vcpus > 0);
        assertEquals(byUuid(s, "ceems_compute_unit_cpus").get(uuid), vcpus);
      }
      // GPU shares are the same as in the v1 libvirt scenario (same domains and tools).
      const v1 = Deno.readTextFileSync(join(e2e, "expected", "cgroupsv1-libvirt-output.txt"));
      const flags = (v1.match(/^ceems_compute_unit_gpu_index_flag\{.*$/gm) ?? []).length;
      assertEquals(s.sink.families.get("ceems_compute_unit_gpu_index_flag")!.samples.length, flags);
    });
    if (!ran) console.warn("CEEMS fixtures absent: libvirt v2 fixture test skipped");
  },
});

/** Flags of a synthetic v2 node under `root`: persistent XML in root/<xmlDir>, runtime XML in root/run. */
const synthVmFlags = (root: string, xmlDir: string) => [
  "--collector.libvirt",
  "--collector.cgroups.force-version=v2",
  "--collector.gpu.type=nogpu",
  `--collector.libvirt.xml-dir=${root}/${xmlDir}`,
  `--collector.libvirt.runtime-xml-dir=${root}/run`,
  `--path.cgroupfs=${root}/cg`,
  `--path.procfs=${root}/proc`,
];

Deno.test("libvirt: non-systemd machine/ layout; domain XML that does not parse fails the scrape, VMs kept", async () => {
  const root = Deno.makeTempDirSync({ prefix: "ceems-libvirt-test-" });
  try {
    put(`${root}/proc/meminfo`, "MemTotal: 100 kB\n");
    for (const [n, inst] of [["1", "instance-00000001"], ["2", "instance-00000002"]]) {
      const d = `${root}/cg/machine/qemu-${n}-${inst}.libvirt-qemu`;
      put(`${d}/cpu.stat`, "usage_usec 3\nuser_usec 2000000\nsystem_usec 1\n");
      put(`${d}/memory.current`, "77\n");
      put(`${d}/cgroup.procs`, "");
      put(`${d}/libvirt/vcpu0/cgroup.procs`, "99\n");
    }
    put(`${root}/xml/instance-00000001.xml`, domainXml("11111111-aaaa"));
    put(`${root}/xml/instance-00000002.xml`, "<domain><uuid>oops</domain>");
    const s = await scrapeInProcess(synthVmFlags(root, "xml"));
    assertEquals(s.success("libvirt"), 0);
    assertEquals(byUuid(s, "ceems_compute_unit_cpu_user_seconds_total").get("11111111-aaaa"), 2);
    assertEquals(byUuid(s, "ceems_compute_unit_memory_used_bytes").get("instance-00000002"), 77);
    const errors = s.logs.filter((l) => l.includes("level=error"));
    assertEquals(errors.length, 1);
    assert(errors[0].includes("instance-00000002.xml"), errors[0]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("libvirt: a VM whose domain XML exists only as runtime <domstatus> (OpenStack) gets its UUID", async () => {
  const root = Deno.makeTempDirSync({ prefix: "ceems-libvirt-test-" });
  try {
    put(`${root}/proc/meminfo`, "MemTotal: 100 kB\n");
    const scope = `${root}/cg/machine.slice/machine-qemu\\x2d4\\x2dinstance\\x2d0000004f.scope`;
    put(`${scope}/cpu.stat`, "usage_usec 3\nuser_usec 3000000\nsystem_usec 1\n");
    put(`${scope}/cgroup.procs`, "");
    put(`${scope}/libvirt/vcpu0/cgroup.procs`, "99\n");
    put(`${scope}/libvirt/vcpu1/cgroup.procs`, "98\n");
    Deno.mkdirSync(`${root}/etc`); // /etc/libvirt/qemu exists but holds no file for this instance
    put(`${root}/run/instance-0000004f.xml`, domstatusXml("9d7a3b51-6f2e-4c1a-b0a4-0e4f5d6c7b8a", "instance-0000004f"));
    const s = await scrapeInProcess(synthVmFlags(root, "etc"));
    assertEquals(s.success("libvirt"), 1, s.logs.join("\n"));
    const uuid = "9d7a3b51-6f2e-4c1a-b0a4-0e4f5d6c7b8a";
    assertEquals(byUuid(s, "ceems_compute_unit_cpu_user_seconds_total").get(uuid), 3);
    assertEquals(byUuid(s, "ceems_compute_unit_cpus").get(uuid), 2);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
