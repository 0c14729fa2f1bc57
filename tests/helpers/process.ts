// Test helpers that start `ceems <subcommand>` as a real subprocess on a free port, wait until it
// answers, and stop it by signal, collecting its stderr for assertions.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../scripts/free_port.ts";

/** Absolute path of the repository's main.ts. */
export const mainTs = join(fileURLToPath(new URL("../../", import.meta.url)), "main.ts");
/** Repository root. */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Environment of a ceems subprocess: no colours, and Deno's caches in memory (DENO_DIR=/dev/null), as
 * packaging/bin/ceems runs it: a root start refuses to run holding a writable cache descriptor.
 */
export const CEEMS_ENV: Record<string, string> = { NO_COLOR: "1", DENO_DIR: "/dev/null" };

export { freePort };

/** A running ceems subprocess. */
export interface CeemsProcess {
  child: Deno.ChildProcess;
  port: number;
  base: string;
  /** Sends SIGTERM and waits; returns exit code and everything written to stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
  /** Everything written to stderr so far. */
  stderr(): string;
}

let sharedDeno: string | undefined;
/** A world-executable copy of the running deno binary (root's npx cache is not reachable by others). */
export function worldExecutableDeno(): string {
  if (sharedDeno) return sharedDeno;
  const dir = Deno.makeTempDirSync({ prefix: "ceems-deno-" });
  Deno.chmodSync(dir, 0o755);
  const path = join(dir, "deno");
  Deno.copyFileSync(Deno.execPath(), path);
  Deno.chmodSync(path, 0o755);
  sharedDeno = path;
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  return path;
}

/** Runs `ceems <args>` to completion and returns its status and output (as `uid` with a deno it can execute). */
export async function runCeems(
  args: string[],
  opts: { env?: Record<string, string>; uid?: number; gid?: number } = {},
) {
  const out = await new Deno.Command(opts.uid ? worldExecutableDeno() : Deno.execPath(), {
    args: ["run", "-A", mainTs, ...args],
    env: { ...CEEMS_ENV, ...opts.env },
    uid: opts.uid,
    gid: opts.gid,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Starts `ceems <args> --web.listen-address=127.0.0.1:<free port>` and waits for `readyPath`. */
export async function startCeems(
  args: string[],
  opts: {
    env?: Record<string, string>;
    readyPath?: string;
    scheme?: "http" | "https";
    listen?: boolean;
    fetchInit?: RequestInit & { client?: Deno.HttpClient };
    uid?: number;
    gid?: number;
    /** Working directory of the subprocess (relative flag paths resolve against it). */
    cwd?: string;
    /** The deno executable (default: this one). */
    deno?: string;
    /** Flags of `deno run` before main.ts. */
    runFlags?: string[];
    /** How long to wait for readyPath (default 20 s). */
    readyTimeoutMs?: number;
    /** A command that execs the rest of its arguments (same pid), run in front of deno: `prlimit --nofile=…`. */
    wrapper?: string[];
  } = {},
): Promise<CeemsProcess> {
  const port = freePort();
  const listenArgs = opts.listen === false ? [] : [`--web.listen-address=127.0.0.1:${port}`];
  const deno = opts.deno ?? (opts.uid ? worldExecutableDeno() : Deno.execPath());
  const argv = [...opts.wrapper ?? [], deno, "run", "-A", ...opts.runFlags ?? [], mainTs, ...args, ...listenArgs];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { ...CEEMS_ENV, ...opts.env },
    uid: opts.uid,
    gid: opts.gid,
    cwd: opts.cwd,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const chunks: Uint8Array[] = [];
  const drained = (async () => {
    for await (const c of child.stderr) chunks.push(c);
  })();
  const stderrText = () => new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  const base = `${opts.scheme ?? "http"}://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  let ready = false;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(base + (opts.readyPath ?? "/health"), opts.fetchInit);
      await r.body?.cancel();
      ready = true;
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
    const st = await Promise.race([child.status, new Promise((r) => setTimeout(() => r(null), 1))]);
    if (st) break;
  }
  const proc: CeemsProcess = {
    child,
    port,
    base,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
      const st = await child.status;
      await drained;
      return { code: st.code, stderr: stderrText() };
    },
    stderr: stderrText,
  };
  if (!ready) {
    const { stderr } = await proc.stop("SIGKILL");
    throw new Error(`ceems ${args[0]} did not become ready:\n${stderr}`);
  }
  return proc;
}

/** Parses exposition text into `name{labels} -> value` (labels sorted), ignoring comments. */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = m[2] ? [...m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)] : [];
    const key = `${m[1]}{${labels.map((l) => `${l[1]}="${l[2]}"`).sort().join(",")}}`;
    out.set(key, Number(m[3]));
  }
  return out;
}

/** Extracts `# TYPE name type` lines. */
export function parseTypes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1], m[2]);
  return out;
}
