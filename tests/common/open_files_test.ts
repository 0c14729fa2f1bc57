// A daemon runs with its soft open files limit raised to the hard one, as Go's runtime gives CEEMS (Deno's own
// start-up raises it): the kernel's view in /proc/<pid>/limits of an exporter started under prlimit tells.

import { assertEquals } from "../helpers/assert.ts";
import { startCeems } from "../helpers/process.ts";

/** Soft and hard "Max open files" of `pid` as the kernel reports them. */
function limits(pid: number): [string, string] {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/limits`))!;
  return [m[1], m[2]];
}

Deno.test("the exporter runs with its soft open files limit raised to the hard one; the hard limit stays", async () => {
  // Below the hard limit, systemd's default soft 1,024 would not hold per-unit perf counters on a large node.
  // prlimit execs deno: the pid startCeems holds is the exporter's.
  const p = await startCeems(["exporter", "--collector.disable-defaults", "--collector.cpu"], {
    wrapper: ["prlimit", "--nofile=1024:4096"],
    readyPath: "/metrics",
  });
  try {
    assertEquals(limits(p.child.pid), ["4096", "4096"]);
  } finally {
    await p.stop();
  }
});
