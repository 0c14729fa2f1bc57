// Test helpers for the compute-unit collectors: in-process scrapes with captured log lines, small
// synthetic cgroup v2 SLURM trees, and fake SMI tools written as shell scripts.

import { createCollectors, exporterFlags, startCollectors } from "../../collectors/exporter.ts";
import { scrapeCollectors } from "../../collectors/framework/scrape.ts";
import type { FamilySink } from "../../collectors/framework/metric_sink.ts";
import { Logger } from "../../common/log.ts";
import { InlineSecurityManager, type SecurityManager } from "../../privilege/security.ts";

/** Result of one in-process scrape. */
export interface Scrape {
  sink: FamilySink;
  logs: string[];
  /** `name{k="v",...}` (labels sorted) → value. */
  series: Map<string, number>;
  success(collector: string): number | undefined;
}

/** Flattens a sink into `name{labels}` → value, labels sorted. */
export function seriesOf(sink: FamilySink): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of sink.families.values()) {
    for (const s of f.samples) {
      const l = Object.keys(s.labels).sort().map((k) => `${k}="${s.labels[k]}"`).join(",");
      out.set(`${f.name}{${l}}`, s.value);
    }
  }
  return out;
}

/** Collectors built in-process from exporter flags, scraped on demand. */
export interface InProcessExporter {
  scrape(): Promise<Scrape>;
  /** Log lines so far. */
  logs: string[];
  stop(): Promise<void>;
}

/** Builds and starts the collectors from exporter flags (with the extra defaults the in-process tests use). */
export async function startInProcess(
  args: string[],
  opts: { security?: SecurityManager } = {},
): Promise<InProcessExporter> {
  const fs = exporterFlags();
  fs.parse(["--collector.disable-defaults", "--collector.empty-hostname-label", ...args]);
  const logs: string[] = [];
  const logger = new Logger("debug", "logfmt", {}, (l) => logs.push(l));
  const cols = await createCollectors(fs, logger, opts.security ?? new InlineSecurityManager());
  await startCollectors(cols, logger);
  return {
    logs,
    async scrape() {
      const sink = await scrapeCollectors(cols, logger);
      const series = seriesOf(sink);
      return {
        sink,
        logs,
        series,
        success: (c) => series.get(`ceems_scrape_collector_success{collector="${c}"}`),
      };
    },
    async stop() {
      for (const c of cols.values()) await c.stop?.();
    },
  };
}

/** Builds the collectors from exporter flags and scrapes `times` times (the last scrape is returned). */
export async function scrapeInProcess(
  args: string[],
  opts: { security?: SecurityManager; times?: number } = {},
): Promise<Scrape> {
  const e = await startInProcess(args, opts);
  let s!: Scrape;
  for (let i = 0; i < (opts.times ?? 1); i++) s = await e.scrape();
  return s;
}

/** Values of one family keyed by uuid (first sample per uuid). */
export function byUuid(s: Scrape, family: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const sm of s.sink.families.get(family)?.samples ?? []) {
    if (!out.has(sm.labels.uuid)) out.set(sm.labels.uuid, sm.value);
  }
  return out;
}

/** Writes a file, creating parent directories. */
export function put(path: string, text: string): void {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  Deno.writeTextFileSync(path, text);
}

/** Creates a cgroup v2 SLURM job cgroup with the usual files under `root` (a cgroupfs); `sluid` names it by SLUID. */
export function makeV2Job(
  root: string,
  job: string,
  opts: { pids?: string; host?: string; user?: number; sluid?: string } = {},
): string {
  const scope = opts.host ? `${opts.host}_slurmstepd.scope` : "slurmstepd.scope";
  // Slurm ≥ 26.05 names the job directory by the job's SLUID unless CgroupJobIdPaths=yes.
  const dir = `${root}/system.slice/${scope}/${opts.sluid ?? `job_${job}`}`;
  const user = opts.user ?? 1_000_000;
  put(`${dir}/cpu.stat`, `usage_usec ${user + 500}\nuser_usec ${user}\nsystem_usec 500\n`);
  put(`${dir}/cpuset.cpus.effective`, "0-3\n");
  put(`${dir}/memory.current`, "2048\n");
  put(`${dir}/memory.max`, "max\n");
  put(`${dir}/memory.stat`, "anon 1024\nfile 512\nkernel 10\n");
  put(`${dir}/memory.events`, "low 0\nhigh 0\nmax 0\noom 2\noom_kill 0\n");
  put(`${dir}/memory.swap.current`, "4096\n");
  put(`${dir}/memory.swap.max`, "8192\n");
  put(`${dir}/cpu.pressure`, "some avg10=0.00 avg60=0.00 avg300=0.00 total=9000000\nfull avg10=0.00 total=3000000\n");
  put(`${dir}/memory.pressure`, "some avg10=0.00 total=1000\nfull avg10=0.00 total=1500000\n");
  put(`${dir}/cgroup.procs`, "");
  put(`${dir}/step_0/cgroup.procs`, opts.pids ?? "4242\n");
  return dir;
}

/** Writes an executable shell script. */
export function script(path: string, body: string): string {
  put(path, `#!/bin/sh\n${body}\n`);
  Deno.chmodSync(path, 0o755);
  return path;
}

let unpacked: Promise<{ dir: string; bin: string; e2e: string } | undefined> | undefined;

/** Runs `fn` with an unpacked copy of CEEMS's fixtures and fake tools (shared, read-only, removed at exit);
 * returns false when the data is absent. */
export async function withCeemsFixtures(
  fn: (f: { dir: string; bin: string; e2e: string }) => Promise<void>,
): Promise<boolean> {
  unpacked ??= (async () => {
    const { ceemsE2eDir, prepareFixtures } = await import("./ceems_fixtures.ts");
    const e2e = ceemsE2eDir();
    if (!e2e) return undefined;
    const f = { ...(await prepareFixtures(e2e)), e2e };
    globalThis.addEventListener("unload", () => Deno.removeSync(f.dir, { recursive: true }));
    return f;
  })();
  const f = await unpacked;
  if (!f) return false;
  await fn(f);
  return true;
}

/** The fixture path flags. */
export function fixturePaths(dir: string): string[] {
  return [`--path.sysfs=${dir}/sys`, `--path.cgroupfs=${dir}/sys/fs/cgroup`, `--path.procfs=${dir}/proc`];
}
