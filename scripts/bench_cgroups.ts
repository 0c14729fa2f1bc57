// Benchmark of the slurm collector on generated cgroup v2 trees (N = 100, 1,000, 5,000 jobs on a tmpfs):
// median /metrics latency and resident memory of `ceems exporter`, next to a C floor reading the same files.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchDenoCache, packagedDenoCache } from "./bench_deno_cache.ts";
import { freePort } from "./free_port.ts";
import { EXPORTER_V8_FLAGS } from "../common/v8_flags.ts";

const repo = fileURLToPath(new URL("../", import.meta.url));
const sizes = (Deno.env.get("BENCH_SIZES") ?? "100,1000,5000").split(",").map(Number);
/** The exporter's V8 flags: the product's (deno.json exporter task, packaging/bin/ceems), unless overridden. */
const v8Flags = Deno.env.get("BENCH_EXPORTER_V8_FLAGS") ?? EXPORTER_V8_FLAGS;

/** Files of a v2 job cgroup (as in CEEMS's fixture node); the collector reads some of them. */
const jobFiles: Record<string, string> = {
  "cgroup.controllers": "cpuset cpu io memory pids rdma\n",
  "cgroup.events": "populated 1\nfrozen 0\n",
  "cgroup.procs": "",
  "cgroup.type": "domain\n",
  "cpu.max": "max 100000\n",
  "cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
  "cpu.weight": "100\n",
  "cpuset.cpus": "1,41\n",
  "cpuset.cpus.effective": "1,41\n",
  "io.stat": "",
  "memory.current": "4111491072\n",
  "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
  "memory.max": "4294967296\n",
  "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
  "memory.swap.current": "0\n",
  "memory.swap.max": "max\n",
  "memory.stat":
    "anon 4098592768\nfile 0\nkernel 12787712\nkernel_stack 540672\npagetables 8650752\nsec_pagetables 0\n" +
    "percpu 0\nsock 0\nvmalloc 0\nshmem 0\nzswap 0\nzswapped 0\nfile_mapped 0\nfile_dirty 0\n" +
    "file_writeback 0\nswapcached 0\nanon_thp 3879731200\nfile_thp 0\nshmem_thp 0\ninactive_anon 4098547712\n" +
    "active_anon 45056\ninactive_file 0\nactive_file 0\nunevictable 0\nslab_reclaimable 1072472\n" +
    "slab_unreclaimable 1467072\nslab 2539544\nworkingset_refault_anon 0\nworkingset_refault_file 0\n" +
    "pgfault 1061862\npgmajfault 0\npgrefill 0\npgscan 0\npgsteal 0\nthp_fault_alloc 1851\n",
  "pids.current": "4\n",
  "rdma.current": "hfi1_0 hca_handle=479 hca_object=340\n",
};

/** Generates N jobs under <root>/system.slice/slurmstepd.scope with CEEMS's step layout. */
export function generateTree(root: string, n: number): void {
  const scope = join(root, "system.slice", "slurmstepd.scope");
  Deno.mkdirSync(scope, { recursive: true });
  for (let j = 0; j < n; j++) {
    const id = 1_000_000 + j;
    const job = join(scope, `job_${id}`);
    Deno.mkdirSync(job);
    for (const [f, c] of Object.entries(jobFiles)) {
      Deno.writeTextFileSync(join(job, f), f === "cpu.stat" ? "" : c);
    }
    Deno.writeTextFileSync(
      join(job, "cpu.stat"),
      `usage_usec ${60491070351 + j}\nuser_usec ${60375292848 + j}\nsystem_usec 115777502\nnr_periods 0\n` +
        "nr_throttled 0\nthrottled_usec 0\n",
    );
    for (const [step, leaf] of [["step_extern", "task_special"], ["step_batch", "task_0"], ["step_0", "task_0"]]) {
      for (const sub of [step, `${step}/slurm`, `${step}/user`, `${step}/user/${leaf}`]) {
        Deno.mkdirSync(join(job, sub));
        Deno.writeTextFileSync(join(job, sub, "cgroup.procs"), sub.endsWith(leaf) ? `${40000 + j}\n` : "");
        Deno.writeTextFileSync(join(job, sub, "cgroup.controllers"), "cpuset cpu memory\n");
      }
    }
  }
}

