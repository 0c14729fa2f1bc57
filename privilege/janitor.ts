// The process tree below this process, read from /proc (task/*/children, status, environ): what commands
// left behind, killed and reaped. Synchronous calls only (the privileged Worker runs the root sweep).

import { killRaw, reapChild } from "../ffi/libc.ts";

const SIGKILL = 9;

/** What /proc says about one process. */
export interface ProcInfo {
  pid: number;
  /** Real uid. */
  uid: number;
  /** State letter (R, S, Z, ...). */
  state: string;
}

/** Direct children of `pid` (every thread's children list), or [] when it is gone. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const text = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`).trim();
        if (text) out.push(...text.split(" ").map(Number));
      } catch {
        // thread ended
      }
    }
  } catch {
    // process ended
  }
  return out;
}

/** Every descendant of `pid` (children first), as far as /proc shows it now. */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const queue = childrenOf(pid);
  const seen = new Set<number>();
  while (queue.length) {
    const p = queue.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
    queue.push(...childrenOf(p));
  }
  return out;
}

/** Uid and state of a process, or undefined when it is gone. */
export function procInfo(pid: number): ProcInfo | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(text)?.[1]);
    const state = /^State:\s+(\S)/m.exec(text)?.[1] ?? "?";
    return { pid, uid, state };
  } catch {
    return undefined;
  }
}

/** The value of variable `name` in a process's environment (readable for our own uid's), or undefined. */
export function envOf(pid: number, name: string): string | undefined {
  try {
    const env = Deno.readTextFileSync(`/proc/${pid}/environ`);
    const prefix = `${name}=`;
    return env.split("\0").find((v) => v.startsWith(prefix))?.slice(prefix.length);
  } catch {
    return undefined;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Kills (SIGKILL) every live descendant of this process whose uid differs from ours: what commands run as
 * root left behind, orphans included (this process is their subreaper). Repeats until none is left (a
 * process may fork meanwhile), at most `rounds` times 5 ms. Needs cap_kill when they run as root.
 * Returns the pids killed.
 */
export function killForeignDescendants(rounds = 40): number[] {
  const self = Deno.pid;
  const me = procInfo(self)!.uid;
  const killed = new Set<number>();
  for (let i = 0; i < rounds; i++) {
    const live = descendantsOf(self).map(procInfo).filter((p): p is ProcInfo =>
      p !== undefined && p.uid !== me && p.state !== "Z" && p.state !== "X"
    );
    if (live.length === 0) break;
    for (const p of live) if (killRaw(p.pid, SIGKILL)) killed.add(p.pid);
    sleepSync(5);
  }
  return [...killed];
}

/** Kills (SIGKILL) the given processes of our own uid; returns those signalled. */
export function killPids(pids: number[]): number[] {
  return pids.filter((p) => {
    try {
      return killRaw(p, SIGKILL);
    } catch {
      return false;
    }
  });
}

/** Reaps the zombie children of this process that `pick` selects; returns their pids. */
export function reapZombieChildren(pick: (p: ProcInfo) => boolean): number[] {
  const out: number[] = [];
  for (const pid of childrenOf(Deno.pid)) {
    const info = procInfo(pid);
    if (info?.state === "Z" && pick(info) && reapChild(pid)) out.push(pid);
  }
  return out;
}
