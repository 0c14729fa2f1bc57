// The one way the product starts a command (synchronous part): an absolute path, a fixed minimal environment,
// nothing open but stdin (null), stdout and stderr (pipes); the caller reads with exec_collect.ts.

import { cloexecFrom3 } from "../ffi/libc.ts";
import { SYSTEM_PATH } from "./tools.ts";

/** Output beyond this many bytes (stdout and stderr together) fails the command. */
export const MAX_OUTPUT_BYTES = 16 << 20;

/** Environment variable every child carries: which run of which process started it (finds its orphans). */
export const EXEC_MARKER = "CEEMS_EXEC_ID";

/** A command to run. */
export interface ExecRequest {
  /** Absolute path of the program, then its arguments. */
  cmd: string[];
  /** Variables added to the fixed environment (declared ones, e.g. from a root-owned configuration file). */
  env?: Record<string, string>;
  /** The child and everything it started are killed at this deadline. */
  timeoutMs: number;
  /** Output cap (default MAX_OUTPUT_BYTES). */
  maxBytes?: number;
  /** Ends the run as its deadline would (a stopping server); stays on the calling thread, never posted. */
  signal?: AbortSignal;
}

/** How a run ended. */
export interface ExecOutcome {
  /**
   * exited: the command exited and closed its output; timeout: the deadline came first; overflow: too much
   * output; aborted: the request's signal fired first.
   */
  status: "exited" | "timeout" | "overflow" | "aborted";
  /** Exit status (null unless exited; 128+n when killed by signal n). */
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** The whole environment of a child: system PATH, LANG=C, the declared variables, the marker. */
export function childEnv(req: ExecRequest, marker: string): Record<string, string> {
  const unsafe = loaderEnvNames(req.env ?? {});
  if (unsafe.length) throw new Error(`${req.cmd[0]}: refusing environment variables ${unsafe.join(", ")}`);
  return { ...req.env, PATH: SYSTEM_PATH, LANG: "C", [EXEC_MARKER]: marker };
}

/**
 * glibc's list of variables it ignores for setuid programs (UNSECURE_ENVVARS, plus every LD_*): a child made
 * root by setuid after fork is no setuid program, so the loader and libc would honour them (LD_PRELOAD...).
 */
const LOADER_VARS = new Set([
  "GCONV_PATH",
  "GETCONF_DIR",
  "GLIBC_TUNABLES",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "MALLOC_ARENA_MAX",
  "MALLOC_ARENA_TEST",
  "MALLOC_MMAP_MAX_",
  "MALLOC_MMAP_THRESHOLD_",
  "MALLOC_PERTURB_",
  "MALLOC_TOP_PAD_",
  "MALLOC_TRIM_THRESHOLD_",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "TMPDIR",
  "TZDIR",
]);

/** Names in `env` that the dynamic loader or libc would act on (never passed to a child). */
export function loaderEnvNames(env: Record<string, string>): string[] {
  return Object.keys(env).filter((k) => k.startsWith("LD_") || LOADER_VARS.has(k));
}

/**
 * Starts `req` (synchronously: the fork happens on the calling thread, which gives the child its
 * credentials). `ids` sets the child's uid and gid (the caller raises cap_setuid and cap_setgid first).
 */
export function spawnChild(req: ExecRequest, marker: string, ids?: { uid: number; gid: number }): Deno.ChildProcess {
  const [program, ...args] = req.cmd;
  if (!program?.startsWith("/")) {
    throw new Error(`${program}: not an absolute path (commands are resolved at start-up)`);
  }
  cloexecFrom3();
  return new Deno.Command(program, {
    args,
    clearEnv: true,
    env: childEnv(req, marker),
    uid: ids?.uid,
    gid: ids?.gid,
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
