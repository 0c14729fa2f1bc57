// The SLURM data of the demo: fake `sacct`/`sacctmgr` printing the fixture node's jobs (running since an hour,
// owned by the given users) in the format the API server asks for, so units match the exporter's cgroups.

import { join } from "node:path";

/** A demo job: SLURM job id (a fixture cgroup), user and account. */
export interface DemoJob {
  id: string;
  user: string;
  account: string;
  cpus: number;
  gpus: number;
}

function slurmTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + "+0000";
}

function hms(s: number): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
}

/** One `sacct --parsable2` line of a running job (CEEMS's field order). */
export function sacctLine(j: DemoJob, startMs: number, nowMs: number): string {
  const el = Math.floor((nowMs - startMs) / 1000);
  const tres = `billing=${j.cpus},cpu=${j.cpus},${j.gpus ? `gres/gpu=${j.gpus},` : ""}mem=4G,node=1`;
  return [
    j.id,
    "compute",
    "normal",
    j.account,
    j.user,
    "1000",
    j.user,
    "1000",
    slurmTime(startMs - 60_000),
    slurmTime(startMs),
    "Unknown",
    hms(el),
    String(el),
    "0:0",
    "RUNNING",
    tres,
    "localhost",
    `job-${j.id}`,
    `/home/${j.user}`,
  ].join("|");
}

/** Writes executable `sacct` and `sacctmgr` into `bin` printing `jobs` (started at `startMs`). */
export function writeSlurmTools(bin: string, jobs: DemoJob[], startMs: number): void {
  const data = join(bin, "sacct.txt");
  Deno.writeTextFileSync(data, jobs.map((j) => sacctLine(j, startMs, Date.now())).join("\n") + "\n");
  Deno.writeTextFileSync(join(bin, "sacct"), `#!/bin/sh\nexec cat '${data}'\n`, { mode: 0o755 });
  const assoc = [...new Set(jobs.map((j) => `${j.account}|${j.user}`))].join("\n");
  Deno.writeTextFileSync(join(bin, "sacctmgr.txt"), assoc + "\n");
  Deno.writeTextFileSync(join(bin, "sacctmgr"), `#!/bin/sh\nexec cat '${join(bin, "sacctmgr.txt")}'\n`, {
    mode: 0o755,
  });
}

/** The fixture node's nine jobs: the first for `me`, the others for three demo users. */
export function demoJobs(me: string, others = ["usr1", "usr2", "usr3"]): DemoJob[] {
  const [u1, u2, u3] = others;
  return [
    { id: "1009248", user: me, account: "demo", cpus: 2, gpus: 1 },
    { id: "1009249", user: u1, account: "acc1", cpus: 2, gpus: 1 },
    { id: "1009250", user: u1, account: "acc1", cpus: 2, gpus: 1 },
    { id: "2009248", user: u2, account: "acc2", cpus: 2, gpus: 0 },
    { id: "2009249", user: u2, account: "acc2", cpus: 2, gpus: 0 },
    { id: "2009250", user: me, account: "demo", cpus: 2, gpus: 0 },
    { id: "3009248", user: u3, account: "acc3", cpus: 2, gpus: 0 },
    { id: "3009249", user: u3, account: "acc3", cpus: 2, gpus: 0 },
    { id: "3009250", user: u3, account: "acc3", cpus: 2, gpus: 0 },
  ];
}
