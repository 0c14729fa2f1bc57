// CEEMS's Grafana Alloy target discoverer (--discoverer.alloy-targets): every process of every SLURM job or
// k8s pod as a profiling target, served as JSON at --web.targets-path (default /alloy-targets).

import type { FlagSet } from "../../common/flags.ts";
import type { Logger } from "../../common/log.ts";
import type { DeclaredContext, SecurityNeeds } from "../../privilege/declare.ts";
import type { SecurityManager } from "../../privilege/security.ts";
import { sluidPattern } from "../slurm/sluid.ts";
import { detectVersion, discoverUnits, findRoots, hierarchyOf, type Manager } from "../units/discovery.ts";
import { type CgroupOptions, cgroupOptions } from "../units/flags.ts";
import { isDirectory } from "../../common/fs.ts";

/** Label of a target's process id and of its unit, as CEEMS (and Pyroscope's discovery) name them. */
const LABEL_PID = "__process_pid__";
const LABEL_SERVICE = "service_name";
/** Target id of the exporter's own process (--discoverer.alloy-targets.self-profiler). */
export const SELF_TARGET_ID = "__internal_ceems_exporter";
/** Processes CEEMS never hands to a profiler when filtering SLURM jobs by environment. */
const SLURM_IGNORED_PROCS = /slurmstepd:(.*)|sleep ([0-9]+)|\/bin\/bash (.*)\/slurm_script/;

/** One target in CEEMS's JSON. */
export interface AlloyTarget {
  targets: string[];
  labels: Record<string, string>;
}

/** The --discoverer.alloy-targets* flags, read once. */
export interface AlloyTargetOptions {
  enabled: boolean;
  /** Only processes with an environment entry starting with one of these (empty: every process). */
  envVars: string[];
  selfProfiler: boolean;
  cgroup: CgroupOptions;
}

/** Declares --discoverer.alloy-targets, its .env-var and .self-profiler, and --web.targets-path. */
export function addAlloyTargetFlags(fs: FlagSet): void {
  fs.add({
    name: "discoverer.alloy-targets",
    kind: "bool",
    help: "Enable Grafana Alloy targets discoverer. Supported for SLURM and k8s.",
  });
  fs.add({
    name: "discoverer.alloy-targets.env-var",
    kind: "strings",
    help: "Enable continuous profiling by Grafana Alloy only on the processes having any of these environment " +
      "variables (repeatable).",
  });
  fs.add({
    name: "discoverer.alloy-targets.self-profiler",
    kind: "bool",
    help: "Enable continuous profiling by Grafana Alloy on the exporter's own process.",
  });
  fs.add({
    name: "web.targets-path",
    kind: "string",
    default: "/alloy-targets",
    help: "Path under which to expose Grafana Alloy targets.",
    validate: (v) => ((v as string).startsWith("/") ? undefined : "must start with /"),
  });
}

/** Reads the discoverer flags (the cgroup flags are the unit collectors'). */
export function alloyTargetOptions(fs: FlagSet): AlloyTargetOptions {
  return {
    enabled: fs.bool("discoverer.alloy-targets"),
    envVars: fs.strings("discoverer.alloy-targets.env-var"),
    selfProfiler: fs.bool("discoverer.alloy-targets.self-profiler"),
    cgroup: cgroupOptions(fs),
  };
}

/** The context process environments are read in, for --discoverer.alloy-targets.env-var. */
export const ALLOY_TARGETS_CONTEXT: DeclaredContext = {
  name: "profiling_targets_filter",
  caps: ["cap_sys_ptrace", "cap_dac_read_search"],
  flag: "discoverer.alloy-targets.env-var",
  reason: "filters profiling targets by their environment (/proc/<pid>/environ)",
  uses: ["readEnviron"],
};

/** What the discoverer declares: environments are read only to filter by --discoverer.alloy-targets.env-var. */
export function alloyTargetSecurity(o: AlloyTargetOptions, manager: Manager | undefined): SecurityNeeds {
  return o.enabled && manager && o.envVars.length ? { contexts: [ALLOY_TARGETS_CONTEXT] } : {};
}

/**
 * The manager whose units are targets, as CEEMS picks it: SLURM when its collector is on, else k8s; undefined
 * (no discoverer, no targets path) otherwise.
 */
export function alloyTargetManager(enabledCollectors: string[]): Manager | undefined {
  if (enabledCollectors.includes("slurm")) return "slurm";
  if (enabledCollectors.includes("k8s")) return "k8s";
  return undefined;
}

/** What the discoverer reads. */
export interface DiscovererContext {
  manager: Manager;
  paths: { procfs: string; cgroupfs: string };
  security: SecurityManager;
  logger: Logger;
}

