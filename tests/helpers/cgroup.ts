// Real cgroup v2 directories for tests: created under this machine's cgroup2 mount, processes moved in,
// removed afterwards (remaining processes are moved back to the root first).

import { readMountInfo } from "../../collectors/units/subcollector.ts";

/** The cgroup2 mount point of this machine (/sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Root(): string {
  const m = readMountInfo("/proc").find((x) => x.fsType === "cgroup2");
  if (!m) throw new Error("no cgroup2 mount on this machine: these tests need one");
  return m.mountPoint;
}

/** A fresh cgroup2 directory named ceems-test-<tag>-<pid>-<n>. */
export function makeCgroup(tag: string): string {
  const path = `${cgroup2Root()}/ceems-test-${tag}-${Deno.pid}-${Math.floor(Math.random() * 1e9)}`;
  Deno.mkdirSync(path);
  return path;
}

/** Moves a process into a cgroup. */
export function moveInto(path: string, pid: number): void {
  Deno.writeTextFileSync(`${path}/cgroup.procs`, `${pid}\n`);
}

/** Pids in a cgroup. */
export function pidsOf(path: string): number[] {
  return Deno.readTextFileSync(`${path}/cgroup.procs`).split("\n").filter((s) => s).map(Number);
}

/** Removes a test cgroup, moving any process still in it back to the root cgroup first. */
export function removeCgroup(path: string): void {
  try {
    for (const pid of pidsOf(path)) {
      try {
        moveInto(cgroup2Root(), pid);
      } catch { /* exited meanwhile */ }
    }
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
