// Tests of the OpenIPMI transport: struct layouts and ioctl numbers checked against the kernel header,
// DCMI decoding of recorded BMC responses, and the request/response exchange with a fake device driver.

import {
  dcmiGetPowerReading,
  decodeDcmiPowerReading,
  decodeRecv,
  encodeReq,
  encodeSystemInterfaceAddr,
  IPMICTL_RECEIVE_MSG_TRUNC,
  IPMICTL_SEND_COMMAND,
  IpmiDevice,
  layout,
  openIpmiDeviceFd,
} from "../../ffi/ipmi.ts";
import { ErrnoError } from "../../ffi/libc.ts";
import { fakeIpmi, hex, recorded } from "../fakes/ipmi.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";

Deno.test("struct layouts and ioctl numbers match linux/ipmi.h as compiled by gcc on this machine", () => {
  const dir = Deno.makeTempDirSync();
  const src = `#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/ipmi.h>
#define O(t, f) printf(#t "." #f "=%zu\\n", offsetof(struct t, f))
int main(void) {
  printf("send=%lu\\nrecvtrunc=%lu\\n", (unsigned long)IPMICTL_SEND_COMMAND, (unsigned long)IPMICTL_RECEIVE_MSG_TRUNC);
  printf("sysAddr.size=%zu\\nmsg.size=%zu\\nreq.size=%zu\\nrecv.size=%zu\\n", sizeof(struct ipmi_system_interface_addr),
         sizeof(struct ipmi_msg), sizeof(struct ipmi_req), sizeof(struct ipmi_recv));
  O(ipmi_system_interface_addr, addr_type); O(ipmi_system_interface_addr, channel); O(ipmi_system_interface_addr, lun);
  O(ipmi_msg, netfn); O(ipmi_msg, cmd); O(ipmi_msg, data_len); O(ipmi_msg, data);
  O(ipmi_req, addr); O(ipmi_req, addr_len); O(ipmi_req, msgid); O(ipmi_req, msg);
  O(ipmi_recv, recv_type); O(ipmi_recv, addr); O(ipmi_recv, addr_len); O(ipmi_recv, msgid); O(ipmi_recv, msg);
  return 0;
}`;
  Deno.writeTextFileSync(`${dir}/l.c`, src);
  const cc = new Deno.Command("gcc", { args: ["-o", `${dir}/l`, `${dir}/l.c`], stderr: "piped" }).outputSync();
  assertEquals(cc.code, 0, new TextDecoder().decode(cc.stderr));
  const out = new TextDecoder().decode(new Deno.Command(`${dir}/l`).outputSync().stdout);
  Deno.removeSync(dir, { recursive: true });
  const c = Object.fromEntries(out.trim().split("\n").map((l) => l.split("=")).map(([k, v]) => [k, Number(v)]));
  assertEquals(c.send, IPMICTL_SEND_COMMAND);
  assertEquals(c.recvtrunc, IPMICTL_RECEIVE_MSG_TRUNC);
  const mine: Record<string, number> = {};
  const names: Record<string, string> = {
    sysAddr: "ipmi_system_interface_addr",
    msg: "ipmi_msg",
    req: "ipmi_req",
    recv: "ipmi_recv",
  };
  const cNames: Record<string, string> = {
    addrType: "addr_type",
    dataLen: "data_len",
    addrLen: "addr_len",
    recvType: "recv_type",
  };
  for (const [s, fields] of Object.entries(layout)) {
    for (const [f, v] of Object.entries(fields)) {
      mine[f === "size" ? `${s}.size` : `${names[s]}.${cNames[f] ?? f}`] = v;
    }
  }
  for (const [k, v] of Object.entries(mine)) assertEquals([k, c[k]], [k, v]);
});

Deno.test("encoders write the kernel's byte layout", () => {
  assertEquals([...encodeSystemInterfaceAddr()], [0x0c, 0, 0, 0, 0x0f, 0, 0, 0]);
  const req = encodeReq({
    addrPtr: 0x1122334455667788n,
    addrLen: 8,
    msgid: 7n,
    netfn: 0x2c,
    cmd: 0x02,
    dataPtr: 0x0102030405060708n,
    dataLen: 4,
  });
  assertEquals(
    [...req].map((b) => b.toString(16).padStart(2, "0")).join(""),
    "8877665544332211" + "0800000000000000" + "0700000000000000" + "2c020400" + "00000000" + "0807060504030201",
  );
  const recv = new Uint8Array(48);
  recv.set([1, 0, 0, 0], 0);
  recv.set([8, 0, 0, 0], 16);
  recv.set([9, 0, 0, 0, 0, 0, 0, 0], 24);
  recv.set([0x2d, 0x02, 19, 0], 32);
  assertEquals(decodeRecv(recv), { recvType: 1, addrLen: 8, msgid: 9n, netfn: 0x2d, cmd: 2, dataLen: 19 });
});

