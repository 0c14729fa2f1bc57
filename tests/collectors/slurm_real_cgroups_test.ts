// The slurm collector on this machine's real cgroups: a SLURM-shaped job tree created under the v1
// cpuacct+memory(+cpuset) hierarchies and under cgroup2 at unified/, each holding a real busy process.

import { assert, assertEquals } from "../helpers/assert.ts";
import { scrapeInProcess } from "./unit_helpers.ts";
import { pathExists } from "../../common/fs.ts";

const cgroupRoot = "/sys/fs/cgroup";

/** Starts `sh` that moves itself into `procsFiles`, fills ~24 MB of memory, then spins. */
function startBusyJob(procsFiles: string[]): Deno.ChildProcess {
  const join = procsFiles.map((f) => `echo $$ > ${f}`).join("; ");
  return new Deno.Command("sh", {
    args: ["-c", `${join}; x=$(head -c 24000000 /dev/zero | tr '\\0' a); while :; do :; done`],
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function stop(child: Deno.ChildProcess) {
  try {
    child.kill("SIGKILL");
  } catch {
    // already gone
  }
  await child.status;
}

function rmdirTree(dirs: string[]) {
  for (const d of [...dirs].reverse()) {
    try {
      Deno.removeSync(d);
    } catch {
      // best effort: a dir already removed
    }
  }
}

async function waitFor(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

const sample = (s: Awaited<ReturnType<typeof scrapeInProcess>>, fam: string, uuid: string, host: string) =>
  s.sink.families.get(fam)?.samples.find((x) => x.labels.uuid === uuid && x.labels.cgrouphostname === host)?.value;

Deno.test({
  name: "slurm on real cgroups v1 (cpuacct+memory+cpuset): a busy job's CPU time rises and its memory is seen",
  sanitizeResources: false,
  async fn() {
    const tag = `ceemstest${Deno.pid}`;
    const job = String(900000000 + (Deno.pid % 99999));
    const dirs: string[] = [];
    for (const ctrl of ["cpuacct", "memory", "cpuset"]) {
      for (const p of [`slurm_${tag}`, `slurm_${tag}/uid_0`, `slurm_${tag}/uid_0/job_${job}`]) {
        const d = `${cgroupRoot}/${ctrl}/${p}`;
        Deno.mkdirSync(d); // fails the test loudly when cgroups cannot be created (not root, no v1)
        dirs.push(d);
        if (ctrl === "cpuset") {
          Deno.writeTextFileSync(`${d}/cpuset.cpus`, "0");
          Deno.writeTextFileSync(`${d}/cpuset.mems`, "0");
        }
      }
    }
    const jobDir = (c: string) => `${cgroupRoot}/${c}/slurm_${tag}/uid_0/job_${job}`;
    const child = startBusyJob(["cpuacct", "memory", "cpuset"].map((c) => `${jobDir(c)}/cgroup.procs`));
    try {
      await waitFor(() => Number(Deno.readTextFileSync(`${jobDir("memory")}/memory.usage_in_bytes`)) > 20e6);
      const args = [
        "--collector.slurm",
        "--collector.cgroups.force-version=v1",
        `--path.cgroupfs=${cgroupRoot}`,
        "--collector.gpu.type=nogpu",
      ];
      const first = await scrapeInProcess(args);
      await new Promise((r) => setTimeout(r, 700));
      const second = await scrapeInProcess(args);
      const cpu = (s: typeof first) =>
        sample(s, "ceems_compute_unit_cpu_user_seconds_total", job, tag)! +
        sample(s, "ceems_compute_unit_cpu_system_seconds_total", job, tag)!;
      assert(cpu(first) > 0, `cpu ${cpu(first)}`);
      assert(cpu(second) > cpu(first), `CPU time rises: ${cpu(first)} -> ${cpu(second)}`);
      const used = sample(second, "ceems_compute_unit_memory_used_bytes", job, tag)!;
      assert(used > 20e6, `memory used ${used}`);
      assert(sample(second, "ceems_compute_unit_memory_rss_bytes", job, tag)! > 20e6);
      assertEquals(sample(second, "ceems_compute_unit_cpus", job, tag), 1);
      const hostMem = Number(/MemTotal:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))![1]) * 1024;
      const total = sample(second, "ceems_compute_unit_memory_total_bytes", job, tag)!;
      assert(
        total > 0 &&
          (total >= hostMem || total === Number(Deno.readTextFileSync(`${jobDir("memory")}/memory.limit_in_bytes`))),
      );
    } finally {
      await stop(child);
      await waitFor(() => Deno.readTextFileSync(`${jobDir("cpuacct")}/cgroup.procs`).trim() === "");
      rmdirTree(dirs);
    }
    for (const d of dirs) assert(!pathExists(d), `cleaned up ${d}`);
  },
});

Deno.test({
  name: "slurm on real cgroup2 (unified/, no controllers): job CPU time from cpu.stat rises",
  sanitizeResources: false,
  async fn() {
    const unified = `${cgroupRoot}/unified`;
    const tag = `ceemstest${Deno.pid}`;
    const job = String(800000000 + (Deno.pid % 99999));
    const dirs = [`${unified}/system.slice`, `${unified}/system.slice/${tag}_slurmstepd.scope`].filter((d) =>
      !pathExists(d)
    );
    dirs.push(`${unified}/system.slice/${tag}_slurmstepd.scope/job_${job}`);
    for (const d of dirs) Deno.mkdirSync(d);
    const jobDir = dirs[dirs.length - 1];
    const child = startBusyJob([`${jobDir}/cgroup.procs`]);
    try {
      await waitFor(() => Deno.readTextFileSync(`${jobDir}/cgroup.procs`).trim() !== "");
      const args = [
        "--collector.slurm",
        "--collector.cgroups.force-version=v2",
        `--path.cgroupfs=${unified}`,
        "--collector.gpu.type=nogpu",
      ];
      const first = await scrapeInProcess(args);
      await new Promise((r) => setTimeout(r, 700));
      const second = await scrapeInProcess(args);
      const user = (s: typeof first) =>
        sample(s, "ceems_compute_unit_cpu_user_seconds_total", job, tag)! +
        sample(s, "ceems_compute_unit_cpu_system_seconds_total", job, tag)!;
      assert(user(second) > user(first) && user(first) > 0, `${user(first)} -> ${user(second)}`);
      assertEquals(second.success("slurm"), 1);
    } finally {
      await stop(child);
      await waitFor(() => Deno.readTextFileSync(`${jobDir}/cgroup.procs`).trim() === "");
      rmdirTree(dirs);
    }
    for (const d of dirs) assert(!pathExists(d), `cleaned up ${d}`);
  },
});
