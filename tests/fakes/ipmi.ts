// Test helpers for the fake OpenIPMI device interface (tests/fakes/fake_ipmi_dev.c): builds it and sets
// the mode and response it answers with, logging the requests it decodes with the kernel's structs.

import { buildFakeLibrary } from "./build.ts";

/** Response bytes recorded from OpenIPMI's ipmi_sim with the DCMI plugin of shared/notes/real-components.md
 * (`ipmitool -I lanplus ... raw 0x2c 0x02 0xdc 0x01 0x00 0x00`, completion code 00 prepended): */
export const recorded = {
  /** 312 W now, min 312, max 312, avg 312, BMC time 0x6b08ccdd (2026-11-27 00:20:45 UTC), period 1000 ms, active. */
  w312: "00dc3801380138013801ddcc086be803000040",
  /** 405 W now, min 312, max 405, avg 358 (after the power file changed to 405). */
  w405: "00dc95013801950166 01ddcc086be803000040".replace(" ", ""),
  /** Third reading: avg 374, timestamp one second later. */
  w405b: "00dc9501380195017601decc086be803000040",
  /** ipmi_sim answer to an unknown DCMI command (ipmitool: rsp=0xc1 Invalid command). */
  invalid: "c1",
};

/** Configures the fake for the next requests; returns the library path and its request log. */
export function fakeIpmi(dir: string, mode = "normal", response = recorded.w312): { lib: string; log: string } {
  const lib = buildFakeLibrary("fake_ipmi_dev.c", "libfakeipmi.so");
  Deno.env.set("FAKE_IPMI_MODE", mode);
  Deno.env.set("FAKE_IPMI_RESPONSE", response);
  Deno.env.set("FAKE_IPMI_LOG", `${dir}/ipmi.log`);
  return { lib, log: `${dir}/ipmi.log` };
}

/** Hex string to bytes. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
}