Deno.test("decodeDcmiPowerReading decodes recorded ipmi_sim responses and rejects errors", () => {
  assertEquals(decodeDcmiPowerReading(hex(recorded.w312)), {
    currentWatts: 312,
    minWatts: 312,
    maxWatts: 312,
    avgWatts: 312,
    timestamp: 0x6b08ccdd,
    periodMs: 1000,
    active: true,
  });
  const r = decodeDcmiPowerReading(hex(recorded.w405));
  assertEquals([r.currentWatts, r.minWatts, r.maxWatts, r.avgWatts], [405, 312, 405, 358]);
  assertEquals(decodeDcmiPowerReading(hex(recorded.w405b)).avgWatts, 374);
  assertEquals(new Date(0x6b08ccdd * 1000).toISOString(), "2026-11-27T00:20:45.000Z");
  assertThrows(() => decodeDcmiPowerReading(hex(recorded.invalid)), /completion code 0xc1 \(invalid command\)/);
  assertThrows(() => decodeDcmiPowerReading(hex("00dc0100")), /too short \(4 bytes\)/);
  assertThrows(() => decodeDcmiPowerReading(hex(recorded.w312.replace("00dc", "00dd"))), /group extension 0xdd/);
  const inactive = hex(recorded.w312);
  inactive[18] = 0;
  assertEquals(decodeDcmiPowerReading(inactive).active, false);
});

Deno.test("IpmiDevice sends DCMI Get Power Reading to the BMC and decodes the driver's response", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib, log } = fakeIpmi(dir, "normal", recorded.w405);
  const dev = new IpmiDevice(7, lib);
  try {
    const r = await dev.dcmiPowerReading(1000);
    assertEquals([r.currentWatts, r.avgWatts, r.active], [405, 358, true]);
    await dev.dcmiPowerReading(1000);
  } finally {
    dev.close();
  }
  assertEquals(Deno.readTextFileSync(log).trim().split("\n"), [
    "send addr_type=0c channel=0f lun=0 netfn=2c cmd=02 msgid=1 data=dc010000",
    "send addr_type=0c channel=0f lun=0 netfn=2c cmd=02 msgid=2 data=dc010000",
    "close 7",
  ]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("IpmiDevice skips events and stale responses, and reports a completion code error", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeIpmi(dir, "stale");
  const dev = new IpmiDevice(3, lib);
  try {
    assertEquals((await dev.dcmiPowerReading(1000)).currentWatts, 312);
    fakeIpmi(dir, "normal", recorded.invalid);
    await assertRejects(() => dev.dcmiPowerReading(1000), /completion code 0xc1/);
    assertEquals([...await dev.request(dcmiGetPowerReading, 1000)], [0xc1]);
  } finally {
    dev.close();
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("IpmiDevice waits no longer than its timeout and names a non-IPMI descriptor", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeIpmi(dir, "silent");
  const dev = new IpmiDevice(3, lib);
  try {
    const t0 = performance.now();
    await assertRejects(() => dev.dcmiPowerReading(150), /no response from the BMC: timed out after 150 ms/);
    const ms = performance.now() - t0;
    assert(ms >= 140 && ms < 3000, `waited ${ms} ms`);
    fakeIpmi(dir, "enotty");
    let err: unknown;
    try {
      dev.send(dcmiGetPowerReading);
    } catch (e) {
      err = e;
    }
    assert(err instanceof ErrnoError && err.errno === 25, String(err));
    assertEquals((err as Error).message, "ioctl IPMICTL_SEND_COMMAND: ENOTTY (25)");
  } finally {
    dev.close();
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openIpmiDeviceFd and IpmiDevice on real libc: a non-IPMI descriptor fails the ioctl with ENOTTY", () => {
  assertThrows(() => openIpmiDeviceFd("/nonexistent/ipmi0"), /open \/nonexistent\/ipmi0: ENOENT \(2\)/);
  const fd = openIpmiDeviceFd("/dev/null");
  assert(fd > 2, `fd ${fd}`);
  const dev = new IpmiDevice(fd);
  try {
    assertThrows(() => dev.send(dcmiGetPowerReading), /IPMICTL_SEND_COMMAND: ENOTTY \(25\)/);
  } finally {
    dev.close();
  }
});
