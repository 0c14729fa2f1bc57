// `ceems api` against a real one-node SLURM cluster (slurmctld, slurmd, slurmdbd, MariaDB, munged): jobs
// of two unprivileged users are ingested through the real sacct/sacctmgr, and each user sees only their own.

import { dirname } from "node:path";
import { assert, assertEquals } from "../helpers/assert.ts";
import { startCeems } from "../helpers/process.ts";
import { sh, startSlurmCluster } from "../helpers/slurm_cluster.ts";

Deno.test("ceems api ingests real SLURM jobs and keeps users apart", async () => {
  assertEquals(Deno.uid(), 0, "the SLURM harness needs root");
  const sacct = (await sh(["sh", "-c", "command -v sacct"])).stdout.trim();
  assert(sacct, "sacct must be installed (scripts/ensure-test-deps.sh)");
  const cluster = await startSlurmCluster({ ceemsproj1: ["alice"], ceemsproj2: ["bob"] });
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-slurm-" });
  try {
    const startedAt = Date.now();
    const a1 = await cluster.submit("alice", "ceemsproj1", { name: "alice-a", seconds: 2 });
    const a2 = await cluster.submit("alice", "ceemsproj1", { name: "alice-b", seconds: 1, cpus: 2 });
    const b1 = await cluster.submit("bob", "ceemsproj2", { name: "bob-a", seconds: 1 });
    await cluster.waitForJobs([a1, a2, b1]);

    const from = new Date(startedAt - 5 * 60_000).toISOString().slice(0, 16) + "Z";
    Deno.writeTextFileSync(
      `${dir}/config.yml`,
      `ceems_api_server:\n  data:\n    path: ${dir}/data\n    update_from: '${from}'\n  admin:\n    users: [ceemsadmin]\nclusters:\n  - id: slurm-real\n    manager: slurm\n    cli: {path: ${
        dirname(sacct)
      }}\n`,
    );
    const api = await startCeems(["api", `--config.file=${dir}/config.yml`]);
    try {
      const q = `from=${Math.floor(startedAt / 1000) - 600}&to=${Math.floor(Date.now() / 1000) + 600}`;
      const get = async (path: string, user: string) => {
        const r = await fetch(`${api.base}/api/v1${path}`, { headers: { "X-Grafana-User": user } });
        return { status: r.status, json: JSON.parse(await r.text()) };
      };
      let alice: Record<string, unknown>[] = [];
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        alice = (await get(`/units?${q}`, "alice")).json.data;
        if (alice.filter((u) => u.uuid === a1 || u.uuid === a2).length === 2) break;
        await new Promise((r) => setTimeout(r, 300));
      }
      const mine = alice.filter((u) => u.uuid === a1 || u.uuid === a2);
      assertEquals(mine.length, 2, `alice's jobs ingested: ${JSON.stringify(alice)}`);
      assert(alice.every((u) => u.username === "alice"), "alice sees only her units");
      assert(!alice.some((u) => u.uuid === b1));
      const j2 = mine.find((u) => u.uuid === a2)!;
      assertEquals(j2.project, "ceemsproj1");
      assertEquals(j2.state, "COMPLETED");
      assertEquals(j2.name, "alice-b");
      assertEquals((j2.allocation as Record<string, number>).cpus, 2);
      assertEquals((j2.allocation as Record<string, number>).mem, 100 * 1024 * 1024, "--mem=100M is per node");
      const tts = j2.total_time_seconds as Record<string, number>;
      assert(tts.walltime >= 1, `walltime ${tts.walltime}`);
      assertEquals(tts.alloc_cputime, 2 * tts.walltime);
      assertEquals((j2.tags as Record<string, unknown>).uid, Number((await sh(["id", "-u", "alice"])).stdout.trim()));

      assertEquals((await get(`/units/verify?uuid=${a1}&uuid=${a2}`, "alice")).status, 200);
      const denied = await get(`/units/verify?uuid=${a1}`, "bob");
      assertEquals(denied.status, 403);
      assertEquals(denied.json.error, "user do not have permissions on uuids");
      const bobUnits = (await get(`/units?${q}`, "bob")).json.data as Record<string, unknown>[];
      assert(bobUnits.some((u) => u.uuid === b1) && bobUnits.every((u) => u.username === "bob"));

      const users = (await get("/users", "alice")).json.data;
      assertEquals(users, [{
        cluster_id: "slurm-real",
        resource_manager: "slurm",
        name: "alice",
        projects: ["ceemsproj1"],
      }]);
      const projects = (await get("/projects", "bob")).json.data;
      assertEquals(projects, [{
        cluster_id: "slurm-real",
        resource_manager: "slurm",
        name: "ceemsproj2",
        users: ["bob"],
      }]);
      const all = (await get(`/units/admin?${q}`, "ceemsadmin")).json.data as Record<string, unknown>[];
      for (const id of [a1, a2, b1]) assert(all.some((u) => u.uuid === id), `admin sees ${id}`);
    } finally {
      assertEquals((await api.stop()).code, 0);
    }
  } finally {
    await cluster.stop();
    Deno.removeSync(dir, { recursive: true });
  }
});
