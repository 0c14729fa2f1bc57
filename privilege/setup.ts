// Process-wide security set-up every subcommand calls once its features are known: the security
// flags, --print-capabilities, the drop to the required capability set, and the SecurityManager.

import { StartupError } from "../common/cli.ts";
import type { FlagSet, FlagSpec } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import { noNewPrivsAllThreads } from "../ffi/libc.ts";
import { addAclEntry, type AddedAcl, planAclEntries, removeAddedAcl } from "./acl.ts";
import type { DeclaredContext } from "./declare.ts";
import { AclRecord, repairLeftoverAcls } from "./acl_record.ts";
import { denoCachePaths, denoDir, firstReplaceable, writableFileDescriptors } from "./after_drop.ts";
import { ACCESS_POLICY, ACL_REMOVAL_CAP, type Component } from "./capabilities.ts";
import { capgetThread, capsOf, maskOf } from "./capset.ts";
import { dropRootTo, effectiveUid, trimTo } from "./drop.ts";
import { adoptOrphans } from "./exec_local.ts";
import { threadCredentials } from "./inspect.ts";
import { formatCapabilities } from "./print.ts";
import { type Capability, InlineSecurityManager, type SecurityManager, WorkerSecurityManager } from "./security.ts";
import { groupIds, resolveUser, type UserInfo } from "./users.ts";
import { NOT_ROOT } from "./writable.ts";
import { WORKER_MODULE_FILES } from "./worker_source.ts";

export { WORKER_MODULE_FILES } from "./worker_source.ts";

/** What a subcommand tells the security layer at start-up. */
export interface SecuritySetupOptions {
  component: Component;
  flags: FlagSet;
  logger: Logger;
  /** Each capability the enabled features need, with the flag that needs it (for log lines). */
  required: Map<Capability, string>;
  /** Paths the unprivileged user must be able to read (config files, ...). */
  readPaths: string[];
  /** Paths the unprivileged user must be able to write (data directories, ...). */
  readWritePaths: string[];
  /** The flag or config key that names a path, for the start-up error when it is unreachable. */
  pathKeys?: Record<string, string>;
  /**
   * Files and directories code or programs are loaded from after the drop (BPF objects); with the Worker
   * sources and Deno's caches, none may be replaceable by the run-as user (a root start refuses, exit 2).
   */
  loadPaths?: string[];
  /** Where the ACL record lives (tests). */
  aclStateDir?: string;
  /**
   * The declared security contexts (privilege/declare.ts): calls in any other context, or running what its
   * context does not declare, fail. Absent: not checked (tests running ad-hoc contexts).
   */
  contexts?: ReadonlyMap<string, DeclaredContext>;
}

/** The context ACL entries are removed in at shutdown (declared by the security layer itself). */
const ACL_CLEANUP_CONTEXT: DeclaredContext = {
  name: "delete_acl_entries",
  caps: [ACL_REMOVAL_CAP],
  flag: "security.run-as-user",
  reason: "removes the ACL entries added at start-up, at shutdown",
  uses: ["removeAddedAcls"],
};

/** The declared contexts plus the security layer's own. */
function withOwnContexts(
  declared: ReadonlyMap<string, DeclaredContext> | undefined,
): ReadonlyMap<string, DeclaredContext> | undefined {
  return declared && new Map([...declared, [ACL_CLEANUP_CONTEXT.name, ACL_CLEANUP_CONTEXT]]);
}

/** The installed security layer. */
export interface SecuritySetup {
  manager: SecurityManager;
  /** How the process was set up: dropped from root, trimmed, unprivileged, or unmanaged. */
  mode: "root-drop" | "trimmed" | "unprivileged" | "disabled";
  /** The capabilities left in the permitted set. */
  permitted: Capability[];
  /** Undoes what set-up did that must not outlive the process (ACL entries). */
  close(): Promise<void>;
}

