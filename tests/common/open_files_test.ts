// A daemon runs with its soft open files limit raised to the hard one, as Go's runtime gives CEEMS (Deno's own
// start-up raises it): the kernel's view in /proc/<pid>/limits of an exporter started under prlimit tells.

import { assertEquals } from "../helpers/assert.ts";
import { CEEMS_ENV, freePort, mainTs } from "../helpers/process.ts";

/** Soft and hard "Max open files" of `pid` as the kernel reports them. */
function limits(pid: number): [string, string] {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/limits`))!;
  return [m[1], m[2]];
}

/** Runs `ceems <args>` under `prlimit --nofile=1024:4096` until /metrics answers; its limits then. */
async function limitsOf(args: string[]): Promise<[string, string]> {
  const port = freePort();
  const child = new Deno.Command("prlimit", {
    args: [
      "--nofile=1024:4096",
      Deno.execPath(),
      "run",
      "-A",
      mainTs,
      ...args,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    env: CEEMS_ENV,
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let i = 0; i < 200; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/metrics`);
        await r.body?.cancel();
        return limits(child.pid);
      } catch { /* not ready */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`ceems ${args[0]} never answered`);
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await child.status;
  }
}

Deno.test("the exporter runs with its soft open files limit raised to the hard one; the hard limit stays", async () => {
  // Below the hard limit, systemd's default soft 1,024 would not hold per-unit perf counters on a large node.
  assertEquals(await limitsOf(["exporter", "--collector.disable-defaults", "--collector.cpu"]), ["4096", "4096"]);
});
