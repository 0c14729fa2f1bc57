// SLURM resource manager: runs CEEMS's `sacct` and `sacctmgr` commands (as root through the security
// manager's cap_setuid/cap_setgid context when privileged, else as the current user) and parses their output.

import { join } from "node:path";
import type { Logger } from "../../common/log.ts";
import { commandOutput } from "../../privilege/command.ts";
import type { DeclaredContext } from "../../privilege/declare.ts";
import type { SecurityManager } from "../../privilege/security.ts";
import { findTool, resolveRootTool, SYSTEM_PATH } from "../../privilege/tools.ts";
import { loaderEnvNames } from "../../privilege/exec.ts";
import type { ClusterConfig } from "../config.ts";
import type { Project, Unit, User } from "../models.ts";
import { type Membership, type RawUnits, type ResourceManager, SourceError } from "./manager.ts";
import { judgeParse, parseAssociations, parseSacctSliced, SACCT_FIELDS, SACCT_STATES } from "./sacct_parse.ts";

/** How SLURM commands are executed. */
export type ExecMode = "privileged" | "plain";

/** The context sacct/sacctmgr run in as root: a root child holds at most these capabilities. */
export const SLURM_TOOL_CONTEXT: DeclaredContext = {
  name: "slurm",
  caps: ["cap_setuid", "cap_setgid"],
  flag: "config.file",
  reason: "runs sacct/sacctmgr as root for a SLURM cluster",
  uses: ["exec-root"],
};

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
    this.#sacct = this.#resolve(cfg.cli.path, "sacct");
    this.#sacctmgr = this.#resolve(cfg.cli.path, "sacctmgr");
    const unsafe = loaderEnvNames(cfg.cli.environmentVariables);
    if (unsafe.length) throw new Error(`cli.environment_variables: ${unsafe.join(", ")} may not be set`);
    this.#env = { SLURM_TIME_FORMAT: "%Y-%m-%dT%H:%M:%S%z", ...cfg.cli.environmentVariables };
  }

  /**
   * The absolute path of a SLURM command (in `cli.path`, else the system directories), resolved at start-up.
   * Run as root it must be replaceable by root alone. A missing one fails each run until it appears, and is
   * then checked exactly as at start-up before it is run (an API server may start before SLURM is installed).
   */
  #resolve(dir: string, name: string): string {
    const spec = dir ? join(dir, name) : name;
    const path = findTool(spec);
    if (!path) return spec;
    return this.mode === "privileged" ? resolveRootTool(spec, "cli.path") : path;
  }

  /** Runs a SLURM command and returns its stdout; throws with stderr on failure. */
  #run([spec, ...args]: string[], signal?: AbortSignal): Promise<string> {
    let program = findTool(spec);
    if (!program) return Promise.reject(new Error(`${spec}: not found in ${SYSTEM_PATH}`));
    if (this.mode === "privileged") {
      try {
        program = resolveRootTool(spec, "cli.path");
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const cmd = [program, ...args];
    return commandOutput(
      this.security,
      SLURM_TOOL_CONTEXT,
      { cmd, env: this.#env, timeoutMs: this.timeoutMs, ...(signal ? { signal } : {}) },
      { asRoot: this.mode === "privileged" },
    );
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
