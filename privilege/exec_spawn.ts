// Starts a command as root from a privileged Worker's thread: narrows the thread's permitted set to its
// context, raises cap_setuid+cap_setgid for the fork, then drops every capability of the thread for good.

import { capsetThread, maskOf } from "./capset.ts";
import { type ExecRequest, spawnChild } from "./exec.ts";

/** What the manager posts to the exec Worker. */
export interface RootExecRequest {
  /** Security context name (messages). */
  context: string;
  /** The context's capabilities as a hex mask: with no_new_privs, the most a root child can hold. */
  permitted: string;
  req: ExecRequest;
  marker: string;
}

/**
 * Spawns `r.req` as uid/gid 0. The thread's permitted set becomes exactly the context's (no_new_privs caps
 * a root child at that), effective cap_setuid+cap_setgid only for the fork; afterwards the thread keeps no
 * capability at all, whatever happened, so nothing it does later can raise one.
 */
export function spawnAsRoot(r: RootExecRequest): Deno.ChildProcess {
  const permitted = BigInt("0x" + r.permitted);
  const fork = maskOf(["cap_setuid", "cap_setgid"]);
  try {
    capsetThread({ permitted, effective: fork & permitted, inheritable: 0n });
    return spawnChild(r.req, r.marker, { uid: 0, gid: 0 });
  } finally {
    capsetThread({ permitted: 0n, effective: 0n, inheritable: 0n });
  }
}
