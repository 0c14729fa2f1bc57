// Tests of the native IPMI path: device discovery, the device opened through a cap_dac_override security
// context and used through the returned fd, errors, reopening, and serialised concurrent reads.

import {
  closeNativeDcmiReaders,
  findIpmiDevice,
  ipmiDevicePaths,
  NativeDcmiReader,
  nativeIpmiContext,
} from "../../../collectors/ipmi/native.ts";
import {
  InlineSecurityManager,
  type OpResult,
  type PrivilegedOp,
  type SecurityContext,
} from "../../../privilege/security.ts";
import { fakeIpmi, recorded } from "../../fakes/ipmi.ts";
import { assertEquals, assertRejects } from "../../helpers/assert.ts";

/** A security manager that records what it is asked and answers openFd with the given results. */
class RecordingSecurity extends InlineSecurityManager {
  calls: { context: SecurityContext; ops: PrivilegedOp[] }[] = [];
  constructor(private readonly answers: OpResult[]) {
    super();
  }
  override run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    this.calls.push({ context, ops });
    return Promise.resolve([this.answers.shift() ?? { ok: false, error: "no more answers" }]);
  }
}

Deno.test("findIpmiDevice tries /dev/ipmiN, /dev/ipmi/N, /dev/ipmidev/N in CEEMS's order", () => {
  assertEquals(ipmiDevicePaths(1), ["/dev/ipmi1", "/dev/ipmi/1", "/dev/ipmidev/1"]);
  assertEquals(findIpmiDevice(0, (p) => p === "/dev/ipmidev/0"), "/dev/ipmidev/0");
  assertEquals(findIpmiDevice(0, (p) => p !== "/nothing" && p.startsWith("/dev/ipmi/")), "/dev/ipmi/0");
  assertEquals(findIpmiDevice(2, () => false), undefined);
});

Deno.test("native reader opens the device read-write in the cap_dac_override context once, then reads via the fd", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib, log } = fakeIpmi(dir, "normal", recorded.w405);
  const sec = new RecordingSecurity([{ ok: true, value: 11 }]);
  const r = new NativeDcmiReader("/dev/ipmi0", sec, lib);
  try {
    // Concurrent scrapes share the device; requests are serialised, each gets its own response.
    const [a, b] = await Promise.all([r.read(1000), r.read(1000)]);
    assertEquals([a.currentWatts, b.currentWatts], [405, 405]);
    assertEquals(sec.calls, [{
      context: nativeIpmiContext,
      ops: [{ kind: "openFd", path: "/dev/ipmi0", write: true }],
    }]);
    assertEquals(nativeIpmiContext.caps, ["cap_dac_override"]);
  } finally {
    r.close();
  }
  const lines = Deno.readTextFileSync(log).trim().split("\n");
  assertEquals(lines.map((l) => l.replace(/ data=.*/, "")), [
    "send addr_type=0c channel=0f lun=0 netfn=2c cmd=02 msgid=1",
    "send addr_type=0c channel=0f lun=0 netfn=2c cmd=02 msgid=2",
    "close 11",
  ]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("native reader: a refused open is a clear error and is retried on the next read", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeIpmi(dir, "normal");
  const sec = new RecordingSecurity([
    { ok: false, error: "EACCES: permission denied", code: "EACCES" },
    { ok: true, value: "not an fd" },
    { ok: true, value: 12 },
  ]);
  const r = new NativeDcmiReader("/dev/ipmi0", sec, lib);
  try {
    await assertRejects(() => r.read(500), /open \/dev\/ipmi0: EACCES: permission denied/);
    await assertRejects(() => r.read(500), /security context returned no descriptor/);
    assertEquals((await r.read(500)).avgWatts, 312);
    assertEquals(sec.calls.length, 3);
  } finally {
    r.close();
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("native reader: a BMC that never answers fails the read within the timeout and keeps the fd", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeIpmi(dir, "silent");
  const sec = new RecordingSecurity([{ ok: true, value: 13 }]);
  const r = new NativeDcmiReader("/dev/ipmi0", sec, lib);
  try {
    await assertRejects(() => r.read(100), /no response from the BMC: timed out after 100 ms/);
    fakeIpmi(dir, "normal");
    assertEquals((await r.read(500)).currentWatts, 312);
    assertEquals(sec.calls.length, 1);
  } finally {
    r.close();
    closeNativeDcmiReaders();
  }
  Deno.removeSync(dir, { recursive: true });
});