/** Declares --security.run-as-user, --security.disable-cap-awareness and --print-capabilities. */
export function addSecurityFlags(fs: FlagSet): void {
  const specs: FlagSpec[] = [
    {
      name: "security.run-as-user",
      kind: "string",
      default: "nobody",
      help: "User to switch to when started as root (a name or a uid).",
    },
    {
      name: "security.disable-cap-awareness",
      kind: "bool",
      hidden: true,
      help: "Keep the starting user and capabilities (debugging only).",
    },
    {
      name: "security.drop-privileges",
      kind: "bool",
      default: true,
      hidden: true,
      help: "When started as root, switch to --security.run-as-user (CEEMS's hidden switch; tests on fixtures).",
    },
    {
      name: "print-capabilities",
      kind: "bool",
      help: "Print the capabilities the given flags need, with setcap and systemd lines, and exit.",
    },
  ];
  // A subcommand may already declare one of them (the API server declares --security.drop-privileges).
  for (const spec of specs) if (!fs.has(spec.name)) fs.add(spec);
}

/** Throws unless this process can read `path` (a file's bytes, or a directory's entries). */
function readable(path: string): void {
  if (Deno.statSync(path).isDirectory) {
    for (const _ of Deno.readDirSync(path)) break;
  } else {
    Deno.openSync(path, { read: true }).close();
  }
}

function logMissing(logger: Logger, required: Map<Capability, string>, permitted: Set<Capability>): void {
  for (const [cap, flag] of required) {
    if (!permitted.has(cap)) {
      logger.warn("missing capability: features needing it will fail", { capability: cap, flag });
    }
  }
}

/**
 * Checks every thread after the drop: target uid/gid everywhere, no effective or ambient capability,
 * no_new_privs set, and on main the bounding set trimmed to the permitted one.
 */
function verifyThreads(uid: number, gid: number, permitted: bigint, bounding: bigint): void {
  for (const t of threadCredentials("self")) {
    const bad = t.uid.some((u) => u !== uid) || t.gid.some((g) => g !== gid) || t.capEff !== 0n ||
      t.capAmb !== 0n || t.capInh !== 0n || (t.capPrm & ~permitted) !== 0n || !t.noNewPrivs ||
      (t.tid === Deno.pid && t.capBnd !== bounding);
    if (bad) {
      throw new StartupError(
        `privilege drop incomplete on thread ${t.tid} (${t.name}): uid=${t.uid} gid=${t.gid} ` +
          `CapPrm=${t.capPrm.toString(16)} CapEff=${t.capEff.toString(16)} CapBnd=${t.capBnd.toString(16)} ` +
          `NoNewPrivs=${t.noNewPrivs ? 1 : 0}`,
        1,
      );
    }
  }
}

/**
 * Start-up checks to run before building features: with --print-capabilities prints the report for
 * `required` and exits 0; as root, resolves --security.run-as-user (StartupError naming the flag).
 */
export function securityPreflight(component: Component, flags: FlagSet, required: Map<Capability, string>): void {
  if (flags.has("print-capabilities") && flags.bool("print-capabilities")) {
    Deno.stdout.writeSync(new TextEncoder().encode(formatCapabilities(component, required)));
    Deno.exit(0);
  }
  const switching = !flags.bool("security.disable-cap-awareness") &&
    (!flags.has("security.drop-privileges") || flags.bool("security.drop-privileges"));
  if (switching && effectiveUid() === 0) runAsUser(flags);
}

function runAsUser(flags: FlagSet): UserInfo {
  try {
    return resolveUser(flags.string("security.run-as-user"));
  } catch (e) {
    throw new StartupError(`--security.run-as-user: ${(e as Error).message}`);
  }
}

/**
 * Installs the security layer. As root: adds ACL entries, switches every thread to
 * --security.run-as-user and keeps exactly the required permitted set. As non-root with capabilities:
 * trims to the required set. Without capabilities: runs, and contexts needing one fail naming it.
 * With --print-capabilities: prints the set with setcap/systemd lines and exits 0.
 */