/**
 * The floor: the collector's exact file and syscall pattern in C (checked with strace -c): per directory
 * open(O_DIRECTORY) + getdents64 until 0 + close, per file open + read(64 KiB) until 0 + close; the walk roots
 * are found once before timing, as the exporter finds them at start-up.
 */
const floorC = String.raw`
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static char buf[1 << 16];
static long bytes;
static void readfile(const char *p) {
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) bytes += n;
  close(fd);
}
static const char *jobfiles[] = {"cpu.stat", "cpuset.cpus.effective", "memory.current", "memory.max",
                                 "memory.stat", "memory.events", "rdma.current", 0};
/* Walks like the collector: every directory's cgroup.procs below a job, the stat files of each job. */
static void walk(const char *dir, int depth_in_job) {
  char p[4096];
  if (depth_in_job >= 0) {
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    readfile(p);
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  char dents[32768];
  char (*subdirs)[256] = NULL;
  size_t nsub = 0, cap = 0;
  ssize_t n;
  while ((n = getdents64(fd, dents, sizeof dents)) > 0) {
    for (ssize_t off = 0; off < n;) {
      struct dirent64 *e = (struct dirent64 *)(dents + off);
      off += e->d_reclen;
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      if (nsub == cap) subdirs = realloc(subdirs, (cap = cap ? cap * 2 : 8) * sizeof *subdirs);
      snprintf(subdirs[nsub++], 256, "%s", e->d_name);
    }
  }
  close(fd);
  /* The collector reads a unit's statistics after the walk; reading them here is the same set of files. */
  if (depth_in_job == 0) {
    for (int i = 0; jobfiles[i]; i++) {
      snprintf(p, sizeof p, "%s/%s", dir, jobfiles[i]);
      readfile(p);
    }
  }
  for (size_t i = 0; i < nsub; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, subdirs[i]);
    int next = depth_in_job >= 0 ? depth_in_job + 1 : (strncmp(subdirs[i], "job_", 4) == 0 ? 0 : -1);
    walk(p, next);
  }
  free(subdirs);
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
int main(int argc, char **argv) {
  int reps = atoi(argv[2]);
  double *t = calloc(reps, sizeof *t);
  char root[4096], roots[16][4096];
  int nroots = 0;
  snprintf(root, sizeof root, "%s/system.slice", argv[1]);
  DIR *d = opendir(root);
  struct dirent *e;
  while (d && (e = readdir(d)) && nroots < 16) {
    size_t l = strlen(e->d_name);
    if (l >= 16 && strcmp(e->d_name + l - 16, "slurmstepd.scope") == 0)
      snprintf(roots[nroots++], sizeof roots[0], "%s/%s", root, e->d_name);
  }
  if (d) closedir(d);
  for (int r = 0; r < reps; r++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < nroots; i++) walk(roots[i], -1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    t[r] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
  }
  qsort(t, reps, sizeof *t, cmp);
  printf("%f %ld\n", t[reps / 2], bytes / reps);
  return 0;
}
`;

