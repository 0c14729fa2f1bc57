// External commands, resolved once at start-up: a bare name is looked up in a fixed list of system
// directories (never $PATH), and a tool run as root is refused when anyone but root could replace it.

import { NOT_ROOT, replaceableBy } from "./writable.ts";

/** The system directories commands are looked up in, in order; also the PATH every child gets. */
export const SYSTEM_DIRS: readonly string[] = [
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/sbin",
  "/usr/bin",
  "/sbin",
  "/bin",
];

/** PATH of every command the product runs. */
export const SYSTEM_PATH = SYSTEM_DIRS.join(":");

function isExecutableFile(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * The absolute path of a command: `spec` itself when absolute, else the first executable `spec` in
 * `dirs` (the system directories). Undefined when there is none.
 */
export function findTool(spec: string, dirs: readonly string[] = SYSTEM_DIRS): string | undefined {
  if (spec.startsWith("/")) return isExecutableFile(spec) ? spec : undefined;
  if (!spec || spec.includes("/")) return undefined;
  for (const d of dirs) if (isExecutableFile(`${d}/${spec}`)) return `${d}/${spec}`;
  return undefined;
}

/**
 * Throws, in one line, unless `path` and every directory above it (symbolic links resolved) can be changed
 * by root alone: a tool run as root must not be replaceable by anyone else.
 */
export function checkRootTool(path: string): void {
  const why = replaceableBy(path, NOT_ROOT);
  if (why) throw new Error(`refusing to run ${path} as root: ${why}`);
}

/**
 * Resolves a command run as root: found by `findTool`, then checked by `checkRootTool`. Throws one line
 * naming the flag when absent or replaceable by someone other than root.
 */
export function resolveRootTool(spec: string, flag: string, dirs: readonly string[] = SYSTEM_DIRS): string {
  const path = findTool(spec, dirs);
  if (!path) {
    throw new Error(`${flag}: ${spec} not found${spec.startsWith("/") ? "" : ` in ${dirs.join(":")}`}`);
  }
  try {
    checkRootTool(path);
  } catch (e) {
    throw new Error(`${flag}: ${(e as Error).message}`);
  }
  return path;
}
