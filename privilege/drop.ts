// The process-wide switch done once on the main thread before any Worker exists: root → run-as user
// keeping exactly the required permitted set, or a non-root trim of file/ambient capabilities.

import { check, libc } from "../ffi/libc.ts";
import { prctl } from "../ffi/libc.ts";
import { capgetThread, capsetThread, clearAmbient } from "./capset.ts";

const PR_SET_KEEPCAPS = 8;

/**
 * Switches every thread to uid/gid (glibc wrappers broadcast to all threads) and leaves the main
 * thread with permitted = `permitted`, effective = inheritable = ambient = 0. Threads other than
 * main lose every capability in the uid change.
 */
export function dropRootTo(uid: number, gid: number, permitted: bigint): void {
  const c = libc();
  prctl(PR_SET_KEEPCAPS, 1n);
  try {
    check("setgroups", c.setgroups(0n, null));
    check("setresgid", c.setresgid(gid, gid, gid));
    check("setresuid", c.setresuid(uid, uid, uid));
    const have = capgetThread().permitted;
    capsetThread({ permitted: permitted & have, effective: 0n, inheritable: 0n });
  } finally {
    prctl(PR_SET_KEEPCAPS, 0n);
  }
  clearAmbient();
}

/**
 * Non-root start with capabilities: keeps only `required` of what the main thread holds, effective
 * and inheritable empty, ambient cleared. Returns the permitted mask kept.
 */
export function trimTo(required: bigint): bigint {
  const have = capgetThread().permitted;
  const keep = have & required;
  capsetThread({ permitted: keep, effective: 0n, inheritable: 0n });
  clearAmbient();
  return keep;
}

/** Effective uid of the process. */
export function effectiveUid(): number {
  return libc().geteuid();
}
