// Child processes of the demo: started with their output in a log file, waited for until a URL answers,
// stopped with SIGTERM (SIGKILL after 5 s) in reverse order of start.

import { join } from "node:path";
import { fileURLToPath } from "node:url";

const mainTs = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** A started child. */
export interface Proc {
  name: string;
  child: Deno.ChildProcess;
  log: string;
}

/** The command line of `ceems <args>` with the Deno running this script. */
export function ceemsCommand(args: string[]): [string, string[]] {
  return [Deno.execPath(), ["run", "-A", mainTs, ...args]];
}

/**
 * Environment of the children: no colours, and Deno's caches in memory (a server started as root refuses to
 * hold a cache it could still write after dropping privileges, as the packaged `ceems` runs it).
 */
export const CHILD_ENV: Record<string, string> = { NO_COLOR: "1", DENO_DIR: "/dev/null" };

/** Starts `cmd args`, its stdout and stderr going to `<logDir>/<name>.log`. */
export function start(name: string, cmd: string, args: string[], logDir: string): Proc {
  const log = join(logDir, `${name}.log`);
  const f = Deno.openSync(log, { write: true, create: true, truncate: true });
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped", env: CHILD_ENV })
    .spawn();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) f.writeSync(c);
  };
  Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() => f.close());
  return { name, child, log };
}

/** Waits until `url` answers (any status) or the process exits; throws with the log's tail then. */
export async function waitReady(p: Proc, url: string, init: RequestInit = {}, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  p.child.status.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    try {
      const r = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
      await r.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  let tail = "";
  try {
    tail = Deno.readTextFileSync(p.log).slice(-1500);
  } catch {
    // no log yet
  }
  throw new Error(`${p.name} did not start${exited ? " (exited)" : ""}:\n${tail}`);
}

/** Stops the processes, last started first. */
export async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of [...procs].reverse()) {
    try {
      p.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      try {
        p.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await p.child.status;
    clearTimeout(t);
  }
}
