// Makes the fixture node live for the demo: every second the jobs' cgroup CPU counters, the node's
// /proc/stat, the RAPL energy counters and the IPMI power reading advance as if the jobs were running
// (each job busy at its own steady rate), so rates, power shares and energy are not zero.

import { join } from "node:path";

/** Busy CPUs of each job (cycled over the jobs found). */
const JOB_LOAD = [1.6, 0.7, 1.2, 0.4, 0.9];

function bump(file: string, edit: (text: string) => string): void {
  try {
    Deno.writeTextFileSync(file, edit(Deno.readTextFileSync(file)));
  } catch {
    // a file the fixture lacks: nothing to advance
  }
}

/** Adds `by` to the integer value of `key` lines (`key value`) in a stat file. */
function addToKeys(text: string, by: Record<string, number>): string {
  return text.replace(/^(\w+) (\d+)$/gm, (l, k, v) => (k in by ? `${k} ${BigInt(v) + BigInt(Math.round(by[k]))}` : l));
}

/** The job cgroup directories of the fixture (under every slurmstepd scope). */
export function jobDirs(root: string): string[] {
  const base = join(root, "sys/fs/cgroup/system.slice");
  const out: string[] = [];
  for (const scope of Deno.readDirSync(base)) {
    if (!scope.isDirectory || !scope.name.endsWith("slurmstepd.scope")) continue;
    for (const j of Deno.readDirSync(join(base, scope.name))) {
      if (j.isDirectory && j.name.startsWith("job_")) out.push(join(base, scope.name, j.name));
    }
  }
  return out.sort();
}

/** Starts advancing the counters every second; returns a function that stops it. */
export function startTicker(root: string, powerFile: string): () => void {
  const jobs = jobDirs(root);
  let t = 0;
  const tick = () => {
    t++;
    let busy = 0;
    jobs.forEach((dir, i) => {
      const load = JOB_LOAD[i % JOB_LOAD.length] * (1 + 0.2 * Math.sin(t / 30 + i));
      busy += load;
      const usec = load * 1e6;
      bump(
        join(dir, "cpu.stat"),
        (s) => addToKeys(s, { usage_usec: usec, user_usec: usec * 0.9, system_usec: usec * 0.1 }),
      );
      bump(
        join(dir, "memory.current"),
        (s) => String(Math.max(1 << 20, Number(s) + Math.round(Math.sin(t / 10 + i) * 4e6))),
      );
    });
    // /proc/stat counts USER_HZ (100 per second per busy CPU); idle fills the rest of 8 CPUs.
    bump(
      join(root, "proc/stat"),
      (s) =>
        s.replace(
          /^cpu +(\d+) (\d+) (\d+) (\d+)/m,
          (_l, u, n, sy, id) =>
            `cpu  ${Number(u) + Math.round(busy * 90)} ${n} ${Number(sy) + Math.round(busy * 10)} ${
              Number(id) + Math.max(0, Math.round((8 - busy) * 100))
            }`,
        ),
    );
    // RAPL: package 40 + 25 W per busy CPU, DRAM 15 W, in µJ; IPMI: the node around them.
    const pkg = 40 + 25 * busy, dram = 15;
    for (
      const [zone, w] of [["intel-rapl:0", pkg / 2], ["intel-rapl:1", pkg / 2], ["intel-rapl:0:0", dram / 2], [
        "intel-rapl:1:0",
        dram / 2,
      ]] as [string, number][]
    ) {
      bump(join(root, "sys/class/powercap", zone, "energy_uj"), (s) => String(Number(s) + Math.round(w * 1e6)));
    }
    Deno.writeTextFileSync(powerFile, `${Math.round(300 + pkg + dram + 20 * Math.sin(t / 20))}\n`);
  };
  tick();
  const id = setInterval(tick, 1000);
  return () => clearInterval(id);
}