export function setupSecurity(opts: SecuritySetupOptions): Promise<SecuritySetup> {
  const { flags, logger } = opts;
  const required = new Map(opts.required);
  securityPreflight(opts.component, flags, required);
  const noDrop = flags.has("security.drop-privileges") && !flags.bool("security.drop-privileges") &&
    effectiveUid() === 0;
  if (flags.bool("security.disable-cap-awareness") || noDrop) {
    logger.warn(
      noDrop
        ? "privilege drop disabled (--no-security.drop-privileges): running as root"
        : "capability awareness disabled: privileged operations run with the starting credentials",
    );
    adoptOrphans();
    return Promise.resolve({
      manager: new InlineSecurityManager(),
      mode: "disabled",
      permitted: capsOf(capgetThread().permitted),
      close: () => Promise.resolve(),
    });
  }

  if (effectiveUid() !== 0) {
    const before = capgetThread().permitted;
    const kept = before === 0n ? (noNewPrivsAllThreads(), 0n) : trimTo(maskOf(required.keys()));
    adoptOrphans();
    const permitted = new Set(capsOf(kept));
    logMissing(logger, required, permitted);
    const mode = before === 0n ? "unprivileged" : "trimmed";
    // capset reaches only this thread: runtime threads started before this code (V8, tokio) keep what
    // execve gave them. With file capabilities (+p) that is a permitted set only; ambient capabilities
    // are effective there too, which no per-thread call can undo.
    const leaky = threadCredentials("self").filter((t) => t.capEff !== 0n || t.capAmb !== 0n);
    if (leaky.length) {
      logger.warn(
        "runtime threads kept effective capabilities from AmbientCapabilities; start as root (the process drops itself) or use setcap +p instead",
        { threads: leaky.length, effective: capsOf(leaky[0].capEff).join(",") },
      );
    }
    logger.info("security set up", { mode, capabilities: [...permitted].join(",") || "none" });
    return Promise.resolve({
      manager: new WorkerSecurityManager(permitted, required, undefined, undefined, withOwnContexts(opts.contexts)),
      mode,
      permitted: [...permitted],
      close: () => Promise.resolve(),
    });
  }

  const user = runAsUser(flags);
  const checkOnly = ACCESS_POLICY[opts.component] === "check";
  if (user.uid !== 0) refuseUnsafeStart(user, opts.loadPaths ?? []);
  let added: AddedAcl[] = [];
  if (user.uid !== 0 && !checkOnly) {
    added = addAcls(user, opts, logger);
    if (added.length) required.set(ACL_REMOVAL_CAP, "ACL entries removed at shutdown");
  }
  const mask = maskOf(required.keys());
  let bounding: bigint;
  try {
    bounding = dropRootTo(user.uid, user.gid, mask);
  } catch (e) {
    throw new StartupError(`cannot switch to user ${user.name}: ${(e as Error).message}`, 1);
  }
  if ((bounding & ~mask) !== 0n) {
    logger.warn("bounding set not trimmed (cap_setpcap missing at start): add CAP_SETPCAP to CapabilityBoundingSet=", {
      kept: capsOf(bounding & ~mask).join(","),
    });
  }
  adoptOrphans();
  if (user.uid !== 0) verifyThreads(user.uid, user.gid, mask, bounding);
  if (checkOnly) {
    for (const p of opts.readPaths) {
      try {
        readable(p);
      } catch (err) {
        const key = opts.pathKeys?.[p];
        throw new StartupError(
          `${key ? `${key}: ` : ""}${p} is not readable by ${user.name} (--security.run-as-user): ` +
            `${(err as Error).message}; give that user read access (this component adds no ACL)`,
        );
      }
    }
  }
  for (const e of added) {
    try {
      Deno.statSync(e.path);
    } catch (err) {
      throw new StartupError(`${e.path} not reachable as ${user.name}: ${(err as Error).message}`, 1);
    }
  }
  const permitted = new Set(capsOf(capgetThread().permitted));
  const manager = new WorkerSecurityManager(permitted, required, undefined, undefined, withOwnContexts(opts.contexts));
  logger.info("dropped privileges", {
    user: user.name,
    uid: user.uid,
    capabilities: [...permitted].join(",") || "none",
    acl_entries: added.length,
  });
  return Promise.resolve({
    manager,
    mode: "root-drop",
    permitted: [...permitted],
    close: async () => {
      if (!added.length) return;
      const [r] = await manager.run(ACL_CLEANUP_CONTEXT, [
        { kind: "removeAddedAcls", entries: added },
      ]);
      if (!r.ok) logger.warn("could not remove ACL entries", { err: r.error });
      else logger.info("removed ACL entries", { count: r.value as number });
    },
  });
}

