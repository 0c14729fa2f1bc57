// SLURM resource manager: runs CEEMS's `sacct` and `sacctmgr` commands (as root through the security
// manager's cap_setuid/cap_setgid context when privileged, else as the current user) and parses their output.

import { join } from "node:path";
import type { Logger } from "../../common/log.ts";
import type { SecurityManager } from "../../privilege/security.ts";
import type { ClusterConfig } from "../config.ts";
import type { Project, Unit, User } from "../models.ts";
import { type Membership, type RawUnits, type ResourceManager, SourceError } from "./manager.ts";
import { judgeParse, parseAssociations, parseSacctSliced, SACCT_FIELDS, SACCT_STATES } from "./sacct_parse.ts";

/** How SLURM commands are executed. */
export type ExecMode = "privileged" | "plain";

const pad = (n: number) => String(n).padStart(2, "0");

/** Formats epoch ms as sacct's --starttime/--endtime value (local time, as SLURM reads it). */
export function sacctTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${
    pad(d.getSeconds())
  }`;
}

/** True when the process may run commands as another uid (root, or cap_setuid+cap_setgid permitted). */
export function canSwitchUser(): boolean {
  if (Deno.uid() === 0) return true;
  try {
    const st = Deno.readTextFileSync("/proc/self/status");
    const m = /^CapPrm:\s*([0-9a-f]+)$/m.exec(st);
    if (!m) return false;
    const bits = BigInt("0x" + m[1]);
    return (bits & (1n << 6n)) !== 0n && (bits & (1n << 7n)) !== 0n;
  } catch {
    return false;
  }
}

/** The SLURM manager of one cluster. */
export class SlurmManager implements ResourceManager {
  readonly kind = "slurm";
  readonly clusterId: string;
  readonly #sacct: string;
  readonly #sacctmgr: string;
  readonly #env: Record<string, string>;

  constructor(
    cfg: ClusterConfig,
    private security: SecurityManager,
    private mode: ExecMode,
    private logger: Logger,
    private timeoutMs = 60_000,
  ) {
    this.clusterId = cfg.id;
    this.#sacct = cfg.cli.path ? join(cfg.cli.path, "sacct") : "sacct";
    this.#sacctmgr = cfg.cli.path ? join(cfg.cli.path, "sacctmgr") : "sacctmgr";
    this.#env = { SLURM_TIME_FORMAT: "%Y-%m-%dT%H:%M:%S%z", ...cfg.cli.environmentVariables };
  }

  /** Runs a SLURM command and returns its stdout; throws with stderr on failure. */
  async #run(cmd: string[], signal?: AbortSignal): Promise<string> {
    if (this.mode === "privileged") {
      const [r] = await this.security.run({ name: "slurm", caps: ["cap_setuid", "cap_setgid"] }, [
        { kind: "exec", cmd, uid: 0, gid: 0, env: this.#env, timeoutMs: this.timeoutMs },
      ]);
      if (!r.ok) throw new Error(`${cmd[0]}: ${r.error}`);
      const v = r.value as { code: number; stdout: string; stderr: string; timedOut: boolean };
      if (v.timedOut) throw new Error(`${cmd[0]} timed out after ${this.timeoutMs} ms`);
      if (v.code !== 0) throw new Error(`${cmd[0]} exited with ${v.code}: ${v.stderr.trim()}`);
      return v.stdout;
    }
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env: this.#env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)])
        : AbortSignal.timeout(this.timeoutMs),
    }).output();
    const dec = new TextDecoder();
    if (out.code !== 0) throw new Error(`${cmd[0]} exited with ${out.code}: ${dec.decode(out.stderr).trim()}`);
    return dec.decode(out.stdout);
  }

  async fetchRaw(startMs: number, endMs: number, signal?: AbortSignal): Promise<RawUnits> {
    const text = await this.#run([
      this.#sacct,
      "-D",
      "-X",
      "--noheader",
      "--allusers",
      "--parsable2",
      "--format",
      SACCT_FIELDS.join(","),
      "--state",
      SACCT_STATES,
      "--starttime",
      sacctTime(startMs),
      "--endtime",
      sacctTime(endMs),
    ], signal);
    return { format: "sacct", text };
  }

  async fetchUnits(startMs: number, endMs: number, signal?: AbortSignal): Promise<Unit[]> {
    const raw = await this.fetchRaw(startMs, endMs, signal);
    const { units, skipped } = await parseSacctSliced(raw.text, this.clusterId, startMs, endMs);
    const verdict = judgeParse(units.length, skipped.length, skipped[0]);
    if (verdict.error) throw new SourceError(verdict.error);
    if (verdict.warning) this.logger.warn(verdict.warning, { cluster_id: this.clusterId });
    return units;
  }

  async knowsUnits(uuids: string[], signal?: AbortSignal): Promise<boolean> {
    if (!uuids.length) return true;
    // With --jobs and no --starttime, sacct searches all of its history.
    const out = await this.#run(
      [this.#sacct, "-X", "--noheader", "--allusers", "--parsable2", "--format", "jobidraw", "--jobs", uuids.join(",")],
      signal,
    );
    const wanted = new Set(uuids);
    return out.split("\n").some((l) => wanted.has(l.trim()));
  }

  async fetchMembership(_endMs: number): Promise<Membership> {
    const out = await this.#run([
      this.#sacctmgr,
      "--parsable2",
      "--noheader",
      "list",
      "associations",
      "format=Account,User",
    ]);
    const { users, projects } = parseAssociations(out);
    const u: User[] = [...users].sort(([a], [b]) => a < b ? -1 : 1).map(([name, ps]) => ({
      uid: "",
      cluster_id: this.clusterId,
      resource_manager: "slurm",
      name,
      projects: [...ps].sort(),
      tags: [],
    }));
    const p: Project[] = [...projects].sort(([a], [b]) => a < b ? -1 : 1).map(([name, us]) => ({
      uid: "",
      cluster_id: this.clusterId,
      resource_manager: "slurm",
      name,
      users: [...us].sort(),
      tags: [],
    }));
    return { users: u, projects: p };
  }
}
