// Tests of libvirt domain handling: persistent and runtime (`<domstatus>`) XML, GPU shares, and the
// per-instance cache that keeps a VM's UUID after its runtime XML file is gone.

import {
  domainCacheTtlMs,
  domainGpuShares,
  LibvirtDomains,
  parseDomainXml,
} from "../../../collectors/libvirt/domains.ts";
import type { GpuDevice } from "../../../collectors/gpu/devices.ts";
import type { Unit } from "../../../collectors/units/discovery.ts";
import { Logger } from "../../../common/log.ts";
import { InlineSecurityManager } from "../../../privilege/security.ts";
import { assertEquals, assertRejects, assertThrows } from "../../helpers/assert.ts";
import { put } from "../unit_helpers.ts";
import { domainXml, domstatusXml } from "./fixtures.ts";

Deno.test("parseDomainXml reads uuid, PCI passthrough bus ids and mdev uuids; bad XML throws", () => {
  const d = parseDomainXml(domainXml("u-1"));
  assertEquals(d, { uuid: "u-1", pci: ["0000:15:00.0"], mdevs: ["aa-bb"] });
  assertThrows(() => parseDomainXml("<domain><uuid>x</uuid>"), /not closed/);
});

Deno.test("parseDomainXml reads the live domain of a runtime <domstatus> file, not the daemon's own <devices>", () => {
  const d = parseDomainXml(domstatusXml("5c1e3e1a-0000-4000-8000-000000000001", "instance-00000007"));
  assertEquals(d, { uuid: "5c1e3e1a-0000-4000-8000-000000000001", pci: ["0000:21:00.0"], mdevs: [] });
  assertThrows(
    () => parseDomainXml("<domstatus state='running'><monitor path='x'/></domstatus>"),
    /<domstatus> without <domain>/,
  );
});

Deno.test("domainGpuShares: passthrough whole, vGPU split among the vGPUs of its GPU or MIG instance", () => {
  const dev = (index: string, busId: string, instanceId = "", fraction = 1): GpuDevice => ({
    index,
    minor: index,
    uuid: `GPU-${index}`,
    busId,
    instanceId,
    fraction,
    smCount: 0,
  });
  const devices = [dev("0", "0000:15:00.0"), dev("1", "0000:21:00.0", "5", 0.2)];
  const vgpus = [
    { busId: "0000:21:00.0", mdevUuid: "aa-bb", instanceId: "5" },
    { busId: "0000:21:00.0", mdevUuid: "cc", instanceId: "5" },
  ];
  const shares = domainGpuShares({ uuid: "u", pci: ["0000:15:00.0"], mdevs: ["aa-bb"] }, devices, vgpus);
  assertEquals(shares.map((s) => [s.index, s.instanceId, s.value]), [["0", "", 1], ["1", "5", 0.1]]);
});

const unit = (inst: string): Unit => ({ uuid: inst, cgroupHost: "", rel: `/machine/qemu-1-${inst}`, pids: [1] });

Deno.test("LibvirtDomains: persistent XML first, runtime XML next; a UUID stays cached when its XML goes", async () => {
  const root = Deno.makeTempDirSync({ prefix: "ceems-libvirt-domains-" });
  try {
    const [etc, run] = [`${root}/etc`, `${root}/run`];
    Deno.mkdirSync(etc);
    put(`${etc}/instance-00000001.xml`, domainXml("uuid-persistent"));
    put(`${run}/instance-00000001.xml`, domstatusXml("uuid-runtime-shadowed", "instance-00000001"));
    put(`${run}/instance-00000002.xml`, domstatusXml("uuid-runtime-only", "instance-00000002"));
    let now = 1_000_000;
    const domains = new LibvirtDomains({
      dirs: [etc, run],
      gpuType: "nogpu",
      logger: new Logger("error", "logfmt", {}, () => {}),
      security: new InlineSecurityManager(),
      gpu: { type: "", nvidiaSmi: "", rocmSmi: "", amdSmi: "" },
      now: () => now,
    });
    const units = [unit("instance-00000001"), unit("instance-00000002"), unit("instance-00000003")];
    const uuids = async () => (await domains.resolve(units)).map((u) => u.uuid);
    assertEquals(await uuids(), ["uuid-persistent", "uuid-runtime-only", "instance-00000003"]);
    await assertRejects(() => domains.check(), /instance-00000003\.xml/);

    // The runtime file disappears (VM shutting down, OpenStack cleaning up) and the cache expires: the
    // VM keeps its UUID, and the scrape does not fail for it.
    Deno.removeSync(`${run}/instance-00000002.xml`);
    now += domainCacheTtlMs + 1;
    assertEquals(await uuids(), ["uuid-persistent", "uuid-runtime-only", "instance-00000003"]);
    put(`${run}/instance-00000003.xml`, domstatusXml("uuid-late", "instance-00000003"));
    assertEquals(await uuids(), ["uuid-persistent", "uuid-runtime-only", "uuid-late"]);
    await domains.check();

    // An instance that is gone is forgotten: a new VM reusing the name is read afresh.
    assertEquals((await domains.resolve([unit("instance-00000001")])).map((u) => u.uuid), ["uuid-persistent"]);
    put(`${run}/instance-00000002.xml`, domstatusXml("uuid-new-vm", "instance-00000002"));
    assertEquals((await domains.resolve([unit("instance-00000002")])).map((u) => u.uuid), ["uuid-new-vm"]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