function run(cmd: string, args: string[]): string {
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

function rssMiB(pid: number): { rss: number; hwm: number } {
  const st = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(st)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** How long the exporter sits idle before its between-scrapes resident memory is read. */
const idleMs = Number(Deno.env.get("BENCH_IDLE_MS") ?? 10_000);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Starts the exporter on `root` and alternates one floor pass and one scrape `reps` times (same load). */
async function benchExporter(root: string, reps: number, floor: () => number, cache: BenchDenoCache) {
  const port = freePort();
  const { cmd, args } = cache.command(Deno.execPath(), [
    "run",
    "-A",
    ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
    join(repo, "main.ts"),
    "exporter",
    "--collector.disable-defaults",
    "--collector.slurm",
    "--collector.cgroups.force-version=v2",
    `--path.cgroupfs=${root}`,
    "--collector.gpu.type=nogpu",
    "--web.disable-exporter-metrics",
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  const child = new Deno.Command(cmd, {
    args,
    // Deno's caches as the package runs the exporter: filled beforehand, read-only.
    env: cache.env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}/metrics`;
    for (let i = 0; i < 200; i++) {
      try {
        await (await fetch(url)).text();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    let series = 0;
    for (let i = 0; i < 2; i++) {
      series = (await (await fetch(url)).text()).split("\n").filter((l) => l && l[0] !== "#").length;
    }
    const times: number[] = [];
    const floors: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < reps; i++) {
      floors.push(floor());
      const t0 = performance.now();
      await (await fetch(url)).text();
      times.push(performance.now() - t0);
      rss.push(rssMiB(child.pid).rss);
    }
    // Between scrapes (Prometheus scrapes every 15-60 s) V8's memory reducer shrinks the heap after ~8 s idle.
    await new Promise((r) => setTimeout(r, idleMs));
    const idle = rssMiB(child.pid);
    return { ms: median(times), floorMs: median(floors), series, rss: median(rss), idle: idle.rss, hwm: idle.hwm };
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

async function main() {
  const work = Deno.makeTempDirSync({ prefix: "ceems-bench-cgroups-" });
  const mnt = join(work, "cgroup");
  Deno.mkdirSync(mnt);
  Deno.writeTextFileSync(join(work, "floor.c"), floorC);
  run("gcc", ["-O2", "-o", join(work, "floor"), join(work, "floor.c")]);
  run("mount", ["-t", "tmpfs", "-o", "size=2g", "tmpfs", mnt]);
  const rows: string[][] = [];
  const cache = packagedDenoCache(repo, v8Flags);
  try {
    for (const n of sizes) {
      const root = join(mnt, `n${n}`);
      generateTree(root, n);
      const reps = n >= 5000 ? 7 : 11;
      const floor = () => Number(run(join(work, "floor"), [root, "1"]).trim().split(" ")[0]);
      floor(); // warm the dentry cache like the exporter's warm-up scrapes
      const ours = await benchExporter(root, reps, floor, cache);
      const floorMs = ours.floorMs;
      rows.push([
        String(n),
        String(ours.series),
        ours.ms.toFixed(1),
        floorMs.toFixed(1),
        (ours.ms / floorMs).toFixed(2) + "x",
        ours.rss.toFixed(1),
        ours.idle.toFixed(1),
        ours.hwm.toFixed(1),
      ]);
      Deno.removeSync(root, { recursive: true });
    }
  } finally {
    cache.remove();
    run("umount", [mnt]);
    Deno.removeSync(work, { recursive: true });
  }
  const head = [
    "jobs",
    "series",
    "ceems ms (median)",
    "C floor ms (median)",
    "ratio",
    "RSS MiB after scrape (median)",
    "RSS MiB idle",
    "peak RSS MiB",
  ];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => "| " + r.map((c, i) => c.padStart(w[i])).join(" | ") + " |";
  console.log(line(head));
  console.log("|" + w.map((x) => "-".repeat(x + 2)).join("|") + "|");
  for (const r of rows) console.log(line(r));
  if (v8Flags) console.log(`Exporter V8 flags: ${v8Flags}`);
  console.log("Goals: ratio <= 1.5x at 1,000 jobs; RSS <= 80 MB (76.3 MiB) at 5,000 jobs.");
  console.log("Deno's caches: filled from the checkout as the package's postinst does, read-only (as in the units).");
  console.log(
    "RSS after scrape: VmRSS read right after each timed scrape, median; idle: " +
      `${idleMs / 1000} s after the last scrape; peak: VmHWM over the whole run.`,
  );
}

if (import.meta.main) await main();
