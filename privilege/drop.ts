// The process-wide switch done once on the main thread before any Worker exists: root → run-as user
// keeping exactly the required permitted set, or a non-root trim of file/ambient capabilities.

import { check, libc, noNewPrivsAllThreads, prctl } from "../ffi/libc.ts";
import { capgetThread, capsetThread, clearAmbient } from "./capset.ts";

const PR_SET_KEEPCAPS = 8;
const PR_CAPBSET_DROP = 24;

/** Highest capability number this kernel knows. */
function lastCap(): number {
  return Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
}

const CAP_SETPCAP = 8n;

/** This thread's bounding set. */
export function boundingSet(): bigint {
  return BigInt("0x" + (/^CapBnd:\s*([0-9a-f]+)/m.exec(Deno.readTextFileSync("/proc/thread-self/status"))?.[1] ?? "0"));
}

/**
 * Removes every capability outside `keep` from this thread's bounding set; threads and children created
 * afterwards inherit it, so a child run as root can never hold more than `keep`. Needs cap_setpcap
 * (effective); without it the set stays as the service manager left it. Returns the resulting set.
 */
export function trimBoundingSet(keep: bigint): bigint {
  const have = boundingSet();
  if (((capgetThread().effective >> CAP_SETPCAP) & 1n) === 0n) return have;
  for (let c = 0; c <= lastCap(); c++) {
    if (((have >> BigInt(c)) & 1n) && !((keep >> BigInt(c)) & 1n)) prctl(PR_CAPBSET_DROP, BigInt(c));
  }
  return boundingSet();
}

/**
 * Trims the bounding set to `permitted` and sets no_new_privs on every thread (a command run as root later
 * then holds at most its context's capabilities), switches every thread to uid/gid (glibc wrappers
 * broadcast to all threads) and leaves the main thread with permitted = `permitted`, effective =
 * inheritable = ambient = 0. Threads other than main lose every capability in the uid change. Returns the
 * bounding set left (exactly `permitted` unless cap_setpcap was missing).
 */
export function dropRootTo(uid: number, gid: number, permitted: bigint): bigint {
  const c = libc();
  const bounding = trimBoundingSet(permitted);
  noNewPrivsAllThreads();
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
  return bounding;
}

/**
 * Non-root start: sets no_new_privs on every thread and keeps only `required` of what the main thread
 * holds, effective and inheritable empty, ambient cleared. Returns the permitted mask kept.
 */
export function trimTo(required: bigint): bigint {
  noNewPrivsAllThreads();
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