/** Finds the targets: each process of each unit, optionally filtered by its environment. */
export class AlloyTargetDiscoverer {
  readonly #o: AlloyTargetOptions;
  readonly #c: DiscovererContext;

  constructor(opts: AlloyTargetOptions, ctx: DiscovererContext) {
    this.#o = opts;
    this.#c = ctx;
  }

  /** The targets now, in CEEMS's order (units, then their processes); throws when the cgroups cannot be read. */
  async discover(): Promise<AlloyTarget[]> {
    const { manager, paths } = this.#c;
    const version = detectVersion(paths.cgroupfs, this.#o.cgroup.forceVersion);
    const hierarchy = hierarchyOf(version, paths.cgroupfs, this.#o.cgroup.activeSubsystem);
    if (!isDirectory(hierarchy)) throw new Error(`cgroup hierarchy ${hierarchy} does not exist`);
    const units = discoverUnits({ manager, version, hierarchy, roots: findRoots(manager, version, hierarchy) })
      // A Slurm ≥ 26.05 job directory named by its SLUID: the slurm collector maps it; targets wait for job ids.
      .filter((u) => !sluidPattern.test(u.uuid));
    // As CEEMS: only processes procfs shows (a fixture tree may list more in cgroup.procs).
    const alive = (pid: number) => isDirectory(`${paths.procfs}/${pid}`);
    let perUnit = units.map((u) => ({ uuid: u.uuid, pids: u.pids.filter(alive) }));
    if (this.#o.envVars.length) perUnit = await this.#filterByEnv(perUnit);
    const out: AlloyTarget[] = [];
    for (const u of perUnit) {
      for (const pid of u.pids) {
        out.push({ targets: [u.uuid], labels: { [LABEL_PID]: String(pid), [LABEL_SERVICE]: u.uuid } });
      }
    }
    if (this.#o.selfProfiler) {
      out.push({
        targets: [SELF_TARGET_ID],
        labels: { [LABEL_PID]: String(Deno.pid), [LABEL_SERVICE]: SELF_TARGET_ID },
      });
    }
    return out;
  }

  /** Keeps processes with an environment entry starting with one of the variables (CEEMS: prefix match). */
  async #filterByEnv(units: { uuid: string; pids: number[] }[]): Promise<{ uuid: string; pids: number[] }[]> {
    const pids = units.flatMap((u) => u.pids);
    if (pids.length === 0) return [];
    const [res] = await this.#c.security.run(ALLOY_TARGETS_CONTEXT, [
      { kind: "readEnviron", procfs: this.#c.paths.procfs, pids },
    ]);
    if (!res.ok) throw new Error(`reading process environments: ${res.error}`);
    const envs = res.value as Record<string, string[]>;
    const ignored = (pid: number) => {
      if (this.#c.manager !== "slurm") return false;
      // The command line is world-readable; CEEMS skips a process whose command line it cannot read.
      let cmdline: string;
      try {
        cmdline = Deno.readTextFileSync(`${this.#c.paths.procfs}/${pid}/cmdline`).replaceAll("\0", " ").trim();
      } catch {
        return true;
      }
      return cmdline === "" || SLURM_IGNORED_PROCS.test(cmdline);
    };
    const wanted = (pid: number) =>
      !ignored(pid) && (envs[String(pid)] ?? []).some((kv) => this.#o.envVars.some((v) => kv.startsWith(v)));
    return units.map((u) => ({ uuid: u.uuid, pids: u.pids.filter(wanted) })).filter((u) => u.pids.length > 0);
  }
}

/** The targets handler: CEEMS's JSON, 503 beyond `maxRequests` concurrent requests, 500 with the error text. */
export function alloyTargetsHandler(
  discoverer: AlloyTargetDiscoverer,
  maxRequests: number,
  logger: Logger,
): () => Promise<Response> {
  let inFlight = 0;
  return async () => {
    if (maxRequests > 0 && inFlight >= maxRequests) {
      return new Response(`Limit of concurrent requests reached (${maxRequests}), try again later.\n`, {
        status: 503,
      });
    }
    inFlight++;
    try {
      const targets = await discoverer.discover();
      // Go's encoder writes a nil slice as null and ends with a newline.
      return new Response(JSON.stringify(targets.length ? targets : null) + "\n", {
        headers: { "Content-Type": "application/json" },
      });
    } catch (e) {
      logger.error("error gathering targets", { err: e });
      return new Response(`An error has occurred while gathering targets:\n\n${(e as Error).message}\n`, {
        status: 500,
        headers: { "Content-Type": "text/plain; charset=utf-8" },
      });
    } finally {
      inFlight--;
    }
  };
}
