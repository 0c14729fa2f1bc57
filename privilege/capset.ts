// Capability numbers and the calling thread's raw capability state (capget/capset with pid 0, which
// the kernel applies to this thread only); also clears the ambient set. Synchronous calls only.

import { check, libc, prctl, syscallNumbers } from "../ffi/libc.ts";
import type { Capability } from "./ops.ts";

/** Kernel numbers of the capabilities the product names. */
export const CAP_NUMBERS: Record<Capability, number> = {
  cap_chown: 0,
  cap_dac_override: 1,
  cap_dac_read_search: 2,
  cap_fowner: 3,
  cap_kill: 5,
  cap_setgid: 6,
  cap_setuid: 7,
  cap_setpcap: 8,
  cap_net_admin: 12,
  cap_sys_ptrace: 19,
  cap_sys_admin: 21,
  cap_sys_resource: 24,
  cap_perfmon: 38,
  cap_bpf: 39,
};

/** Capability masks of one thread. */
export interface CapState {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_CLEAR_ALL = 4n;

/** Bit mask of a list of capabilities. */
export function maskOf(caps: Iterable<Capability>): bigint {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(CAP_NUMBERS[c]);
  return m;
}

/** The named capabilities contained in a mask (unknown bits are ignored). */
export function capsOf(mask: bigint): Capability[] {
  return (Object.keys(CAP_NUMBERS) as Capability[]).filter((c) => (mask >> BigInt(CAP_NUMBERS[c])) & 1n);
}

function header(): Uint8Array {
  const h = new Uint8Array(8);
  new DataView(h.buffer).setUint32(0, LINUX_CAPABILITY_VERSION_3, true); // pid 0 = calling thread
  return h;
}

/** Reads the calling thread's capability sets (raw capget). */
export function capgetThread(): CapState {
  const data = new Uint8Array(24);
  check("capget", libc().syscall2(syscallNumbers().capget, header(), data));
  const dv = new DataView(data.buffer);
  const word = (i: number) => BigInt(dv.getUint32(i, true)) | (BigInt(dv.getUint32(i + 12, true)) << 32n);
  return { effective: word(0), permitted: word(4), inheritable: word(8) };
}

/** Sets the calling thread's capability sets (raw capset; no other thread changes). */
export function capsetThread(s: CapState): void {
  const data = new Uint8Array(24);
  const dv = new DataView(data.buffer);
  const put = (i: number, v: bigint) => {
    dv.setUint32(i, Number(v & 0xffffffffn), true);
    dv.setUint32(i + 12, Number((v >> 32n) & 0xffffffffn), true);
  };
  put(0, s.effective);
  put(4, s.permitted);
  put(8, s.inheritable);
  check("capset", libc().syscall2(syscallNumbers().capset, header(), data));
}

/** Clears the calling thread's ambient set. */
export function clearAmbient(): void {
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
}
