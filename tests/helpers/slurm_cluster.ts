// Real one-node SLURM cluster for tests (munged, MariaDB, slurmdbd, slurmctld, slurmd) started as
// /work/shared/notes/real-components.md describes, under a machine-wide lock; jobs run as real Unix users.

import { join } from "node:path";

/** Lock taken for the whole life of a cluster: SLURM uses fixed ports and /etc/slurm. */
export const SLURM_LOCK = "/run/ceems-test-slurm.lock";

const PIDFILES: [string, string][] = [
  ["/run/slurm/slurmd.pid", "slurmd"],
  ["/run/slurm/slurmctld.pid", "slurmctld"],
  ["/run/slurm/slurmdbd.pid", "slurmdbd"],
  ["/run/munge/munged.pid", "munged"],
  ["/run/mysqld/mysqld.pid", "mariadbd"],
];

const SLURM_CONF_BASE = `ClusterName=ceemstest
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
__PLUGINS__JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=cpu,mem,energy,node,billing
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
DefMemPerCPU=500
`;

/** Process tracking without cgroups (default) or with SLURM's cgroup/v1 plugins (job cgroups are created). */
function slurmConf(cgroups: boolean): string {
  return SLURM_CONF_BASE.replace(
    "__PLUGINS__",
    cgroups
      ? "ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup,task/affinity\nJobAcctGatherType=jobacct_gather/cgroup\n"
      : "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/linux\n",
  );
}

const CGROUP_CONF = `CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=yes
ConstrainRAMSpace=yes
`;

const SLURMDBD_CONF = `AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
`;

