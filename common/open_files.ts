// The open files limit of a daemon, raised at start-up from the soft to the hard limit as Go's runtime does for
// CEEMS: perf counters, cgroup walks and client connections need more than systemd's default soft 1024.

import { openFilesLimit, setOpenFilesSoftLimit } from "../ffi/libc.ts";

/**
 * Raises this process's soft open files limit to its hard limit (no privilege needed); returns the soft limit
 * before and after. Commands it starts inherit the raised limit.
 */
export function raiseOpenFilesLimit(): { from: bigint; to: bigint } {
  const { soft, hard } = openFilesLimit();
  if (soft < hard) setOpenFilesSoftLimit(hard, hard);
  return { from: soft, to: openFilesLimit().soft };
}