/**
 * Refuses a root start (exit 2, one line) that would hand the run-as user a way back to root: a file
 * descriptor it could write through after the drop (Deno's caches, which a later root start loads), or
 * code loaded after the drop (Worker sources, BPF objects, cached modules) that it could replace.
 */
function refuseUnsafeStart(user: UserInfo, loadPaths: string[]): void {
  const fds = writableFileDescriptors();
  if (fds.length) {
    throw new StartupError(
      `started as root holding ${fds[0]} open for writing, which ${user.name} could change after the drop and a ` +
        "later root start would load: run with DENO_DIR read-only (as the package does under its units) or " +
        "DENO_DIR=/dev/null, or run the compiled binary",
    );
  }
  const program = new URL("..", import.meta.url).pathname;
  const why = firstReplaceable([...WORKER_MODULE_FILES, ...loadPaths, program], {
    uid: user.uid,
    gids: groupIds(user),
  });
  if (why) {
    throw new StartupError(
      `refusing to start as root: ${why}, and it is loaded after the switch to ${user.name} ` +
        "(--security.run-as-user); make it writable by root only",
    );
  }
  // Deno's cache is loaded by every later root start, whatever its run-as user: no user but root may change it.
  const cache = denoDir();
  const cacheWhy = cache ? firstReplaceable(denoCachePaths(cache), NOT_ROOT) : undefined;
  if (cacheWhy) {
    throw new StartupError(
      `refusing to start as root: ${cacheWhy}, and Deno's cache (DENO_DIR) is loaded by later root starts; make ` +
        "it writable by root only, or run with DENO_DIR=/dev/null",
    );
  }
}

/**
 * Adds the ACL entries the run-as user needs (after removing what a dead run left), recording each in a
 * root-only file first so a start after kill -9 can remove exactly these.
 */
function addAcls(user: UserInfo, opts: SecuritySetupOptions, logger: Logger): AddedAcl[] {
  const plan = planAclEntries(user, [...opts.readPaths, ...WORKER_MODULE_FILES], opts.readWritePaths);
  try {
    repairLeftoverAcls(logger, opts.aclStateDir);
  } catch (e) {
    logger.warn("could not repair ACL entries of a previous run", { err: (e as Error).message });
  }
  if (plan.length === 0) return [];
  let record: AclRecord;
  try {
    record = new AclRecord(opts.aclStateDir);
  } catch (e) {
    throw new StartupError(`cannot record ACL entries (needed for ${plan[0].path}): ${(e as Error).message}`, 1);
  }
  for (const e of plan) {
    let a: AddedAcl | undefined;
    try {
      a = addAclEntry(e);
    } catch (err) {
      for (const done of record.entries) removeAddedAcl(done); // still root: undo now, not at the next start
      throw new StartupError(`cannot give ${user.name} access: ${(err as Error).message}`, 1);
    }
    if (a) record.add(a);
  }
  return [...record.entries];
}
