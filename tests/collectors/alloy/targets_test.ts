// --discoverer.alloy-targets on this machine's real cgroup2 tree: two SLURM-shaped jobs with real processes,
// served at --web.targets-path as CEEMS's JSON, filtered by environment, with the exporter's own target.

import { pathExists } from "../../../common/fs.ts";
import { SELF_TARGET_ID } from "../../../collectors/alloy/targets.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { startCeems } from "../../helpers/process.ts";
import { cgroup2Root, pidsOf } from "../../helpers/cgroup.ts";

interface Target {
  targets: string[];
  labels: Record<string, string>;
}

/** A process that joins `procsFile`'s cgroup, then waits (never matched by CEEMS's ignored-process regex). */
function startIn(procsFile: string, env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", `echo $$ > ${procsFile}; exec tail -f /dev/null`],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function waitFor(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert(cond(), "condition not reached");
}

/** Sorted "uuid/pid" pairs of targets (CEEMS's order is its cgroup walk's; the set is the contract). */
const pairs = (ts: Target[]) => ts.map((t) => `${t.targets[0]}/${t.labels.__process_pid__}`).sort();

Deno.test({
  name: "alloy targets: every process of every job, env-var filtered, self target; off without slurm/k8s",
  sanitizeResources: false,
  async fn() {
    const unified = cgroup2Root();
    const tag = `ceemsalloy${Deno.pid}`;
    const base = 700000000 + (Deno.pid % 99999);
    const [jobA, jobB] = [String(base), String(base + 1)];
    const made = [`${unified}/system.slice`, `${unified}/system.slice/${tag}_slurmstepd.scope`].filter((d) =>
      !pathExists(d)
    );
    const scope = `${unified}/system.slice/${tag}_slurmstepd.scope`;
    const dirs = [`${scope}/job_${jobA}`, `${scope}/job_${jobA}/step_0`, `${scope}/job_${jobB}`];
    for (const d of [...made, ...dirs]) Deno.mkdirSync(d);
    const procs = [
      startIn(`${scope}/job_${jobA}/cgroup.procs`),
      startIn(`${scope}/job_${jobA}/step_0/cgroup.procs`, { CEEMS_PROFILE_ME: "1" }),
      startIn(`${scope}/job_${jobB}/cgroup.procs`, { OTHER: "1" }),
    ];
    const flags = [
      "--collector.disable-defaults",
      "--collector.slurm",
      "--collector.gpu.type=nogpu",
      "--collector.cgroups.force-version=v2",
      `--path.cgroupfs=${unified}`,
      "--discoverer.alloy-targets",
    ];
    try {
      await waitFor(() => dirs.every((d) => pidsOf(d).length === 1));
      // What the kernel says each job holds, read now: the job's own cgroup and its step.
      const expected = [
        ...[...pidsOf(dirs[0]), ...pidsOf(dirs[1])].map((p) => `${jobA}/${p}`),
        ...pidsOf(dirs[2]).map((p) => `${jobB}/${p}`),
      ];

      // Started as root: it drops to nobody and reads environments in its profiling_targets_filter context.
      const all = await startCeems(["exporter", ...flags, "--discoverer.alloy-targets.self-profiler"], {
        readyPath: "/alloy-targets",
      });
      try {
        const r = await fetch(`${all.base}/alloy-targets`);
        assertEquals(r.headers.get("content-type"), "application/json");
        const body: Target[] = await r.json();
        const self = body.filter((t) => t.targets[0] === SELF_TARGET_ID);
        assertEquals(self, [{
          targets: [SELF_TARGET_ID],
          labels: { __process_pid__: String(all.child.pid), service_name: SELF_TARGET_ID },
        }]);
        const jobs = body.filter((t) => t.targets[0] !== SELF_TARGET_ID);
        // Other tests' jobs may share the tree: only ours are compared.
        assertEquals(pairs(jobs.filter((t) => [jobA, jobB].includes(t.targets[0]))), expected.sort());
        for (const t of jobs) assertEquals(t.labels.service_name, t.targets[0]);
        const landing = await (await fetch(`${all.base}/`)).text();
        assert(landing.includes('href="/alloy-targets"'), "landing page links the targets");
      } finally {
        await all.stop();
      }

      const filtered = await startCeems(
        ["exporter", ...flags, "--discoverer.alloy-targets.env-var=CEEMS_PROFILE", "--web.targets-path=/targets"],
        { readyPath: "/targets" },
      );
      try {
        const body: Target[] = await (await fetch(`${filtered.base}/targets`)).json();
        assertEquals(pairs(body.filter((t) => [jobA, jobB].includes(t.targets[0]))), [`${jobA}/${pidsOf(dirs[1])[0]}`]);
      } finally {
        await filtered.stop();
      }

      const off = await startCeems([
        "exporter",
        "--collector.disable-defaults",
        "--collector.cpu",
        "--discoverer.alloy-targets",
      ]);
      try {
        const r = await fetch(`${off.base}/alloy-targets`);
        assertEquals(r.status, 404);
        await r.body?.cancel();
      } finally {
        const { stderr } = await off.stop();
        assert(stderr.includes("--discoverer.alloy-targets needs --collector.slurm or --collector.k8s"), stderr);
      }
    } finally {
      for (const p of procs) {
        try {
          p.kill("SIGKILL");
        } catch { /* gone */ }
        await p.status;
      }
      for (const d of [...dirs].reverse().concat([...made].reverse())) {
        await waitFor(() => !pathExists(`${d}/cgroup.procs`) || pidsOf(d).length === 0);
        Deno.removeSync(d);
      }
    }
  },
});
