// `ceems cacct` run as real Unix users against the demo stack (API server on the fixture node's SLURM jobs,
// its updater on Prometheus with generated rules, the LB): each user sees their own units with the API's
// values, usage rows, other formats, the time series through the LB; others' units need an admin.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { runCeems } from "../helpers/process.ts";
import { ensureUsers } from "../helpers/slurm_cluster.ts";
import { findCeemsFixtures } from "../../scripts/demo/fixtures.ts";
import { startStack } from "../../scripts/demo/stack.ts";

/** uid and primary gid of a Unix user. */
async function idsOf(user: string): Promise<{ uid: number; gid: number }> {
  const id = async (flag: string) =>
    Number(
      new TextDecoder().decode((await new Deno.Command("id", { args: [flag, user], stdout: "piped" }).output()).stdout),
    );
  return { uid: await id("-u"), gid: await id("-g") };
}

Deno.test({
  name: "cacct as real users on the demo stack: own units with API values, usage, formats, --user, --ts",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(Deno.uid(), 0, "runs cacct as other users");
    const e2e = findCeemsFixtures();
    assert(e2e, "CEEMS's e2e fixtures not found: set CEEMS_E2E_DIR");
    await ensureUsers(["alice", "bob"]);
    const [alice, bob, root] = [await idsOf("alice"), await idsOf("bob"), { uid: 0, gid: 0 }];
    const dir = await Deno.makeTempDir({ prefix: "ceems-cacct-" });
    const stack = await startStack({
      e2e,
      dir,
      me: "alice",
      others: ["bob", "carol", "dave"],
      admin: "root",
      scrapeIntervalS: 2,
      updateInterval: "10s",
      say: () => {},
    });
    try {
      const env = { XDG_CONFIG_HOME: stack.cacctConfigHome };
      const cacct = (who: { uid: number; gid: number }, args: string[]) =>
        runCeems(["cacct", ...args], { env, ...who });
      const aliceJobs = stack.jobs.filter((j) => j.user === "alice").map((j) => j.id).sort();
      // Wait for the API server's update with aggregates (its first update runs at start-up).
      const api = async (path: string, user: string) =>
        (await (await fetch(`${stack.urls.api}${path}`, { headers: { "X-Grafana-User": user } })).json()).data;
      let units: Record<string, Record<string, number> | string>[] = [];
      for (let i = 0; i < 60; i++) {
        units = await api(`/api/v1/units?cluster_id=demo&running&field=uuid&field=total_cpu_energy_usage_kwh`, "alice");
        if (units.length === aliceJobs.length && units.every((u) => u.total_cpu_energy_usage_kwh)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      assertEquals(units.map((u) => u.uuid).sort(), aliceJobs);

      const table = await cacct(alice, []);
      assertEquals(table.code, 0, table.stderr);
      for (const u of units) {
        const kwh = (u.total_cpu_energy_usage_kwh as Record<string, number>).total.toFixed(6);
        assertMatch(table.stdout, new RegExp(`│ ${u.uuid} │ demo +│ [0-9:]+ +│.*│ ${kwh.slice(0, 8)}`));
      }
      // The Summary's usage row: alice's project with her unit count.
      assertMatch(table.stdout, new RegExp(`│ ${aliceJobs.length} +│ demo +│`));
      assert(!/1009249/.test(table.stdout), "bob's job is not in alice's report");

      const csv = await cacct(alice, ["--long", "--csv"]);
      assertEquals(csv.code, 0, csv.stderr);
      const lines = csv.stdout.trim().split("\n");
      assertMatch(lines[0], /^JOB ID,NAME,ACCOUNT,GROUP,USER,CREATED,STARTED,ENDED,ELAPSED,STATE,CPU USAGE\(%\)/);
      assert(lines.some((l) => l.startsWith(`1009248,job-1009248,demo,alice,alice,`)), csv.stdout);
      const md = await cacct(alice, ["--format=jobid,gpuenergy", "--markdown"]);
      assertMatch(md.stdout, /^\| JOB ID \| GPU ENERGY\(KWH\) \|\n\| --- \| --- \|\n\| 1009248 \| 0\.\d{6} \|/);
      const html = await cacct(alice, ["--format=jobid", "--html"]);
      assertMatch(html.stdout, /<td>1009248<\/td>/);

      // Others' units: only an admin (root is the API server's admin here).
      const denied = await cacct(bob, ["--user=alice"]);
      assertEquals(denied.code, 1);
      assertEquals(
        denied.stderr,
        "ceems cacct: error: forbidden. It is likely that the user is attempting to view statistics of others\n",
      );
      const all = await cacct(root, ["--user=all", "--format=jobid,user"]);
      assertEquals(all.code, 0, all.stderr);
      for (const j of stack.jobs) assertMatch(all.stdout, new RegExp(`│ ${j.id} │ ${j.user.slice(0, 5)}`));
      const two = await cacct(root, ["--user=alice,bob", "--format=jobid"]);
      const ids = [...two.stdout.matchAll(/│ (\d{7}) │/g)].map((m) => m[1]).sort();
      assertEquals(ids, stack.jobs.filter((j) => ["alice", "bob"].includes(j.user)).map((j) => j.id).sort());

      // Time series through the LB, as alice: CSV files named by fingerprint, metadata.json.
      const out = join(dir, "ts");
      Deno.mkdirSync(out, { mode: 0o777 });
      Deno.chmodSync(out, 0o777);
      // A young stack: the 10 s steps of the range query may fall before the first recorded sample; retry.
      let ts = await cacct(alice, ["--job=1009248", "--ts", `--ts.out-dir=${out}`]);
      let meta: { fingerprint: string; labels: Record<string, string> }[] = [];
      for (let i = 0; i < 15; i++) {
        assertEquals(ts.code, 0, ts.stderr);
        meta = JSON.parse(Deno.readTextFileSync(join(out, "metadata.json")));
        if (meta.length >= 4) break;
        await new Promise((r) => setTimeout(r, 2000));
        ts = await cacct(alice, ["--job=1009248", "--ts", `--ts.out-dir=${out}`]);
      }
      // cpu_usage, host_power and the GPU power of both MIG instances.
      assertEquals(meta.length, 4, `series exported: ${ts.stderr} ${JSON.stringify(meta)}`);
      for (const m of meta) {
        assertEquals(m.labels.uuid, "1009248");
        const csvText = Deno.readTextFileSync(join(out, `${m.fingerprint}.csv`));
        assertMatch(csvText, /^timestamp,value\n\d+(\.\d+)?,\d/);
      }
      assert(meta.some((m) => m.labels.__name__ === "uuid:ceems_gpu_power_watts:pue"), JSON.stringify(meta));
      // Bob asking for alice's job gets no unit, so no series.
      const bobOut = join(dir, "ts-bob");
      Deno.mkdirSync(bobOut, { mode: 0o777 });
      Deno.chmodSync(bobOut, 0o777);
      const bobTs = await cacct(bob, ["--job=1009248", "--ts", `--ts.out-dir=${bobOut}`]);
      assertEquals(bobTs.code, 0, bobTs.stderr);
      assertEquals(JSON.parse(Deno.readTextFileSync(join(bobOut, "metadata.json"))), []);

      const noJob = await cacct(alice, ["--ts"]);
      assertEquals([noJob.code, noJob.stderr], [
        2,
        "ceems cacct: error: explicit job IDs must be passed using --job when --ts is enabled\n",
      ]);
      const noCfg = await runCeems(["cacct"], { env: { XDG_CONFIG_HOME: "/nonexistent" }, ...alice });
      assertEquals(noCfg.code, 1);
      assertMatch(noCfg.stderr, /^ceems cacct: error: failed to read config file: config file not found/);
    } finally {
      await stack.stop();
    }
  },
});