const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command; returns code and output (never throws for a non-zero exit). */
export async function sh(cmd: string[], opts: { env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function must(cmd: string[]): Promise<string> {
  const r = await sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function comm(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

/** Takes the machine-wide SLURM lock (stale locks of dead pids are broken). */
async function acquireLock(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      const f = Deno.openSync(SLURM_LOCK, { write: true, createNew: true });
      f.writeSync(new TextEncoder().encode(String(Deno.pid)));
      f.close();
      return;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    let owner = 0;
    try {
      owner = parseInt(Deno.readTextFileSync(SLURM_LOCK), 10);
    } catch { /* vanished */ }
    if (owner && !alive(owner)) {
      try {
        Deno.removeSync(SLURM_LOCK);
      } catch { /* someone else broke it */ }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`SLURM lock ${SLURM_LOCK} held by pid ${owner}`);
    await sleep(500);
  }
}

function releaseLock(): void {
  try {
    if (parseInt(Deno.readTextFileSync(SLURM_LOCK), 10) === Deno.pid) Deno.removeSync(SLURM_LOCK);
  } catch { /* already gone */ }
}

/** Kills the daemons named in the pidfiles (leftovers of a crashed run, or ours), waiting for each to exit. */
async function killDaemons(): Promise<void> {
  for (const [file, name] of PIDFILES) {
    let pid = 0;
    try {
      pid = parseInt(Deno.readTextFileSync(file), 10);
    } catch {
      continue;
    }
    if (!pid || !alive(pid) || !comm(pid).startsWith(name.slice(0, 15))) continue;
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone */ }
    const deadline = Date.now() + 15_000;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
}

/** A running cluster. */
export interface SlurmCluster {
  /**
   * Submits a batch job as `user` under `account`; returns its job id. The job runs `sleep <seconds>`, or
   * `script` (a shell script body) when given; `mem` is the memory request (default 100M).
   */
  submit(
    user: string,
    account: string,
    opts: { name: string; seconds: number; cpus?: number; script?: string; mem?: string },
  ): Promise<string>;
  /** Directory (mode 1777) where job scripts run and write their output. */
  jobDir: string;
  /** Waits until sacct lists every job in one of `states`. */
  waitForJobs(ids: string[], states?: string[], timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Makes sure the Unix users exist (created with home directories when missing). */
export async function ensureUsers(users: string[]): Promise<void> {
  for (const u of users) {
    if ((await sh(["id", u])).code !== 0) await must(["useradd", "-m", u]);
  }
}

/**
 * Starts the cluster and creates the accounts (account → users). Throws when a component fails to start;
 * every daemon started is stopped again on failure.
 */
export async function startSlurmCluster(
  accounts: Record<string, string[]>,
  opts: { cgroups?: boolean } = {},
): Promise<SlurmCluster> {
  await acquireLock(10 * 60_000);
  const jobDir = Deno.makeTempDirSync({ prefix: "ceems-test-slurm-jobs-" });
  Deno.chmodSync(jobDir, 0o1777);
  let mariadb: Deno.ChildProcess | undefined;
  const stop = async () => {
    await killDaemons();
    if (opts.cgroups) removeSlurmCgroups();
    if (mariadb) {
      try {
        mariadb.kill("SIGKILL");
      } catch { /* exited */ }
      await mariadb.status;
    }
    try {
      Deno.removeSync(jobDir, { recursive: true });
    } catch { /* gone */ }
    releaseLock();
  };
  try {
    await killDaemons();
    Deno.writeTextFileSync("/etc/slurm/slurm.conf", slurmConf(opts.cgroups ?? false));
    if (opts.cgroups) Deno.writeTextFileSync("/etc/slurm/cgroup.conf", CGROUP_CONF);
    else {
      try {
        Deno.removeSync("/etc/slurm/cgroup.conf");
      } catch { /* none */ }
    }
    Deno.writeTextFileSync("/etc/slurm/slurmdbd.conf", SLURMDBD_CONF, { mode: 0o600 });
    Deno.chmodSync("/etc/slurm/slurmdbd.conf", 0o600);
    await must(["chown", "slurm:slurm", "/etc/slurm/slurmdbd.conf"]);

    await must(["install", "-d", "-o", "munge", "-g", "munge", "-m", "0755", "/run/munge"]);
    await must(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force"]);

    await must(["install", "-d", "-o", "mysql", "-g", "mysql", "-m", "0755", "/run/mysqld"]);
    mariadb = new Deno.Command("/usr/sbin/mariadbd", {
      args: ["--user=mysql", "--bind-address=127.0.0.1"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await until("mariadb", async () => (await sh(["mariadb-admin", "ping"])).code === 0);
    await must([
      "mariadb",
      "-e",
      "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw'; CREATE DATABASE IF NOT EXISTS slurm_acct_db; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';",
    ]);

    await must(["install", "-d", "-o", "slurm", "-g", "slurm", "/var/spool/slurmctld", "/var/log/slurm", "/run/slurm"]);
    await must(["install", "-d", "/var/spool/slurmd"]);
    await must(["/usr/sbin/slurmdbd"]);
    await until("slurmdbd", async () => (await sh(["sacctmgr", "-n", "show", "cluster"])).code === 0);
    await sh(["sacctmgr", "-i", "add", "cluster", "ceemstest"]);
    await must(["/usr/sbin/slurmctld"]);
    await must(["/usr/sbin/slurmd", "-N", "localhost"]);
    await until("node idle", async () => {
      const r = await sh(["sinfo", "-h", "-o", "%T"]);
      if (/down|drain/.test(r.stdout)) await sh(["scontrol", "update", "NodeName=localhost", "State=RESUME"]);
      return r.stdout.split("\n").some((l) => l.trim() === "idle");
    });

    await ensureUsers(Object.values(accounts).flat());
    for (const [acct, users] of Object.entries(accounts)) {
      await sh(["sacctmgr", "-i", "add", "account", acct, `Description=${acct}`, "Organization=ceems"]);
      for (const u of users) await sh(["sacctmgr", "-i", "add", "user", u, `Account=${acct}`]);
    }
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    async submit(user, account, o) {
      const out = await must([
        "runuser",
        "-u",
        user,
        "--",
        "sbatch",
        "--parsable",
        "-A",
        account,
        "-J",
        o.name,
        "-n",
        String(o.cpus ?? 1),
        `--mem=${o.mem ?? "100M"}`,
        "-D",
        jobDir,
        "-o",
        join(jobDir, "%j.out"),
        ...(o.script ? [jobScript(jobDir, o.name, o.script)] : ["--wrap", `sleep ${o.seconds}`]),
      ]);
      return out.trim().split(";")[0];
    },
    async waitForJobs(ids, states = ["COMPLETED"], timeoutMs = 90_000) {
      await until(`jobs ${ids.join(",")} in ${states.join("|")}`, async () => {
        const r = await sh([
          "sacct",
          "-X",
          "-n",
          "-P",
          "-j",
          ids.join(","),
          "--format=JobIDRaw,State",
        ]);
        const seen = new Map(r.stdout.trim().split("\n").map((l) => l.split("|") as [string, string]));
        return ids.every((id) => states.some((s) => (seen.get(id) ?? "").startsWith(s)));
      }, timeoutMs);
    },
    stop,
    jobDir,
  };
}

/** Removes the cgroup/v1 trees slurmd created (`/sys/fs/cgroup/<controller>/slurm_localhost/...`), leaves first. */
function removeSlurmCgroups(): void {
  const rmTree = (dir: string) => {
    try {
      for (const e of Deno.readDirSync(dir)) if (e.isDirectory) rmTree(join(dir, e.name));
      Deno.removeSync(dir);
    } catch { /* gone, or still busy: left for the next run */ }
  };
  try {
    for (const c of Deno.readDirSync("/sys/fs/cgroup")) rmTree(join("/sys/fs/cgroup", c.name, "slurm_localhost"));
  } catch { /* no cgroupfs */ }
}

/** Writes a batch script readable by every user into the job directory; returns its path. */
function jobScript(jobDir: string, name: string, body: string): string {
  const path = join(jobDir, `${name}.sbatch`);
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`);
  Deno.chmodSync(path, 0o755);
  return path;
}
