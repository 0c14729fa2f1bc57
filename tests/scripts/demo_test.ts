// `deno task demo` as an operator runs it: it starts the stack, prints what to open, sample queries and
// cacct lines that work as printed (the own job answers through the LB, the foreign one is refused), and
// Ctrl-C stops every process it started and removes its work directory.

import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";
import { findCeemsFixtures } from "../../scripts/demo/fixtures.ts";

async function sh(cmd: string): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("sh", { args: ["-c", cmd], cwd: repoRoot, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(e.name));
    } catch {
      // gone
    }
  }
  return out;
}

Deno.test({
  name: "deno task demo: prints working URLs, queries and cacct lines; Ctrl-C stops everything",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert(findCeemsFixtures(), "CEEMS's e2e fixtures not found: set CEEMS_E2E_DIR");
    const demo = new Deno.Command(Deno.execPath(), {
      args: ["task", "demo"],
      cwd: repoRoot,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let out = "", err = "";
    const dec = new TextDecoder();
    const outDone = (async () => {
      for await (const c of demo.stdout) out += dec.decode(c);
    })();
    const errDone = (async () => {
      for await (const c of demo.stderr) err += dec.decode(c);
    })();
    try {
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && !out.includes("cacct (energy")) await new Promise((r) => setTimeout(r, 500));
      assertMatch(out, /CEEMS demo is running/, `no banner:\n${err}`);
      const dir = /removes (\S+)\./.exec(out)![1];
      // The curl lines, as printed: the first two answer with series of the own job, the third is refused.
      const curls = out.split("\n").filter((l) => l.trim().startsWith("curl -s")).map((l) => l.trim());
      assertEquals(curls.length, 4);
      for (const [i, c] of curls.slice(0, 2).entries()) {
        let body: { status?: string; data?: { result: unknown[] } } = {};
        for (let t = 0; t < 30 && !body.data?.result.length; t++) {
          body = JSON.parse((await sh(c)).out);
          if (!body.data?.result.length) await new Promise((r) => setTimeout(r, 1000));
        }
        assert(body.data!.result.length > 0, `query ${i} has no data: ${JSON.stringify(body)}`);
      }
      assertMatch((await sh(curls[2])).out, /"errorType":"forbidden"/);
      assertMatch((await sh(curls[3])).out, /"uuid":"1009248"/);
      // The first cacct line, as printed (energy comes with the API server's update).
      const cacct = out.split("\n").find((l) => l.includes("deno task cacct"))!.trim();
      let table = "";
      for (let t = 0; t < 90; t++) {
        table = (await sh(cacct)).out;
        if (/│ 1009248 │ demo +│ [0-9:]+ +│ \d+\.\d\d +│ \d+\.\d\d +│ \d\.\d+/.test(table)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      assertMatch(table, /│ 1009248 │ demo +│ [0-9:]+ +│ \d+\.\d\d +│ \d+\.\d\d +│ \d\.\d+/);

      // Ctrl-C: the demo (the task's child) stops its children and removes its directory.
      const script = childPids(demo.pid)[0];
      const children = childPids(script);
      assert(children.length >= 4, `children of the demo: ${children}`);
      Deno.kill(script, "SIGINT");
      const st = await demo.status;
      assertEquals(st.code, 0, err);
      assertMatch(err, /stopping the demo …\nstopped\n/);
      for (const pid of children) {
        let alive = true;
        try {
          Deno.statSync(`/proc/${pid}`);
        } catch {
          alive = false;
        }
        assert(!alive, `process ${pid} survived the demo`);
      }
      let left = true;
      try {
        Deno.statSync(dir);
      } catch {
        left = false;
      }
      assert(!left, `${dir} was not removed`);
    } finally {
      // On failure: stop the demo itself (the task's child), which stops its own children, then the task.
      for (const pid of childPids(demo.pid)) {
        try {
          Deno.kill(pid, "SIGINT");
        } catch {
          // already gone
        }
      }
      const st = await Promise.race([demo.status, new Promise((r) => setTimeout(() => r(null), 30_000))]);
      if (!st) demo.kill("SIGKILL");
      await Promise.race([Promise.all([outDone, errDone]), new Promise((r) => setTimeout(r, 5000))]);
    }
  },
});
