// Capability-free commands (nvidia-smi, rocm-smi, rdma ... show, IPMI test mode) run asynchronously: while one
// hangs the event loop keeps turning and the collector's time budget fires; the command dies at its deadline.

import { assert, assertEquals } from "../helpers/assert.ts";
import { makeCollector, scrape } from "../helpers/collector_harness.ts";
import { writeScript } from "../helpers/fake_tools.ts";

/** Largest delay of a 5 ms interval timer while `p` runs. */
async function maxLag<T>(p: () => Promise<T>): Promise<{ value: T; lagMs: number }> {
  let last = performance.now(), lag = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    lag = Math.max(lag, now - last - 5);
    last = now;
  }, 5);
  try {
    return { value: await p(), lagMs: lag };
  } finally {
    clearInterval(iv);
  }
}

Deno.test("a hung capability-free tool: the collector's budget fires, the event loop never stalls, the tool dies at its deadline", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-hung-" });
  const token = `${Math.floor(Math.random() * 1e9)}`;
  try {
    const tool = writeScript(dir, "ipmitool", `exec /bin/sleep 30.${token}`);
    const c = await makeCollector("ipmi_dcmi", [
      `--collector.ipmi_dcmi.cmd=${tool}`,
      "--collector.ipmi_dcmi.test-mode",
      "--collector.ipmi_dcmi.timeout=1500ms",
    ]);
    const t0 = performance.now();
    const { value, lagMs } = await maxLag(() => scrape({ ipmi_dcmi: c }, [], 300));
    const ms = performance.now() - t0;
    assertEquals(value.success.ipmi_dcmi, 0);
    assert(ms < 1_000, `the 300 ms budget fired after ${Math.round(ms)} ms`);
    assert(lagMs < 100, `event loop stalled ${Math.round(lagMs)} ms`);
    console.log(`budget fired after ${Math.round(ms)} ms; largest event-loop lag ${Math.round(lagMs)} ms`);
    // The command itself is killed at its own deadline (1.5 s), long before its 30 s sleep ends: poll for it
    // until 4 s after the start, which leaves a loaded machine time to reap it.
    const alive = () =>
      [...Deno.readDirSync("/proc")].filter((e) => {
        try {
          return Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(`30.${token}`);
        } catch {
          return false;
        }
      });
    let left = alive();
    while (left.length && performance.now() - t0 < 4_000) {
      await new Promise((r) => setTimeout(r, 50));
      left = alive();
    }
    assertEquals(left, []);
    console.log(`the tool was gone ${Math.round(performance.now() - t0)} ms after the start`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a command's output past the cap fails it; a relative command is refused before anything starts", async () => {
  const { InlineSecurityManager } = await import("../../privilege/security.ts");
  const sec = new InlineSecurityManager();
  const ctx = { name: "t", caps: [] };
  const o = await sec.exec(ctx, { cmd: ["/usr/bin/yes"], timeoutMs: 10_000, maxBytes: 1 << 20 }, { asRoot: false });
  assertEquals(o.status, "overflow");
  assert(o.stdout.length <= 1 << 20);
  let err = "";
  await sec.exec(ctx, { cmd: ["yes"], timeoutMs: 1000 }, { asRoot: false }).catch((e) => err = (e as Error).message);
  assertEquals(err, "yes: not an absolute path (commands are resolved at start-up)");
});

Deno.test("a run whose caller stops (AbortSignal) ends at once, as at its deadline", async () => {
  const { InlineSecurityManager } = await import("../../privilege/security.ts");
  const sec = new InlineSecurityManager();
  const stop = new AbortController();
  setTimeout(() => stop.abort("stopping"), 200);
  const t0 = performance.now();
  const o = await sec.exec({ name: "t", caps: [] }, {
    cmd: ["/bin/sleep", "30"],
    timeoutMs: 10_000,
    signal: stop.signal,
  }, {
    asRoot: false,
  });
  assertEquals(o.status, "aborted");
  assert(performance.now() - t0 < 2_000, `ended after ${Math.round(performance.now() - t0)} ms`);
});
