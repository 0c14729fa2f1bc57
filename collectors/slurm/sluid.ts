// Slurm 26.05 names cgroup v2 job directories by the job's SLUID (unless CgroupJobIdPaths=yes): this maps a
// SLUID to the numeric job id, from the job's slurmstepd process title, else from a job process's environment.

import type { Logger } from "../../common/log.ts";
import type { SecurityManager } from "../../privilege/security.ts";
import type { Unit } from "../units/discovery.ts";
import { readOptional } from "../units/fsread.ts";
import type { DeclaredContext } from "../../privilege/declare.ts";

/** The context job processes' environments are read in (GPU indices, SLUID → job id). */
export const SLURM_ENVIRON_CONTEXT: DeclaredContext = {
  name: "slurm",
  caps: ["cap_sys_ptrace", "cap_dac_read_search"],
  flag: "collector.slurm",
  reason: "reads job processes' /proc/<pid>/environ for GPU indices",
  uses: ["readEnviron"],
};

/**
 * A SLUID as Slurm prints it (src/common/sluid.c print_sluid): "s" and 13 Crockford base32 digits, e.g.
 * sEKNKTV3WPV500, the job directory's name under slurmstepd.scope in Slurm ≥ 26.05 by default.
 */
export const sluidPattern = /^s[0-9A-HJKMNP-TV-Z]{13}$/;

/**
 * The job id in a slurmstepd's process title, "slurmstepd: [<jobid>.<step>]" (slurmstepd.c
 * _set_job_log_prefix with log_build_step_id_str: the numeric id whenever the step knows it).
 */
export function jobIdFromStepdTitle(cmdline: string): string | undefined {
  return /^slurmstepd: \[(\d+)(?:\.[^\]]*)?\]/.exec(cmdline.replaceAll("\0", " "))?.[1];
}

/** The job id of the environment whose SLURM_JOB_SLUID is `sluid` (src/common/env.c sets both). */
export function jobIdFromEnvironments(sluid: string, envs: string[][]): string | undefined {
  for (const env of envs) {
    if (!env.includes(`SLURM_JOB_SLUID=${sluid}`)) continue;
    const id = env.find((kv) => kv.startsWith("SLURM_JOB_ID="))?.slice("SLURM_JOB_ID=".length);
    if (id && /^\d+$/.test(id)) return id;
  }
  return undefined;
}

/** Options of the resolver. */
export interface SluidResolverOptions {
  procfs: string;
  logger: Logger;
  security: SecurityManager;
}

/**
 * Replaces SLUID uuids of SLURM units by their job ids. A SLUID is looked up once (SLUIDs are unique) in the
 * titles of the unit's processes: each step's slurmstepd is in `<SLUID>/step_*\/slurm`. When no title names
 * the job (hidden /proc, a step starting), the job processes' environments are read in the slurm security
 * context. A unit still unmapped is left out of that scrape with a warning and tried again at the next one.
 */
export class SluidResolver {
  #jobIds = new Map<string, string>();
  #warned = new Set<string>();

  constructor(private opts: SluidResolverOptions) {}

  /** The units with SLUIDs replaced by job ids (unmapped ones dropped). */
  async resolve(units: Unit[]): Promise<Unit[]> {
    const sluids = units.filter((u) => sluidPattern.test(u.uuid));
    if (sluids.length === 0) return units;
    const live = new Set(sluids.map((u) => u.uuid));
    for (const k of this.#jobIds.keys()) if (!live.has(k)) this.#jobIds.delete(k);
    for (const k of this.#warned) if (!live.has(k)) this.#warned.delete(k);
    const pending = sluids.filter((u) => !this.#jobIds.has(u.uuid) && !this.#fromTitles(u));
    if (pending.length) await this.#fromEnvironments(pending);
    const out: Unit[] = [];
    for (const u of units) {
      if (!sluidPattern.test(u.uuid)) {
        out.push(u);
        continue;
      }
      const id = this.#jobIds.get(u.uuid);
      if (id) {
        out.push({ ...u, uuid: id });
      } else if (!this.#warned.has(u.uuid)) {
        this.#warned.add(u.uuid);
        this.opts.logger.warn("job id of SLUID cgroup not found yet; job left out until it is", {
          sluid: u.uuid,
          path: u.rel,
        });
      }
    }
    return out;
  }

  #fromTitles(u: Unit): boolean {
    for (const pid of u.pids) {
      let title: string | undefined;
      try {
        title = readOptional(`${this.opts.procfs}/${pid}/cmdline`);
      } catch {
        title = undefined; // a process we may not look at
      }
      const id = title === undefined ? undefined : jobIdFromStepdTitle(title);
      if (id) {
        this.#jobIds.set(u.uuid, id);
        return true;
      }
    }
    return false;
  }

  async #fromEnvironments(units: Unit[]): Promise<void> {
    const pids = [...new Set(units.flatMap((u) => u.pids))];
    const [res] = await this.opts.security.run(SLURM_ENVIRON_CONTEXT, [
      { kind: "readEnviron", procfs: this.opts.procfs, pids },
    ]);
    if (!res.ok) {
      this.opts.logger.debug("reading job environments for SLUIDs failed", { err: res.error });
      return;
    }
    const envs = res.value as Record<string, string[]>;
    for (const u of units) {
      const id = jobIdFromEnvironments(u.uuid, u.pids.map((p) => envs[String(p)] ?? []));
      if (id) this.#jobIds.set(u.uuid, id);
    }
  }
}
